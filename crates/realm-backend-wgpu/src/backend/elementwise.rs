//! The elementwise ops (glu, add, scale, softcap), gather_rows and argmax.

use realm_core::{Activation, CoreError, Result, check};
use realm_shaders::{ElementwiseKind, Op};

use super::u;
use crate::WgpuBackend;
use crate::gpu::{Bind, flat};
use crate::tensor::WgpuTensor;

pub(super) fn glu(
    b: &WgpuBackend,
    gate: &WgpuTensor,
    up: &WgpuTensor,
    act: Activation,
    out: &mut WgpuTensor,
) -> Result<()> {
    check::same_shape("glu", "up", (up.rows, up.cols), (gate.rows, gate.cols))?;
    check::same_shape("glu", "out", (out.rows, out.cols), (gate.rows, gate.cols))?;
    let v = b.v(Op::Glu { gelu: act == Activation::GeluTanh }, None, None);
    let n = gate.len();
    let binds = [Bind::Whole(gate.buffer()), Bind::Whole(up.buffer()), Bind::Whole(out.buffer())];
    b.each(v, n, &[u("glu", n)?, 0, 0, 0], &binds)
}

pub(super) fn add(b: &WgpuBackend, x: &mut WgpuTensor, y: &WgpuTensor) -> Result<()> {
    check::same_shape("add", "y", (y.rows, y.cols), (x.rows, x.cols))?;
    let v = b.v(Op::Elementwise(ElementwiseKind::Add), None, None);
    let n = x.len();
    b.each(v, n, &[u("add", n)?, 0, 0, 0], &[Bind::Whole(x.buffer()), Bind::Whole(y.buffer())])
}

pub(super) fn scale(b: &WgpuBackend, x: &mut WgpuTensor, s: f32) -> Result<()> {
    let v = b.v(Op::Elementwise(ElementwiseKind::Scale), None, None);
    let n = x.len();
    b.each(v, n, &[u("scale", n)?, s.to_bits(), 0, 0], &[Bind::Whole(x.buffer())])
}

pub(super) fn softcap(b: &WgpuBackend, x: &mut WgpuTensor, cap: f32) -> Result<()> {
    if cap == 0.0 || !cap.is_finite() {
        return Err(CoreError::Backend {
            op: "softcap",
            detail: format!("cap {cap} must be finite and non-zero"),
        });
    }
    let v = b.v(Op::Elementwise(ElementwiseKind::Softcap), None, None);
    let n = x.len();
    let params = [u("softcap", n)?, cap.to_bits(), (1.0f32 / cap).to_bits(), 0];
    b.each(v, n, &params, &[Bind::Whole(x.buffer())])
}

/// One gather dispatch over the staged indices (gather_rows.wgsl says why not copies).
pub(super) fn gather_rows(
    b: &WgpuBackend,
    x: &WgpuTensor,
    idx: &[u32],
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "gather_rows";
    check::gather_rows((x.rows, x.cols), idx, (out.rows, out.cols))?;
    if out.len() == 0 {
        return Ok(());
    }
    let bytes: Vec<u8> = idx.iter().flat_map(|i| i.to_le_bytes()).collect();
    let (buf, off, len) = b.gpu.stage(&bytes)?;
    let n = out.len();
    let binds = [Bind::Whole(x.buffer()), Bind::Slice(&buf, off, len), Bind::Whole(out.buffer())];
    b.each(b.v(Op::GatherRows, None, None), n, &[u(OP, n)?, u(OP, out.cols)?, 0, 0], &binds)
}

pub(super) fn argmax(b: &WgpuBackend, x: &WgpuTensor, out: &mut WgpuTensor) -> Result<()> {
    check::same_shape("argmax", "out", (out.rows, out.cols), (x.rows, 1))?;
    let params = [u("argmax", x.rows)?, u("argmax", x.cols)?, 0, 0];
    let binds = [Bind::Whole(x.buffer()), Bind::Whole(out.buffer())];
    b.gpu.dispatch(b.v(Op::Argmax, None, None), &params, &binds, flat(x.rows)?)
}
