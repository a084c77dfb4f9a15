//! Causal attention over the KV cache, with grouped-query heads, a sliding window and an
//! optional score soft-cap.
//!
//! - [`scalar`]: the oracle. Per query row and head: every score in f32, the softmax over
//!   them, then the weighted sum of the values, one position at a time.
//! - [`fast`]: online softmax (the flash-attention recurrence: a running max `m`, normalizer
//!   `l` and accumulator rescaled by `e^(m_old - m_new)`). The work is split into tasks of
//!   (a tile of query rows, one KV head with its query heads, a segment of the key
//!   positions); each task converts a block of keys/values to f32 once and reuses it for every
//!   query row and head of the tile. A tile is up to 8 consecutive rows of one sequence (a
//!   prefill chunk); a decode row is a tile of its own. Keys are read through the sequence's
//!   block table, so any row of any sequence can share a step with any other.
//!
//!   **Batch invariance.** A row's result depends on that row alone, never on its tile or
//!   its batch: segments are fixed ranges of absolute positions (`SEGMENT`), key blocks are
//!   aligned to absolute multiples of `KEY_BLOCK`, a row folds exactly the positions of its
//!   own span in each block (positions of other rows in the block weigh an exact 0), and the
//!   partial `(m, l, acc)` of a row's segments are always merged in segment order. Decode
//!   gets its parallelism from the segments of a long context and from the other sequences
//!   of the batch. On x86_64 with AVX-512 (head dimensions a multiple of 16,
//!   value dimensions of 64) the task is register-blocked: scores of 4 query vectors × 4 keys
//!   at once, and the weighted value sum of 4 query vectors held in registers across a block
//!   of keys (`x86::task_wide`), which cut Gemma 3's prompt attention time by about 40 %.

use std::ops::Range;

use realm_core::{AttentionParams, KvDesc, RowsPlan};

use crate::isa::Isa;
use crate::ops::elementwise::softcap;
use crate::pool::{ChunkPanicked, ThreadPool};
use crate::tensor::{KvBuf, LayerKv};

/// Key positions converted to f32 at a time; blocks start at absolute multiples of it.
const KEY_BLOCK: usize = 32;
/// Most query rows per tile in prefill.
const QUERY_TILE: usize = 8;
/// Key positions per segment, a task's share of a row's span (a multiple of `KEY_BLOCK`):
/// segments are fixed absolute ranges, so how a row is split never depends on its batch.
const SEGMENT: usize = 128;

/// What every attention task needs.
pub(crate) struct Attn<'a> {
    pub(crate) q: &'a [f32],
    pub(crate) layer: &'a LayerKv,
    pub(crate) desc: &'a KvDesc,
    pub(crate) p: &'a AttentionParams,
    pub(crate) rows: &'a RowsPlan,
    pub(crate) n: usize,
}

impl Attn<'_> {
    fn group(&self) -> usize {
        self.p.n_head / self.p.n_head_kv.max(1)
    }

    /// The key positions row `r` sees: `lo ..= pos`.
    fn range(&self, r: usize) -> (usize, usize) {
        self.rows.span(r, self.p.window)
    }

    /// The sequence of row `r`.
    fn seq(&self, r: usize) -> usize {
        self.rows.seq.get(r).copied().unwrap_or(0) as usize
    }

    fn query(&self, r: usize, h: usize) -> &[f32] {
        let hd = self.p.head_dim;
        let at = (r * self.p.n_head + h) * hd;
        self.q.get(at..at + hd).unwrap_or_default()
    }

    fn score(&self, raw: f32) -> f32 {
        let s = raw * self.p.scale;
        match self.p.softcap {
            Some(cap) => softcap(s, cap),
            None => s,
        }
    }
}

/// Converts the rows of KV head `g` at positions `js` of sequence `seq` (through its block
/// table) into `dst` (`js.len() × dim`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn load_rows(
    isa: Isa,
    buf: &KvBuf,
    rows: &RowsPlan,
    seq: usize,
    n_head_kv: usize,
    dim: usize,
    g: usize,
    js: Range<usize>,
    dst: &mut [f32],
) {
    for (j, d) in js.zip(dst.chunks_exact_mut(dim)) {
        let at = (rows.slot_of(seq, j) * n_head_kv + g) * dim;
        match buf {
            KvBuf::F16(v) => {
                crate::vec::f16_to_f32(isa, v.get(at..at + dim).unwrap_or_default(), d)
            }
            KvBuf::F32(v) => {
                if let Some(src) = v.get(at..at + dim) {
                    d.copy_from_slice(src);
                }
            }
        }
    }
}

fn value_at(buf: &KvBuf, at: usize) -> f32 {
    match buf {
        KvBuf::F16(v) => v.get(at).map_or(0.0, |&b| half::f16::from_bits(b).to_f32()),
        KvBuf::F32(v) => v.get(at).copied().unwrap_or(0.0),
    }
}

/// The oracle.
pub(crate) fn scalar(a: &Attn<'_>, out: &mut [f32]) {
    let (hd, dv, nkv) = (a.p.head_dim, a.p.head_dim_v, a.desc.n_head_kv);
    let group = a.group();
    let mut scores = Vec::new();
    for r in 0..a.n {
        let (lo, pos) = a.range(r);
        let seq = a.seq(r);
        for h in 0..a.p.n_head {
            let g = h / group;
            let q = a.query(r, h);
            scores.clear();
            for j in lo..=pos {
                let base = (a.rows.slot_of(seq, j) * nkv + g) * hd;
                let mut s = 0.0f32;
                for (d, &qd) in q.iter().enumerate() {
                    s += qd * value_at(&a.layer.k, base + d);
                }
                scores.push(a.score(s));
            }
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            let mut sum = 0.0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let o = &mut out[(r * a.p.n_head + h) * dv..][..dv];
            o.fill(0.0);
            for (j, &e) in (lo..=pos).zip(&scores) {
                let w = e / sum;
                let base = (a.rows.slot_of(seq, j) * nkv + g) * dv;
                for (d, od) in o.iter_mut().enumerate() {
                    *od += w * value_at(&a.layer.v, base + d);
                }
            }
        }
    }
}

/// How the fast path splits the work: tiles of rows, and for each tile the segments its
/// rows' spans touch; a task is (tile, segment, KV heads) — every KV head of the segment when
/// there are enough tasks anyway (its keys and values are then read in one pass over their
/// memory, a position's heads being adjacent), one head each when the step has few tiles (a
/// decode step of one sequence). Either way each (row, head) folds the same key blocks in the
/// same order, so the choice never changes a result.
struct Split {
    /// Rows of each tile.
    tiles: Vec<Range<usize>>,
    /// Each tile's first segment and its first task.
    first_seg: Vec<usize>,
    first_task: Vec<usize>,
    /// Per task: its tile and segment.
    tasks: Vec<(usize, usize)>,
    /// KV heads per task (`n_head_kv` or 1).
    heads: usize,
    /// Floats of one head's partial results: `QUERY_TILE × group × (dv + 2)`.
    head_region: usize,
}

impl Split {
    fn new(a: &Attn<'_>, threads: usize) -> Self {
        let nkv = a.p.n_head_kv.max(1);
        let mut tiles = Vec::new();
        let mut segs = Vec::new();
        let mut r = 0;
        while r < a.n {
            // Consecutive positions of one sequence share a tile.
            let mut end = r + 1;
            while end < a.n
                && end - r < QUERY_TILE
                && a.seq(end) == a.seq(r)
                && a.range(end).1 == a.range(end - 1).1 + 1
            {
                end += 1;
            }
            let (lo, hi) = (a.range(r).0, a.range(end - 1).1);
            tiles.push(r..end);
            segs.push(lo / SEGMENT..hi / SEGMENT + 1);
            r = end;
        }
        let n_tasks: usize = segs.iter().map(|s| s.len()).sum();
        let heads = if n_tasks >= 2 * threads { nkv } else { 1 };
        let per_seg = nkv / heads;
        let mut sp = Split {
            tiles,
            first_seg: Vec::new(),
            first_task: Vec::new(),
            tasks: Vec::new(),
            heads,
            head_region: QUERY_TILE * a.group() * (a.p.head_dim_v + 2),
        };
        for (t, seg) in segs.into_iter().enumerate() {
            sp.first_seg.push(seg.start);
            sp.first_task.push(sp.tasks.len());
            for s in seg {
                for _ in 0..per_seg {
                    sp.tasks.push((t, s));
                }
            }
        }
        sp
    }

    /// Floats of one task's partial results.
    fn region(&self) -> usize {
        self.heads * self.head_region
    }

    /// Task `c`: its rows, KV heads and the key positions it folds (the tile's span within its
    /// segment).
    fn task(&self, a: &Attn<'_>, c: usize) -> Task {
        let per_seg = a.p.n_head_kv.max(1) / self.heads;
        let (t, s) = self.tasks[c];
        let g0 = (c - self.first_task[t]) % per_seg * self.heads;
        let rows = self.tiles[t].clone();
        let (lo, hi) = (a.range(rows.start).0, a.range(rows.end - 1).1);
        let keys = lo.max(s * SEGMENT)..(hi + 1).min((s + 1) * SEGMENT);
        (rows, g0..g0 + self.heads, keys)
    }

    /// Where the state of (tile `t`, head `g`, segment `s`) starts in the partial results.
    fn region_of(&self, a: &Attn<'_>, t: usize, g: usize, s: usize) -> usize {
        let per_seg = a.p.n_head_kv.max(1) / self.heads;
        let task = self.first_task[t] + (s - self.first_seg[t]) * per_seg + g / self.heads;
        task * self.region() + (g % self.heads) * self.head_region
    }
}

/// The end of the key block that starts at `j0`: the next absolute multiple of `KEY_BLOCK`,
/// or `end`.
#[inline]
fn block_end(j0: usize, end: usize) -> usize {
    ((j0 / KEY_BLOCK + 1) * KEY_BLOCK).min(end)
}

/// Lanes of the block reductions: independent accumulators, so the loops vectorize and no
/// element waits on the one before (a plain fold is a chain of dependent operations).
const LANES: usize = 16;

/// The largest of `xs` (scores: no NaN), exact (a maximum does not round).
#[inline(always)]
fn max_lanes(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let (chunks, rest) = xs.as_chunks::<LANES>();
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = if v > *m { v } else { *m };
        }
    }
    for (m, &v) in lanes.iter_mut().zip(rest) {
        *m = if v > *m { v } else { *m };
    }
    lanes.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `Σ xs` in `LANES` lanes, then the lanes in order: a fixed order for a given slice, so a
/// row's sums do not depend on anything but the row.
#[inline(always)]
fn sum_lanes(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (chunks, rest) = xs.as_chunks::<LANES>();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    for (l, &v) in lanes.iter_mut().zip(rest) {
        *l += v;
    }
    lanes.iter().sum()
}

/// Online-softmax state of one (query row, head) pair, stored as `[m, l, acc..]`.
struct State<'s>(&'s mut [f32]);

impl State<'_> {
    fn reset(&mut self) {
        self.0.fill(0.0);
        self.0[0] = f32::NEG_INFINITY;
    }

    /// Turns the scores of one key block (already scaled and capped; only `live` counts, the
    /// rest become 0) into weights `e^(s - m_new)`, updates `m` and `l`, and returns the factor
    /// `e^(m_old - m_new)` by which the caller must scale the accumulator before adding the
    /// weighted values. The arithmetic is [`State::update`]'s.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn softmax_block(&mut self, scores: &mut [f32], live: Range<usize>) -> f32 {
        let block_max = max_lanes(&scores[live.clone()]);
        let (m_old, l_old) = (self.0[0], self.0[1]);
        let m_new = m_old.max(block_max);
        if m_new == f32::NEG_INFINITY {
            scores.fill(0.0);
            return 1.0;
        }
        let corr = (m_old - m_new).exp();
        for s in scores.iter_mut() {
            *s -= m_new;
        }
        crate::vec::exp_in_place(scores);
        scores[..live.start].fill(0.0);
        scores[live.end..].fill(0.0);
        let l = l_old * corr + sum_lanes(&scores[live]);
        self.0[0] = m_new;
        self.0[1] = l;
        corr
    }

    /// Folds in `scores` (already scaled and capped) with their value rows `vals`.
    #[inline(always)]
    fn update(&mut self, scores: &mut [f32], vals: &[f32], dv: usize) {
        let block_max = max_lanes(scores);
        let (m_old, l_old) = (self.0[0], self.0[1]);
        let m_new = m_old.max(block_max);
        if m_new == f32::NEG_INFINITY {
            return;
        }
        let corr = (m_old - m_new).exp();
        let mut l = l_old * corr;
        for s in scores.iter_mut() {
            *s -= m_new;
        }
        crate::vec::exp_in_place(scores);
        l += sum_lanes(scores);
        let acc = &mut self.0[2..2 + dv];
        if corr != 1.0 {
            for x in acc.iter_mut() {
                *x *= corr;
            }
        }
        for (&e, v) in scores.iter().zip(vals.chunks_exact(dv)) {
            for (x, &vd) in acc.iter_mut().zip(v) {
                *x += e * vd;
            }
        }
        self.0[0] = m_new;
        self.0[1] = l;
    }
}

/// The fast path; `out` is `[n, n_head · head_dim_v]`.
pub(crate) fn fast(
    pool: &ThreadPool,
    isa: Isa,
    wide: Option<Wide>,
    a: &Attn<'_>,
    out: &mut [f32],
) -> Result<(), ChunkPanicked> {
    let sp = Split::new(a, pool.threads());
    // The AVX-512 kernel needs whole vectors of head dimensions.
    let wide =
        wide.filter(|_| a.p.head_dim.is_multiple_of(16) && a.p.head_dim_v.is_multiple_of(64));
    let mut partial = vec![0.0f32; sp.tasks.len() * sp.region()];
    pool.for_each_chunk_mut(&mut partial, sp.region(), &|c, region| {
        let (rows, heads, keys) = sp.task(a, c);
        match wide {
            #[cfg(target_arch = "x86_64")]
            Some(w) => x86::task_wide(w, isa, a, (rows, heads, keys), region, sp.head_region),
            _ => {
                for (g, head) in heads.zip(region.chunks_exact_mut(sp.head_region)) {
                    task_run(isa, a, (rows.clone(), g, keys.clone()), head);
                }
            }
        }
    })?;
    merge(a, &sp, &partial, out);
    Ok(())
}

/// One task's rows, KV heads and key positions.
type Task = (Range<usize>, Range<usize>, Range<usize>);
/// The work of one KV head of a task: its rows, the head and the key positions.
type HeadTask = (Range<usize>, usize, Range<usize>);

/// Proof that the CPU runs the AVX-512 attention kernel (its VNNI token: AVX-512 F/BW/VL).
#[cfg(target_arch = "x86_64")]
pub(crate) type Wide = crate::isa::Vnni512Token;
/// No wide kernel off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) type Wide = core::convert::Infallible;

/// One task: writes the partial states of its rows × the KV head's query heads.
fn task_run(isa: Isa, a: &Attn<'_>, task: HeadTask, region: &mut [f32]) {
    match isa {
        Isa::Portable => task_body(isa, a, task, region),
        // The portable body, compiled for simd128, with `isa`'s f32 dot and f16 widening.
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => task_body(isa, a, task, region),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(token) => x86::task(token, a, task, region),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use super::{Attn, HeadTask, KEY_BLOCK, State, Task, block_end, load_rows, task_body};
    use crate::isa::{Avx2Token, Isa, Vnni512Token};
    use crate::tensor::KvBuf;
    use realm_core::RowsPlan;

    /// Query vectors (rows × heads of the tile) processed together.
    const QB: usize = 4;

    /// As [`task_body`], register-blocked with AVX-512: the scores of 4 query vectors × 4 keys
    /// at a time (16 accumulators over the head dimension), then the value sum of 4 query
    /// vectors × 64 dimensions held in registers across the whole key block, instead of one
    /// dot product and one read-modify-write of the accumulator per (query, key).
    pub(super) fn task_wide(
        t: Vnni512Token,
        isa: Isa,
        a: &Attn<'_>,
        task: Task,
        region: &mut [f32],
        head_region: usize,
    ) {
        let _ = t;
        // SAFETY: a `Vnni512Token` exists only after AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C
        // were detected.
        unsafe { wide_body(isa, a, task, region, head_region) }
    }

    /// The key blocks in order, and in each block every KV head of the task: a position's
    /// heads lie side by side, so the block's keys and values stream in once (a head at a
    /// time, the other heads' halves of each cache line would be fetched again).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    fn wide_body(
        isa: Isa,
        a: &Attn<'_>,
        (rows, heads, keys): Task,
        region: &mut [f32],
        head_region: usize,
    ) {
        let (hd, dv, nkv) = (a.p.head_dim, a.p.head_dim_v, a.desc.n_head_kv);
        let seq = a.seq(rows.start);
        let (j_start, j_end) = (keys.start, keys.end);
        // Per head of the task, its states: the tile's query vectors, row-major then head
        // (state `ri · group + h`).
        let mut head_states: Vec<Vec<State<'_>>> = region
            .chunks_exact_mut(head_region)
            .map(|r| r.chunks_exact_mut(dv + 2).map(State).collect())
            .collect();
        head_states.iter_mut().flatten().for_each(State::reset);
        let mut kbuf = vec![0.0f32; KEY_BLOCK * hd];
        let mut vals = vec![0.0f32; KEY_BLOCK * dv];
        let mut p = [[0.0f32; KEY_BLOCK]; QB];
        let mut j0 = j_start;
        while j0 < j_end {
            let j1 = block_end(j0, j_end);
            let nk = j1 - j0;
            for (g, states) in heads.clone().zip(head_states.iter_mut()) {
                load_rows16(isa, &a.layer.k, a.rows, seq, nkv, hd, g, j0..j1, &mut kbuf);
                load_rows16(isa, &a.layer.v, a.rows, seq, nkv, dv, g, j0..j1, &mut vals);
                let block = Block { keys: &kbuf[..nk * hd], vals: &vals[..nk * dv], at: j0..j1 };
                fold_block(a, &rows, g, &block, states, &mut p);
            }
            j0 = j1;
        }
    }

    /// One key block of one KV head, converted to f32: `[nk, hd]` keys, `[nk, dv]` values
    /// at positions `at`.
    struct Block<'b> {
        keys: &'b [f32],
        vals: &'b [f32],
        at: core::ops::Range<usize>,
    }

    /// Folds `block` into the states of the tile's query vectors of KV head `g`, four at a
    /// time: their scores, each one's online-softmax update over the positions it sees, then
    /// the weighted values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    fn fold_block(
        a: &Attn<'_>,
        rows: &core::ops::Range<usize>,
        g: usize,
        block: &Block<'_>,
        states: &mut [State<'_>],
        p: &mut [[f32; KEY_BLOCK]; QB],
    ) {
        let (hd, dv, group) = (a.p.head_dim, a.p.head_dim_v, a.group());
        let (j0, j1) = (block.at.start, block.at.end);
        let nk = j1 - j0;
        let nq = rows.len() * group;
        let query = |qi: usize| a.query(rows.start + qi / group, g * group + qi % group);
        let range = |qi: usize| a.range(rows.start + qi / group);
        let mut q0 = 0;
        while q0 < nq {
            let q1 = (q0 + QB).min(nq);
            // Query vectors that see none of this block take no part.
            let live: [bool; QB] = core::array::from_fn(|i| {
                let (rlo, rhi) = if q0 + i < q1 { range(q0 + i) } else { (1, 0) };
                rlo < j1 && rhi >= j0
            });
            if !live.iter().any(|&l| l) {
                q0 = q1;
                continue;
            }
            let qs: [&[f32]; QB] =
                core::array::from_fn(|i| if q0 + i < q1 { query(q0 + i) } else { query(q0) });
            scores(&qs, q1 - q0, block.keys, hd, p);
            let mut any = false;
            let mut corr = [1.0f32; QB];
            for i in 0..q1 - q0 {
                let pi = &mut p[i][..nk];
                let (rlo, rhi) = range(q0 + i);
                let (b0, b1) = (rlo.max(j0).min(j1), (rhi + 1).min(j1).max(j0));
                if !live[i] || b0 >= b1 {
                    pi.fill(0.0);
                    continue;
                }
                for v in pi.iter_mut() {
                    *v = a.score(*v);
                }
                match states.get_mut(q0 + i) {
                    Some(st) => {
                        corr[i] = st.softmax_block(pi, b0 - j0..b1 - j0);
                        any = true;
                    }
                    None => pi.fill(0.0),
                }
            }
            if any {
                accumulate(&mut states[q0..q1], &corr, p, block.vals, nk, dv);
            }
            q0 = q1;
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load16(x: &[f32], at: usize) -> __m512 {
        let b: &[f32; 16] = x[at..at + 16].try_into().unwrap_or(&[0.0; 16]);
        // SAFETY: `b` is 16 readable f32; loadu has no alignment need.
        unsafe { _mm512_loadu_ps(b.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store16(x: &mut [f32], at: usize, v: __m512) {
        if let Some(b) = x.get_mut(at..at + 16) {
            // SAFETY: `b` is 16 writable f32; storeu has no alignment need.
            unsafe { _mm512_storeu_ps(b.as_mut_ptr(), v) }
        }
    }

    /// `p[i][j] = q_i · k_j` for the (up to 32) keys in `keys` (`[nk, hd]`) and the first `nq`
    /// query vectors (a decode row of 3 query heads per KV head computes 3, not 4).
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn scores(
        qs: &[&[f32]; QB],
        nq: usize,
        keys: &[f32],
        hd: usize,
        p: &mut [[f32; KEY_BLOCK]; QB],
    ) {
        match nq {
            1 => scores_n::<1>(qs, keys, hd, p),
            2 => scores_n::<2>(qs, keys, hd, p),
            3 => scores_n::<3>(qs, keys, hd, p),
            _ => scores_n::<4>(qs, keys, hd, p),
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn scores_n<const N: usize>(
        qs: &[&[f32]; QB],
        keys: &[f32],
        hd: usize,
        p: &mut [[f32; KEY_BLOCK]; QB],
    ) {
        let nk = keys.len() / hd;
        let mut j = 0;
        while j < nk {
            let kn = (nk - j).min(4);
            let mut acc = [[_mm512_setzero_ps(); 4]; N];
            for d in (0..hd).step_by(16) {
                let k: [__m512; 4] =
                    core::array::from_fn(|c| load16(keys, (j + c.min(kn - 1)) * hd + d));
                for (acc, q) in acc.iter_mut().zip(qs) {
                    let qv = load16(q, d);
                    for (x, &kv) in acc.iter_mut().zip(&k) {
                        *x = _mm512_fmadd_ps(qv, kv, *x);
                    }
                }
            }
            for (pi, acc) in p.iter_mut().zip(&acc) {
                let mut sums = [0.0f32; 4];
                // SAFETY: `sums` is 4 writable f32.
                unsafe { _mm_storeu_ps(sums.as_mut_ptr(), hsum4(acc)) };
                pi[j..j + kn].copy_from_slice(&sums[..kn]);
            }
            j += kn;
        }
    }

    /// The horizontal sums of four vectors, as one vector: halves added, then two rounds of
    /// pairwise adds (13 instructions for the four, where four full reductions take 32).
    #[inline]
    #[target_feature(enable = "avx512f,avx")]
    fn hsum4(a: &[__m512; 4]) -> __m128 {
        let half = |v: __m512| {
            let hi = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v));
            _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(hi))
        };
        let (s0, s1, s2, s3) = (half(a[0]), half(a[1]), half(a[2]), half(a[3]));
        let h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
        _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))
    }

    /// [`super::load_rows`] for an f16 cache, 16 halves per conversion (whole vectors: the
    /// caller's dimensions are multiples of 16).
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    fn load_rows16(
        isa: Isa,
        buf: &KvBuf,
        rows: &RowsPlan,
        seq: usize,
        n_head_kv: usize,
        dim: usize,
        g: usize,
        js: core::ops::Range<usize>,
        dst: &mut [f32],
    ) {
        let KvBuf::F16(v) = buf else {
            return load_rows(isa, buf, rows, seq, n_head_kv, dim, g, js, dst);
        };
        for (j, d) in js.zip(dst.chunks_exact_mut(dim)) {
            let at = (rows.slot_of(seq, j) * n_head_kv + g) * dim;
            let Some(src) = v.get(at..at + dim) else { continue };
            for (s, o) in src.chunks_exact(16).zip(d.chunks_exact_mut(16)) {
                // SAFETY: `s` is 16 readable halves (32 bytes) and `o` 16 writable f32;
                // unaligned access is fine.
                unsafe {
                    let h = _mm256_loadu_si256(s.as_ptr().cast());
                    _mm512_storeu_ps(o.as_mut_ptr(), _mm512_cvtph_ps(h));
                }
            }
        }
    }

    /// `acc_i = acc_i · corr_i + Σ_j p[i][j] · v_j` for each state, 64 dimensions at a time
    /// in registers across the keys.
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn accumulate(
        states: &mut [State<'_>],
        corr: &[f32; QB],
        p: &[[f32; KEY_BLOCK]; QB],
        vals: &[f32],
        nk: usize,
        dv: usize,
    ) {
        let n = states.len().min(QB);
        for c in (0..dv).step_by(64) {
            let mut acc = [[_mm512_setzero_ps(); 4]; QB];
            for i in 0..n {
                let cv = _mm512_set1_ps(corr[i]);
                for (u, x) in acc[i].iter_mut().enumerate() {
                    *x = _mm512_mul_ps(load16(states[i].0, 2 + c + 16 * u), cv);
                }
            }
            for (j, row) in vals.chunks_exact(dv).take(nk).enumerate() {
                let v: [__m512; 4] = core::array::from_fn(|u| load16(row, c + 16 * u));
                for i in 0..n {
                    let pv = _mm512_set1_ps(p[i][j]);
                    for (x, &vu) in acc[i].iter_mut().zip(&v) {
                        *x = _mm512_fmadd_ps(pv, vu, *x);
                    }
                }
            }
            for i in 0..n {
                for (u, &x) in acc[i].iter().enumerate() {
                    store16(states[i].0, 2 + c + 16 * u, x);
                }
            }
        }
    }

    /// [`task_body`] compiled for AVX2 + FMA + F16C, so that its loops vectorize 8 wide and
    /// the dot products and conversions inline.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn task_avx2(t: Avx2Token, a: &Attn<'_>, task: HeadTask, region: &mut [f32]) {
        task_body(Isa::Avx2(t), a, task, region);
    }

    pub(super) fn task(t: Avx2Token, a: &Attn<'_>, task: HeadTask, region: &mut [f32]) {
        // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
        unsafe { task_avx2(t, a, task, region) }
    }
}

#[inline(always)]
fn task_body(isa: Isa, a: &Attn<'_>, (rows, g, keys_at): HeadTask, region: &mut [f32]) {
    let (hd, dv, nkv, group) = (a.p.head_dim, a.p.head_dim_v, a.desc.n_head_kv, a.group());
    let seq = a.seq(rows.start);
    let (j_start, j_end) = (keys_at.start, keys_at.end);
    let mut states: Vec<State<'_>> = region.chunks_exact_mut(dv + 2).map(State).collect();
    states.iter_mut().for_each(State::reset);
    let mut keys = vec![0.0f32; KEY_BLOCK * hd];
    let mut vals = vec![0.0f32; KEY_BLOCK * dv];
    let mut scores = [0.0f32; KEY_BLOCK];
    let mut j0 = j_start;
    while j0 < j_end {
        let j1 = block_end(j0, j_end);
        load_rows(isa, &a.layer.k, a.rows, seq, nkv, hd, g, j0..j1, &mut keys);
        load_rows(isa, &a.layer.v, a.rows, seq, nkv, dv, g, j0..j1, &mut vals);
        for (ri, r) in rows.clone().enumerate() {
            let (rlo, rhi) = a.range(r);
            let (b0, b1) = (rlo.max(j0), (rhi + 1).min(j1));
            if b0 >= b1 {
                continue;
            }
            let krows = &keys[(b0 - j0) * hd..(b1 - j0) * hd];
            let vrows = &vals[(b0 - j0) * dv..(b1 - j0) * dv];
            for hi_ in 0..group {
                let q = a.query(r, g * group + hi_);
                let sc = &mut scores[..b1 - b0];
                for (s, k) in sc.iter_mut().zip(krows.chunks_exact(hd)) {
                    *s = a.score(crate::vec::dot(isa, q, k));
                }
                if let Some(st) = states.get_mut(ri * group + hi_) {
                    st.update(sc, vrows, dv);
                }
            }
        }
        j0 = j1;
    }
}

/// Combines the segments of every (row, head), in segment order, and normalizes.
fn merge(a: &Attn<'_>, sp: &Split, partial: &[f32], out: &mut [f32]) {
    let (dv, group) = (a.p.head_dim_v, a.group());
    let state = dv + 2;
    for (t, tile) in sp.tiles.iter().enumerate() {
        for (ri, r) in tile.clone().enumerate() {
            let (lo, hi) = a.range(r);
            let segs = lo / SEGMENT..hi / SEGMENT + 1;
            for h in 0..a.p.n_head {
                let (g, hi_) = (h / group, h % group);
                let at = |s: usize| {
                    &partial[sp.region_of(a, t, g, s) + (ri * group + hi_) * state..][..state]
                };
                let m = segs.clone().fold(f32::NEG_INFINITY, |m, s| m.max(at(s)[0]));
                let o = &mut out[(r * a.p.n_head + h) * dv..][..dv];
                o.fill(0.0);
                let mut l = 0.0f32;
                for s in segs.clone() {
                    let st = at(s);
                    if st[0] == f32::NEG_INFINITY {
                        continue;
                    }
                    let c = (st[0] - m).exp();
                    l += st[1] * c;
                    for (x, &v) in o.iter_mut().zip(&st[2..]) {
                        *x += c * v;
                    }
                }
                if l > 0.0 {
                    let inv = 1.0 / l;
                    o.iter_mut().for_each(|x| *x *= inv);
                }
            }
        }
    }
}
