//! Argument checks every backend makes the same way: the contract's shapes, so a CPU and a GPU
//! backend reject the same misuse with the same error.

use crate::{AttentionParams, CoreError, KvDesc, Result, RowsDesc, shape_err};

/// `a` must equal `b` (`(rows, cols)` shapes); `what` names the argument.
pub fn same_shape(
    op: &'static str,
    what: &str,
    a: (usize, usize),
    b: (usize, usize),
) -> Result<()> {
    if a == b { Ok(()) } else { Err(shape_err(op, format!("{what}: {a:?} vs {b:?}"))) }
}

/// `layer` must be one of the cache's `n_layers`.
pub fn kv_layer(op: &'static str, n_layers: usize, layer: usize) -> Result<()> {
    if layer < n_layers {
        Ok(())
    } else {
        Err(shape_err(op, format!("layer {layer} of a cache with {n_layers} layers")))
    }
}

/// The arguments of `Backend::attention`: heads that group evenly, parameters that agree with
/// the cache, `q` and `out` shapes, a non-empty window, and rows placed in this pool.
pub fn attention(
    q: (usize, usize),
    desc: &KvDesc,
    p: &AttentionParams,
    rows: &RowsPlan,
    out: (usize, usize),
) -> Result<()> {
    const OP: &str = "attention";
    let d = desc;
    if p.n_head_kv == 0 || !p.n_head.is_multiple_of(p.n_head_kv) {
        return Err(shape_err(OP, format!("{} heads over {} KV heads", p.n_head, p.n_head_kv)));
    }
    if (p.n_head_kv, p.head_dim, p.head_dim_v) != (d.n_head_kv, d.head_dim, d.head_dim_v) {
        return Err(shape_err(
            OP,
            format!(
                "params (n_head_kv, head_dim, head_dim_v) = {:?}, cache has {:?}",
                (p.n_head_kv, p.head_dim, p.head_dim_v),
                (d.n_head_kv, d.head_dim, d.head_dim_v)
            ),
        ));
    }
    if p.window == Some(0) {
        return Err(shape_err(OP, "a window of 0 positions"));
    }
    let n = q.0;
    same_shape(OP, "q", q, (n, p.n_head * p.head_dim))?;
    same_shape(OP, "out", out, (n, p.n_head * p.head_dim_v))?;
    rows_in_pool(OP, desc, rows, n)
}

/// The row placement `rows` must be for `n` rows and for this pool (its block size, blocks
/// that exist).
pub fn rows_in_pool(op: &'static str, desc: &KvDesc, rows: &RowsPlan, n: usize) -> Result<()> {
    if rows.len() != n {
        return Err(shape_err(op, format!("{n} rows placed by a descriptor of {}", rows.len())));
    }
    if rows.block_size != desc.block_size {
        return Err(shape_err(
            op,
            format!("rows in blocks of {}, the pool's are {}", rows.block_size, desc.block_size),
        ));
    }
    match rows.max_block {
        Some(b) if b as usize >= desc.n_blocks => Err(CoreError::ContextOverflow {
            op,
            pos: b as usize * desc.block_size,
            n_ctx: desc.n_blocks * desc.block_size,
        }),
        _ => Ok(()),
    }
}

/// A checked [`RowsDesc`], flattened: what every backend keeps of a step's row placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowsPlan {
    /// Position of each row in its sequence.
    pub pos: Vec<u32>,
    /// Sequence of each row.
    pub seq: Vec<u32>,
    /// Pool slot of each row: where its keys and values are stored.
    pub slot: Vec<u32>,
    /// Where each sequence's table starts in `tables`.
    pub table_start: Vec<u32>,
    /// Every sequence's block table, one after the other.
    pub tables: Vec<u32>,
    pub block_size: usize,
    /// The largest block any table names (`None` when there are none).
    pub max_block: Option<u32>,
}

impl RowsPlan {
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    /// The block table of sequence `s`.
    pub fn table(&self, s: usize) -> &[u32] {
        let start = self.table_start.get(s).copied().unwrap_or(0) as usize;
        let end = self.table_start.get(s + 1).map_or(self.tables.len(), |&e| e as usize);
        self.tables.get(start..end).unwrap_or_default()
    }

    /// The pool slot of position `j` of sequence `s` (a position its table covers).
    #[inline]
    pub fn slot_of(&self, s: usize, j: usize) -> usize {
        let bs = self.block_size.max(1);
        let block = self.table(s).get(j / bs).copied().unwrap_or(0) as usize;
        block * bs + j % bs
    }

    /// The positions row `r` attends to: `lo ..= pos` with a window of `window` positions.
    #[inline]
    pub fn span(&self, r: usize, window: Option<usize>) -> (usize, usize) {
        let pos = self.pos.get(r).copied().unwrap_or(0) as usize;
        let lo = window.map_or(0, |w| (pos + 1).saturating_sub(w));
        (lo, pos)
    }
}

/// Checks a step's row placement: as many sequences as positions, a positive block size,
/// every row's sequence in range and its position covered by that sequence's table, sizes
/// that fit 32 bits, and no two rows writing the same slot.
pub fn rows(desc: &RowsDesc<'_>) -> Result<RowsPlan> {
    const OP: &str = "rows";
    let n = desc.pos.len();
    if desc.seq.len() != n {
        return Err(shape_err(OP, format!("{n} positions and {} sequences", desc.seq.len())));
    }
    let bs = desc.block_size;
    if bs == 0 || u32::try_from(bs).is_err() {
        return Err(shape_err(OP, format!("a block size of {bs}")));
    }
    let total: usize = desc.tables.iter().map(|t| t.len()).sum();
    if u32::try_from(total).is_err() || u32::try_from(desc.tables.len()).is_err() {
        return Err(shape_err(OP, format!("{total} table entries")));
    }
    let mut plan = RowsPlan { block_size: bs, ..RowsPlan::default() };
    plan.tables.reserve(total);
    for t in desc.tables {
        plan.table_start.push(plan.tables.len() as u32);
        plan.tables.extend_from_slice(t);
    }
    plan.max_block = plan.tables.iter().copied().max();
    if plan.max_block.is_some_and(|b| (b as u64 + 1) * bs as u64 > u32::MAX as u64) {
        return Err(shape_err(OP, "a block whose slots are past 32 bits"));
    }
    plan.slot.reserve(n);
    for (r, (&pos, &seq)) in desc.pos.iter().zip(desc.seq).enumerate() {
        let Some(table) = desc.tables.get(seq as usize) else {
            return Err(shape_err(
                OP,
                format!("row {r}: sequence {seq} of {} tables", desc.tables.len()),
            ));
        };
        let Some(&block) = table.get(pos as usize / bs) else {
            return Err(shape_err(
                OP,
                format!(
                    "row {r}: position {pos} outside its table of {} blocks of {bs}",
                    table.len()
                ),
            ));
        };
        plan.slot.push(block * bs as u32 + pos % bs as u32);
    }
    let mut sorted = plan.slot.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(shape_err(OP, format!("two rows write slot {}", w[0])));
    }
    plan.pos = desc.pos.to_vec();
    plan.seq = desc.seq.to_vec();
    Ok(plan)
}

/// The keys and values of `kv_store` (`[n, n_head_kv · head_dim(_v)]`) for rows placed in this pool.
pub fn kv_store(
    desc: &KvDesc,
    rows: &RowsPlan,
    k: (usize, usize),
    v: (usize, usize),
) -> Result<()> {
    const OP: &str = "kv_store";
    same_shape(OP, "k", k, (k.0, desc.n_head_kv * desc.head_dim))?;
    same_shape(OP, "v", v, (k.0, desc.n_head_kv * desc.head_dim_v))?;
    rows_in_pool(OP, desc, rows, k.0)
}

/// The arguments of `Backend::rope`: a rotated part that is even and inside the head, `x` of
/// whole heads, and a position for each of its rows.
pub fn rope(x: (usize, usize), p: &crate::RopeParams, rows: &RowsPlan) -> Result<()> {
    const OP: &str = "rope";
    if p.head_dim == 0 || !p.rope_dim.is_multiple_of(2) || p.rope_dim > p.head_dim {
        return Err(shape_err(OP, format!("rope_dim {} of head_dim {}", p.rope_dim, p.head_dim)));
    }
    same_shape(OP, "x", x, (x.0, p.n_heads * p.head_dim))?;
    if rows.len() != x.0 {
        return Err(shape_err(
            OP,
            format!("{} rows placed by a descriptor of {}", x.0, rows.len()),
        ));
    }
    Ok(())
}

/// The arguments of `Backend::gather_rows`: indices inside `x`, `out` of as many rows of the
/// same width.
pub fn gather_rows(x: (usize, usize), idx: &[u32], out: (usize, usize)) -> Result<()> {
    const OP: &str = "gather_rows";
    same_shape(OP, "out", out, (idx.len(), x.1))?;
    if let Some(&i) = idx.iter().find(|&&i| i as usize >= x.0) {
        return Err(shape_err(OP, format!("row {i} of {} rows", x.0)));
    }
    Ok(())
}
