//! The elementwise ops (glu, add, scale, softcap), argmax and copy_rows.

use realm_core::{Activation, CoreError, Result, check, shape_err};
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

pub(super) fn copy_rows(
    b: &WgpuBackend,
    x: &WgpuTensor,
    start: usize,
    out: &mut WgpuTensor,
) -> Result<()> {
    if out.cols != x.cols || start.saturating_add(out.rows) > x.rows {
        return Err(shape_err(
            "copy_rows",
            format!("rows {start}..+{:?} of {:?}", (out.rows, out.cols), (x.rows, x.cols)),
        ));
    }
    let at = (start * x.cols * 4) as u64;
    b.gpu.copy(x.buffer(), at, out.buffer(), 0, (out.len() * 4) as u64)
}

pub(super) fn argmax(b: &WgpuBackend, x: &WgpuTensor, out: &mut WgpuTensor) -> Result<()> {
    check::same_shape("argmax", "out", (out.rows, out.cols), (x.rows, 1))?;
    let params = [u("argmax", x.rows)?, u("argmax", x.cols)?, 0, 0];
    let binds = [Bind::Whole(x.buffer()), Bind::Whole(out.buffer())];
    b.gpu.dispatch(b.v(Op::Argmax, None, None), &params, &binds, flat(x.rows)?)
}
