//! Causal attention over the KV cache, with grouped-query heads, a sliding window and an
//! optional score soft-cap.
//!
//! - [`scalar`]: the oracle. Per query row and head: every score in f32, the softmax over
//!   them, then the weighted sum of the values, one position at a time.
//! - [`fast`]: online softmax (the flash-attention recurrence: a running max `m`, normalizer
//!   `l` and accumulator rescaled by `e^(m_old - m_new)`). The work is split into tasks of
//!   (a tile of query rows, one KV head with its query heads, a slice of the key positions);
//!   each task converts a block of keys/values to f32 once and reuses it for every query row
//!   and head of the tile. Decode (one row) splits over key positions so that all threads
//!   help; prefill splits over query tiles and heads. Partial `(m, l, acc)` of the position
//!   slices are merged at the end.

use std::ops::Range;

use realm_core::{AttentionParams, KvDesc};

use crate::isa::Isa;
use crate::ops::elementwise::softcap;
use crate::pool::{ChunkPanicked, ThreadPool};
use crate::tensor::{KvBuf, LayerKv};

/// Key positions converted to f32 at a time.
const KEY_BLOCK: usize = 32;
/// Query rows per task in prefill.
const QUERY_TILE: usize = 8;
/// Fewest key positions worth a task of their own.
const MIN_SPLIT: usize = 128;

/// What every attention task needs.
pub(crate) struct Attn<'a> {
    pub(crate) q: &'a [f32],
    pub(crate) layer: &'a LayerKv,
    pub(crate) desc: &'a KvDesc,
    pub(crate) p: &'a AttentionParams,
    pub(crate) n: usize,
}

impl Attn<'_> {
    fn group(&self) -> usize {
        self.p.n_head / self.p.n_head_kv.max(1)
    }

    /// The key positions row `r` sees: `lo ..= pos`.
    fn range(&self, r: usize) -> (usize, usize) {
        let pos = self.p.start_pos + r;
        let lo = self.p.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        (lo, pos)
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

/// Converts the rows of KV head `g` at positions `js` into `dst` (`js.len() × dim`).
#[inline(always)]
fn load_rows(
    isa: Isa,
    buf: &KvBuf,
    n_head_kv: usize,
    dim: usize,
    g: usize,
    js: Range<usize>,
    dst: &mut [f32],
) {
    for (j, d) in js.zip(dst.chunks_exact_mut(dim)) {
        let at = (j * n_head_kv + g) * dim;
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
        for h in 0..a.p.n_head {
            let g = h / group;
            let q = a.query(r, h);
            scores.clear();
            for j in lo..=pos {
                let base = (j * nkv + g) * hd;
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
                let base = (j * nkv + g) * dv;
                for (d, od) in o.iter_mut().enumerate() {
                    *od += w * value_at(&a.layer.v, base + d);
                }
            }
        }
    }
}

/// How the fast path splits the work.
struct Split {
    tile: usize,
    tiles: usize,
    splits: usize,
    /// Floats of one task's partial results: `tile × group × (dv + 2)`.
    region: usize,
}

impl Split {
    fn new(a: &Attn<'_>, threads: usize) -> Self {
        let tile = if a.n == 1 { 1 } else { QUERY_TILE.min(a.n) };
        let tiles = a.n.div_ceil(tile);
        let tasks = tiles * a.p.n_head_kv;
        let (lo, _) = a.range(0);
        let (_, hi) = a.range(a.n - 1);
        let span = hi + 1 - lo;
        let splits = if tasks >= 2 * threads || threads <= 1 {
            1
        } else {
            (2 * threads).div_ceil(tasks).min(span.div_ceil(MIN_SPLIT)).max(1)
        };
        Self { tile, tiles, splits, region: tile * a.group() * (a.p.head_dim_v + 2) }
    }
}

/// Online-softmax state of one (query row, head) pair, stored as `[m, l, acc..]`.
struct State<'s>(&'s mut [f32]);

impl State<'_> {
    fn reset(&mut self) {
        self.0.fill(0.0);
        self.0[0] = f32::NEG_INFINITY;
    }

    /// Folds in `scores` (already scaled and capped) with their value rows `vals`.
    #[inline(always)]
    fn update(&mut self, scores: &mut [f32], vals: &[f32], dv: usize) {
        let block_max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
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
        for &e in scores.iter() {
            l += e;
        }
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
    a: &Attn<'_>,
    out: &mut [f32],
) -> Result<(), ChunkPanicked> {
    let sp = Split::new(a, pool.threads());
    let nkv = a.p.n_head_kv;
    let tasks = sp.tiles * nkv * sp.splits;
    let mut partial = vec![0.0f32; tasks * sp.region];
    pool.for_each_chunk_mut(&mut partial, sp.region, &|c, region| {
        let (t, rest) = (c / (nkv * sp.splits), c % (nkv * sp.splits));
        let (g, s) = (rest / sp.splits, rest % sp.splits);
        task(isa, a, &sp, t, g, s, region);
    })?;
    merge(a, &sp, &partial, out);
    Ok(())
}

/// Query tile `t`, KV head `g`, position slice `s`: writes the tile's partial states.
fn task(isa: Isa, a: &Attn<'_>, sp: &Split, t: usize, g: usize, s: usize, region: &mut [f32]) {
    match isa {
        Isa::Portable => task_body(isa, a, sp, t, g, s, region),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(token) => x86::task(token, a, sp, t, g, s, region),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Attn, Split, task_body};
    use crate::isa::{Avx2Token, Isa};

    /// [`task_body`] compiled for AVX2 + FMA + F16C, so that its loops vectorize 8 wide and
    /// the dot products and conversions inline.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn task_avx2(
        t: Avx2Token,
        a: &Attn<'_>,
        sp: &Split,
        (ti, g, s): (usize, usize, usize),
        region: &mut [f32],
    ) {
        task_body(Isa::Avx2(t), a, sp, ti, g, s, region);
    }

    pub(super) fn task(
        t: Avx2Token,
        a: &Attn<'_>,
        sp: &Split,
        ti: usize,
        g: usize,
        s: usize,
        region: &mut [f32],
    ) {
        // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
        unsafe { task_avx2(t, a, sp, (ti, g, s), region) }
    }
}

#[inline(always)]
fn task_body(isa: Isa, a: &Attn<'_>, sp: &Split, t: usize, g: usize, s: usize, region: &mut [f32]) {
    let (hd, dv, nkv, group) = (a.p.head_dim, a.p.head_dim_v, a.desc.n_head_kv, a.group());
    let rows = t * sp.tile..((t + 1) * sp.tile).min(a.n);
    let (lo, _) = a.range(rows.start);
    let (_, hi) = a.range(rows.end - 1);
    let span = hi + 1 - lo;
    let per = span.div_ceil(sp.splits);
    let (j_start, j_end) = (lo + s * per, (lo + (s + 1) * per).min(hi + 1));
    let mut states: Vec<State<'_>> = region.chunks_exact_mut(dv + 2).map(State).collect();
    states.iter_mut().for_each(State::reset);
    let mut keys = vec![0.0f32; KEY_BLOCK * hd];
    let mut vals = vec![0.0f32; KEY_BLOCK * dv];
    let mut scores = [0.0f32; KEY_BLOCK];
    let mut j0 = j_start;
    while j0 < j_end {
        let j1 = (j0 + KEY_BLOCK).min(j_end);
        load_rows(isa, &a.layer.k, nkv, hd, g, j0..j1, &mut keys);
        load_rows(isa, &a.layer.v, nkv, dv, g, j0..j1, &mut vals);
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

/// Combines the position slices of every (row, head) and normalizes.
fn merge(a: &Attn<'_>, sp: &Split, partial: &[f32], out: &mut [f32]) {
    let (dv, nkv, group) = (a.p.head_dim_v, a.p.n_head_kv, a.group());
    let state = dv + 2;
    for r in 0..a.n {
        let (t, ri) = (r / sp.tile, r % sp.tile);
        for h in 0..a.p.n_head {
            let (g, hi_) = (h / group, h % group);
            let at = |s: usize| {
                let task = (t * nkv + g) * sp.splits + s;
                &partial[task * sp.region + (ri * group + hi_) * state..][..state]
            };
            let m = (0..sp.splits).fold(f32::NEG_INFINITY, |m, s| m.max(at(s)[0]));
            let o = &mut out[(r * a.p.n_head + h) * dv..][..dv];
            o.fill(0.0);
            let mut l = 0.0f32;
            for s in 0..sp.splits {
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
