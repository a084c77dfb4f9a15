//! matmul and matmul_fused: matvec for a few activation rows (with the block's RMSNorm folded
//! in), the tiled matmul above; both with the epilogue compiled in.
//!
//! Matvec shapes by activation rows: up to [`PER_ROW_MAX`] (single-sequence decode, a
//! speculative handful) each row gets its own z-slice of workgroups of 4 or 16 output rows,
//! as tuned before batching existed; up to [`MATVEC_MAX_ROWS`] (batched decode of several
//! sequences) the batch variant's workgroups compute 4 output rows of 8 activation rows,
//! dequantizing each weight block once for the 8 instead of once per row. Above, the tiled
//! matmul, whose 32-row activation tiles a small batch would mostly leave empty.

use realm_core::{Activation, Backend, CoreError, Epilogue, Result, check, shape_err};
use realm_shaders::{Epilogue as Epi, MatvecShape, Op, Precision};

use super::u;
use crate::WgpuBackend;
use crate::gpu::{Bind, flat};
use crate::tensor::WgpuTensor;
use crate::weight::WgpuWeight;

/// Activation rows up to which matmul runs as matvec (and folds a norm in).
pub(super) const MATVEC_MAX_ROWS: usize = 16;
/// Activation rows up to which each row has its own matvec workgroups.
const PER_ROW_MAX: usize = 4;

/// What a matmul dispatch fuses: the epilogue (compiled into the kernel) and its gate, and a
/// norm folded in (matvec only).
#[derive(Clone, Copy)]
struct Fused<'a> {
    epilogue: Epi,
    aux: Option<&'a wgpu::Buffer>,
    norm: Option<(&'a wgpu::Buffer, f32)>,
}

impl Default for Fused<'_> {
    fn default() -> Self {
        Self { epilogue: Epi::Store, aux: None, norm: None }
    }
}

pub(super) fn matmul(
    b: &WgpuBackend,
    w: &WgpuWeight,
    bias: Option<&WgpuWeight>,
    x: &WgpuTensor,
    out: &mut WgpuTensor,
) -> Result<()> {
    let bias = checks(b, "matmul", w, bias, x, out)?;
    chunks(b, w, bias, x, out, Fused::default())
}

pub(super) fn matmul_fused(
    b: &WgpuBackend,
    w: &WgpuWeight,
    bias: Option<&WgpuWeight>,
    x: &WgpuTensor,
    norm: Option<(&WgpuWeight, f32)>,
    then: Epilogue<'_, WgpuTensor>,
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "matmul_fused";
    let bias = checks(b, OP, w, bias, x, out)?;
    let mut fused = match then {
        Epilogue::Store => Fused::default(),
        Epilogue::Add => Fused { epilogue: Epi::Add, ..Fused::default() },
        Epilogue::Glu { gate, act } => {
            check::same_shape(OP, "gate", (gate.rows, gate.cols), (out.rows, out.cols))?;
            let epilogue = match act {
                Activation::Silu => Epi::GluSilu,
                Activation::GeluTanh => Epi::GluGelu,
            };
            Fused { epilogue, aux: Some(gate.buffer()), norm: None }
        }
    };
    match norm {
        Some((nw, eps)) if fuses_norm(x.rows) => {
            fused.norm = Some((b.vector(OP, nw, x.cols)?, eps));
            chunks(b, w, bias, x, out, fused)
        }
        Some((nw, eps)) => {
            let mut normed = b.tensor(x.rows, x.cols)?;
            super::norm::rms_norm(b, x, nw, x.cols, eps, &mut normed)?;
            chunks(b, w, bias, &normed, out, fused)
        }
        None => chunks(b, w, bias, x, out, fused),
    }
}

/// Whether a matmul of `rows` activation rows runs as matvec, which folds a norm in.
pub(super) fn fuses_norm(rows: usize) -> bool {
    rows <= MATVEC_MAX_ROWS
}

/// The shape checks of a matmul; the bias as an f32 buffer.
fn checks<'a>(
    b: &WgpuBackend,
    op: &'static str,
    w: &WgpuWeight,
    bias: Option<&'a WgpuWeight>,
    x: &WgpuTensor,
    out: &WgpuTensor,
) -> Result<Option<&'a wgpu::Buffer>> {
    if x.cols != w.cols {
        return Err(shape_err(op, format!("x has {} columns, the weight {}", x.cols, w.cols)));
    }
    check::same_shape(op, "out", (out.rows, out.cols), (x.rows, w.rows))?;
    match bias {
        Some(bv) if bv.numel() != w.rows => {
            Err(shape_err(op, format!("bias of {} for {} outputs", bv.numel(), w.rows)))
        }
        Some(bv) => Ok(Some(b.vector(op, bv, w.rows)?)),
        None => Ok(None),
    }
}

/// One dispatch per buffer of a (split) weight.
fn chunks(
    b: &WgpuBackend,
    w: &WgpuWeight,
    bias: Option<&wgpu::Buffer>,
    x: &WgpuTensor,
    out: &WgpuTensor,
    fused: Fused<'_>,
) -> Result<()> {
    const OP: &str = "matmul";
    let n = x.rows;
    let shape = match n {
        _ if n > PER_ROW_MAX => MatvecShape::Batch,
        _ if w.rows >= b.gpu.matvec_wide_from => MatvecShape::Wide,
        _ => MatvecShape::Narrow,
    };
    let matvec = n <= MATVEC_MAX_ROWS;
    let epilogue = fused.epilogue;
    let op = if matvec {
        Op::Matvec { shape, norm: fused.norm.is_some(), epilogue }
    } else {
        Op::Matmul { epilogue }
    };
    if fused.norm.is_some() && !matvec {
        return Err(CoreError::Backend {
            op: OP,
            detail: "a fused norm needs the matvec kernel".into(),
        });
    }
    let v = b.v(op, Some(w.format), None);
    let bias_buf = bias.unwrap_or(x.buffer());
    let (norm_buf, eps) = fused.norm.unwrap_or((x.buffer(), 0.0));
    for c in &w.chunks {
        let params = [
            u(OP, c.rows)?,
            u(OP, w.cols)?,
            u(OP, w.row_bytes)?,
            u(OP, w.rows)?,
            u(OP, c.row0)?,
            u32::from(bias.is_some()),
            u(OP, n)?,
            epilogue as u32,
            u32::from(fused.norm.is_some()),
            eps.to_bits(),
            0,
            0,
        ];
        // Unused bindings get x (read-only, like them).
        let mut binds = vec![
            Bind::Whole(&c.buffer),
            Bind::Whole(x.buffer()),
            Bind::Whole(out.buffer()),
            Bind::Whole(bias_buf),
            Bind::Whole(fused.aux.unwrap_or(x.buffer())),
        ];
        if matvec {
            binds.push(Bind::Whole(norm_buf));
        }
        let groups = if matvec {
            let (out_rows, act_rows) = shape.block();
            let mut g = flat(c.rows.div_ceil(out_rows as usize))?;
            g[2] = u(OP, n.div_ceil(act_rows as usize))?;
            g
        } else {
            // 64 × 64 output tiles for the cooperative-matrix kernel, else 32 × 32.
            let tile = if v.precision == Precision::CoopF16 { 64 } else { 32 };
            [u(OP, c.rows.div_ceil(tile))?, u(OP, n.div_ceil(tile))?, 1]
        };
        // Weight blocks, the activations read and the outputs written (and read, for an
        // epilogue that reads the output or a gate).
        let out_passes = if epilogue == Epi::Store { 1 } else { 2 };
        let bytes = (c.rows * w.row_bytes + n * w.cols * 4 + out_passes * n * c.rows * 4) as u64;
        b.gpu.dispatch_moving(v, &params, &binds, groups, bytes)?;
    }
    Ok(())
}
