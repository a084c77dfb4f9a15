//! rms_norm over groups of each row (whole rows, or per-head groups).

use realm_core::{Result, check, shape_err};
use realm_shaders::Op;

use super::u;
use crate::WgpuBackend;
use crate::gpu::{Bind, flat};
use crate::tensor::WgpuTensor;
use crate::weight::WgpuWeight;

pub(super) fn rms_norm(
    b: &WgpuBackend,
    x: &WgpuTensor,
    weight: &WgpuWeight,
    group: usize,
    eps: f32,
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "rms_norm";
    if group == 0 || !x.cols.is_multiple_of(group) || weight.numel() != group {
        return Err(shape_err(
            OP,
            format!("{} columns in groups of {group} with a weight of {}", x.cols, weight.numel()),
        ));
    }
    check::same_shape(OP, "out", (out.rows, out.cols), (x.rows, x.cols))?;
    let w = b.vector(OP, weight, group)?;
    let n_groups = x.len() / group;
    let params = [u(OP, group)?, u(OP, n_groups)?, eps.to_bits(), 0];
    let binds = [Bind::Whole(x.buffer()), Bind::Whole(w), Bind::Whole(out.buffer())];
    let bytes = (2 * x.len() * 4) as u64;
    b.gpu.dispatch_moving(b.v(Op::RmsNorm, None, None), &params, &binds, flat(n_groups)?, bytes)
}
