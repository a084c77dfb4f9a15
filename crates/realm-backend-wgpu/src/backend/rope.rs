//! rope in place, one invocation per rotated pair.

use realm_core::{Result, RopeParams, check, shape_err};
use realm_shaders::Op;

use super::u;
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::tensor::WgpuTensor;

pub(super) fn rope(b: &WgpuBackend, x: &mut WgpuTensor, p: &RopeParams) -> Result<()> {
    const OP: &str = "rope";
    if p.head_dim == 0 || !p.rope_dim.is_multiple_of(2) || p.rope_dim > p.head_dim {
        return Err(shape_err(OP, format!("rope_dim {} of head_dim {}", p.rope_dim, p.head_dim)));
    }
    check::same_shape(OP, "x", (x.rows, x.cols), (x.rows, p.n_heads * p.head_dim))?;
    let params = [
        u(OP, x.rows)?,
        u(OP, p.n_heads)?,
        u(OP, p.head_dim)?,
        u(OP, p.rope_dim)?,
        u(OP, p.start_pos)?,
        u32::from(p.style == realm_core::RopeStyle::Neox),
        theta_scale(p).to_bits(),
        p.freq_scale.to_bits(),
    ];
    let n = x.rows * p.n_heads * (p.rope_dim / 2);
    b.each(b.v(Op::Rope, None, None), n, &params, &[Bind::Whole(x.buffer())])
}

/// As the oracle: theta_scale = base^(-2/rope_dim) in f32 (the shader multiplies it up).
pub(super) fn theta_scale(p: &RopeParams) -> f32 {
    p.freq_base.powf(-2.0f32 / p.rope_dim as f32)
}
