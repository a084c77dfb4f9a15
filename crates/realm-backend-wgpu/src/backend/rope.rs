//! rope in place, each row at its own position, one invocation per rotated pair.

use realm_core::{Result, RopeParams, check};
use realm_shaders::Op;

use super::u;
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::rows::WgpuRows;
use crate::tensor::WgpuTensor;

pub(super) fn rope(
    b: &WgpuBackend,
    x: &mut WgpuTensor,
    p: &RopeParams,
    rows: &WgpuRows,
) -> Result<()> {
    const OP: &str = "rope";
    check::rope((x.rows, x.cols), p, &rows.plan)?;
    let params = [
        u(OP, x.rows)?,
        u(OP, p.n_heads)?,
        u(OP, p.head_dim)?,
        u(OP, p.rope_dim)?,
        0,
        u32::from(p.style == realm_core::RopeStyle::Neox),
        theta_scale(p).to_bits(),
        p.freq_scale.to_bits(),
    ];
    let n = x.rows * p.n_heads * (p.rope_dim / 2);
    let (rb, ro, rl) = rows.binding(&b.gpu)?;
    let binds = [Bind::Whole(x.buffer()), Bind::Slice(&rb, ro, rl)];
    b.each(b.v(Op::Rope, None, None), n, &params, &binds)
}

/// As the oracle: theta_scale = base^(-2/rope_dim) in f32 (the shader multiplies it up).
pub(super) fn theta_scale(p: &RopeParams) -> f32 {
    p.freq_base.powf(-2.0f32 / p.rope_dim as f32)
}
