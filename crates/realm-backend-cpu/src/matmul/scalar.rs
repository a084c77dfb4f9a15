//! The matmul oracle: dequantize a weight row with `realm_quant`'s reference, then one f32
//! multiply and one f32 add per column, in column order, single-threaded.

use realm_core::{CoreError, Result};

use crate::tensor::{CpuWeight, alloc_filled};

/// `out[r, o] = Σ_c w[o, c] · x[r, c] (+ bias[o])`; `x` is `[n, w.cols]`, `out` `[n, w.rows]`.
pub(crate) fn matmul(
    w: &CpuWeight,
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) -> Result<()> {
    let (m, k) = (w.rows, w.cols);
    let mut row = alloc_filled(Some(k), 0.0f32, "matmul row")?;
    for o in 0..m {
        realm_quant::dequantize(w.ty, w.row(o), &mut row)
            .map_err(|e| CoreError::Backend { op: "matmul", detail: e.to_string() })?;
        for r in 0..n {
            let xr = &x[r * k..(r + 1) * k];
            let mut acc = 0.0f32;
            for (a, b) in row.iter().zip(xr) {
                acc += a * b;
            }
            if let Some(b) = bias {
                acc += b[o];
            }
            out[r * m + o] = acc;
        }
    }
    Ok(())
}
