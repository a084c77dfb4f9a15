//! Paged attention: a workgroup per (head, query row), or, for a step of few rows (decode, a
//! batch of decode rows, a small prefill chunk) over a long cache, per (head, row, split of
//! the row's key positions) with the splits merged by a second pass (attention_reduce.wgsl).
//!
//! Splitting exists to give the device enough workgroups when rows × heads are few; once
//! they fill it (a prefill), splits would only add the partials' traffic and a pass. The
//! rows of a dispatch share one split length, chosen from the longest span; the splits past
//! a shorter row's span are empty and the merge skips them.
//! So a row's result may depend on its batch-mates through where its splits fall (the same
//! sums in another order: a few ulps, far inside the conformance tolerance, which checks
//! every row alone against the row in its batch), never through the values it reads.

use realm_core::{AttentionParams, Result, check};
use realm_shaders::{KvFormat, Op};

use super::{kv, u};
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::rows::WgpuRows;
use crate::tensor::{WgpuKv, WgpuTensor};

/// Key positions of the longest row from which decode attention is split (and merged).
const SPLIT_MIN_SPAN: usize = 128;
/// Most splits of one row.
const MAX_SPLITS: usize = 32;
/// Fewest key positions per split.
const MIN_SPLIT_LEN: usize = 64;
/// (head, row) pairs from which a dispatch has enough workgroups unsplit.
const SPLIT_MAX_PAIRS: usize = 1024;

/// How the key positions of a dispatch's rows are split.
struct Split {
    /// Key positions per split (at least the longest span when there is one split).
    len: usize,
    count: usize,
}

impl Split {
    /// One split when rows × heads already fill the device or every span is short; else
    /// splits sized for the longest span, unless their partial results would not fit one
    /// buffer.
    fn choose(b: &WgpuBackend, p: &AttentionParams, rows: &WgpuRows) -> Split {
        let plan = &rows.plan;
        let n = plan.len();
        let longest = (0..n)
            .map(|r| {
                let (lo, pos) = plan.span(r, p.window);
                pos + 1 - lo
            })
            .max()
            .unwrap_or(1);
        let one = Split { len: longest, count: 1 };
        if n * p.n_head >= SPLIT_MAX_PAIRS || longest < SPLIT_MIN_SPAN {
            return one;
        }
        let len = longest.div_ceil(MAX_SPLITS).max(MIN_SPLIT_LEN);
        let count = longest.div_ceil(len);
        let bytes = (n * p.n_head * count * (p.head_dim_v + 2) * 4) as u64;
        if bytes > b.gpu.max_tensor() { one } else { Split { len, count } }
    }
}

pub(super) fn attention(
    b: &WgpuBackend,
    q: &WgpuTensor,
    kv: &WgpuKv,
    layer: usize,
    p: &AttentionParams,
    rows: &WgpuRows,
    out: &mut WgpuTensor,
) -> Result<()> {
    const OP: &str = "attention";
    check::kv_layer(OP, kv.layers.len(), layer)?;
    check::attention((q.rows, q.cols), &kv.desc, p, &rows.plan, (out.rows, out.cols))?;
    let n = q.rows;
    if n == 0 {
        return Ok(());
    }
    let (fmt, _) = kv::format(kv.desc.dtype);
    let split = Split::choose(b, p, rows);
    let (cap, has_cap) = match p.softcap {
        Some(c) => (c, 1),
        None => (1.0, 0),
    };
    let params = [
        u(OP, p.n_head)?,
        u(OP, p.n_head_kv)?,
        u(OP, p.head_dim)?,
        u(OP, p.head_dim_v)?,
        u(OP, n)?,
        u(OP, p.window.unwrap_or(0))?,
        has_cap,
        u(OP, split.len)?,
        p.scale.to_bits(),
        cap.to_bits(),
        (1.0f32 / cap).to_bits(),
        u(OP, split.count)?,
        rows.tables_at,
        u(OP, kv.desc.block_size)?,
        0,
        0,
    ];
    let l = &kv.layers[layer];
    let groups = [u(OP, p.n_head)?, u(OP, n)?, u(OP, split.count)?];
    let bytes = moved(p, fmt, rows, q, out);
    let (rb, ro, rl) = rows.binding(&b.gpu)?;
    let v = b.v(Op::Attention { split: split.count > 1 }, None, Some(fmt));
    if split.count == 1 {
        let binds = [
            Bind::Whole(q.buffer()),
            Bind::Whole(&l.k),
            Bind::Whole(&l.v),
            Bind::Whole(out.buffer()),
            Bind::Slice(&rb, ro, rl),
        ];
        return b.gpu.dispatch_moving(v, &params, &binds, groups, bytes);
    }
    let part_len = n * p.n_head * split.count * (p.head_dim_v + 2);
    let part = b.gpu.storage("attention partials", (part_len * 4) as u64)?;
    let binds = [
        Bind::Whole(q.buffer()),
        Bind::Whole(&l.k),
        Bind::Whole(&l.v),
        Bind::Whole(&part.buffer),
        Bind::Slice(&rb, ro, rl),
    ];
    b.gpu.dispatch_moving(v, &params, &binds, groups, bytes)?;
    let rparams = [u(OP, p.n_head)?, u(OP, p.head_dim_v)?, u(OP, split.count)?, 0];
    let rv = b.v(Op::AttentionReduce, None, None);
    let rbinds = [Bind::Whole(&part.buffer), Bind::Whole(out.buffer())];
    b.gpu.dispatch(rv, &rparams, &rbinds, [groups[0], groups[1], 1])
}

/// For the profile: the keys and values of each sequence's longest span (each query head
/// group reads them), q and out.
fn moved(
    p: &AttentionParams,
    fmt: KvFormat,
    rows: &WgpuRows,
    q: &WgpuTensor,
    out: &WgpuTensor,
) -> u64 {
    let elem = if fmt == KvFormat::F16 { 2 } else { 4 };
    let plan = &rows.plan;
    let mut longest = vec![0usize; plan.table_start.len()];
    for (r, &s) in plan.seq.iter().enumerate() {
        let (lo, pos) = plan.span(r, p.window);
        if let Some(l) = longest.get_mut(s as usize) {
            *l = (*l).max(pos + 1 - lo);
        }
    }
    let spans: usize = longest.iter().sum();
    let kv_bytes = spans * p.n_head_kv * (p.head_dim + p.head_dim_v) * elem;
    (kv_bytes + (q.len() + out.len()) * 4) as u64
}
