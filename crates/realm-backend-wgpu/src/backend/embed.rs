//! embed (token ids from the host) and embed_ids (ids the device wrote, as argmax does).

use realm_core::{Result, check, shape_err};
use realm_shaders::Op;

use super::u;
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::tensor::WgpuTensor;
use crate::weight::WgpuWeight;

pub(super) fn embed(
    b: &WgpuBackend,
    table: &WgpuWeight,
    tokens: &[u32],
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "embed";
    check::same_shape(OP, "out", (out.rows, out.cols), (tokens.len(), table.cols))?;
    if let Some(&tok) = tokens.iter().find(|&&t| t as usize >= table.rows) {
        return Err(shape_err(OP, format!("token {tok} outside a table of {} rows", table.rows)));
    }
    let v = b.v(Op::Embed, Some(table.format), None);
    for c in &table.chunks {
        let pairs: Vec<u32> = tokens
            .iter()
            .enumerate()
            .filter(|&(_, &t)| (t as usize) >= c.row0 && (t as usize) < c.row0 + c.rows)
            .flat_map(|(i, &t)| [i as u32, t - c.row0 as u32])
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let bytes: Vec<u8> = pairs.iter().flat_map(|w| w.to_le_bytes()).collect();
        let (buf, off, len) = b.gpu.stage(&bytes)?;
        let n_pairs = pairs.len() / 2;
        let params = [u(OP, n_pairs)?, u(OP, table.cols)?, u(OP, table.row_bytes)?, 0, 0, 0];
        let binds =
            [Bind::Whole(&c.buffer), Bind::Slice(&buf, off, len), Bind::Whole(out.buffer())];
        b.each(v, n_pairs * table.cols, &params, &binds)?;
    }
    Ok(())
}

pub(super) fn embed_ids(
    b: &WgpuBackend,
    table: &WgpuWeight,
    ids: &WgpuTensor,
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "embed_ids";
    check::same_shape(OP, "ids", (ids.rows, ids.cols), (out.rows, 1))?;
    check::same_shape(OP, "out", (out.rows, out.cols), (out.rows, table.cols))?;
    let v = b.v(Op::Embed, Some(table.format), None);
    // Each buffer of a split table writes the rows whose id falls in it.
    for c in &table.chunks {
        let params = [
            u(OP, out.rows)?,
            u(OP, table.cols)?,
            u(OP, table.row_bytes)?,
            1,
            u(OP, c.row0)?,
            u(OP, c.rows)?,
        ];
        let binds = [Bind::Whole(&c.buffer), Bind::Whole(ids.buffer()), Bind::Whole(out.buffer())];
        b.each(v, out.rows * table.cols, &params, &binds)?;
    }
    Ok(())
}
