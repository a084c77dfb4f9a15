//! attention: a workgroup per (head, query row), or, for decode over a long cache, per
//! (head, row, split of the key positions) with the splits merged by a second pass.

use realm_core::{AttentionParams, Result, check};
use realm_shaders::{KvFormat, Op};

use super::{kv, u};
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::tensor::{WgpuKv, WgpuTensor};

/// Key positions from which decode attention is split (and merged).
const SPLIT_MIN_SPAN: usize = 128;
/// Most splits of one decode attention.
const MAX_SPLITS: usize = 32;

pub(super) fn attention(
    b: &WgpuBackend,
    q: &WgpuTensor,
    kv: &WgpuKv,
    layer: usize,
    p: &AttentionParams,
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "attention";
    check::kv_layer(OP, kv.layers.len(), layer)?;
    check::attention((q.rows, q.cols), &kv.desc, p, (out.rows, out.cols))?;
    let n = q.rows;
    if n == 0 {
        return Ok(());
    }
    let (fmt, _) = kv::format(kv.desc.dtype);
    // Decode over a long cache splits the key positions; prefill rows each have their own.
    let last = p.start_pos + n - 1;
    let lo = p.window.map_or(0, |w| (last + 1).saturating_sub(w));
    let span = last + 1 - lo;
    let split = n == 1 && span >= SPLIT_MIN_SPAN;
    let (split_len, n_split) = if split {
        let len = span.div_ceil(MAX_SPLITS).max(64);
        (len, span.div_ceil(len))
    } else {
        (last + 1, 1)
    };
    let (cap, has_cap) = match p.softcap {
        Some(c) => (c, 1),
        None => (1.0, 0),
    };
    let params = [
        u(OP, p.n_head)?,
        u(OP, p.n_head_kv)?,
        u(OP, p.head_dim)?,
        u(OP, p.head_dim_v)?,
        u(OP, p.start_pos)?,
        u(OP, p.window.unwrap_or(0))?,
        has_cap,
        u(OP, split_len)?,
        p.scale.to_bits(),
        cap.to_bits(),
        (1.0f32 / cap).to_bits(),
        u(OP, n_split)?,
    ];
    let l = &kv.layers[layer];
    let groups = [u(OP, p.n_head)?, u(OP, n)?, u(OP, n_split)?];
    // Keys and values of the span (each query head group reads them), q and out.
    let elem = if fmt == KvFormat::F16 { 2 } else { 4 };
    let kv_bytes = span * p.n_head_kv * (p.head_dim + p.head_dim_v) * elem;
    let bytes = (kv_bytes + (q.len() + out.len()) * 4) as u64;
    let v = b.v(Op::Attention { split }, None, Some(fmt));
    if !split {
        let binds = [
            Bind::Whole(q.buffer()),
            Bind::Whole(&l.k),
            Bind::Whole(&l.v),
            Bind::Whole(out.buffer()),
        ];
        return b.gpu.dispatch_moving(v, &params, &binds, groups, bytes);
    }
    let part_len = n * p.n_head * n_split * (p.head_dim_v + 2);
    let part = b.gpu.storage("attention partials", (part_len * 4) as u64)?;
    let binds =
        [Bind::Whole(q.buffer()), Bind::Whole(&l.k), Bind::Whole(&l.v), Bind::Whole(&part.buffer)];
    b.gpu.dispatch_moving(v, &params, &binds, groups, bytes)?;
    let rparams = [u(OP, p.n_head)?, u(OP, p.head_dim_v)?, u(OP, n_split)?, 0];
    let rv = b.v(Op::AttentionReduce, None, None);
    let rbinds = [Bind::Whole(&part.buffer), Bind::Whole(out.buffer())];
    b.gpu.dispatch(rv, &rparams, &rbinds, [groups[0], groups[1], 1])
}
