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
//!   slices are merged at the end. On x86_64 with AVX-512 (head dimensions a multiple of 16,
//!   value dimensions of 64) the task is register-blocked: scores of 4 query vectors × 4 keys
//!   at once, and the weighted value sum of 4 query vectors held in registers across a block
//!   of keys (`x86::task_wide`), which cut Gemma 3's prompt attention time by about 40 %.

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

    /// Turns the scores of one key block (already scaled and capped; only `live` counts, the
    /// rest become 0) into weights `e^(s - m_new)`, updates `m` and `l`, and returns the factor
    /// `e^(m_old - m_new)` by which the caller must scale the accumulator before adding the
    /// weighted values. The arithmetic is [`State::update`]'s.
    #[cfg(target_arch = "x86_64")]
    fn softmax_block(&mut self, scores: &mut [f32], live: Range<usize>) -> f32 {
        let block_max = scores[live.clone()].iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
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
        let mut l = l_old * corr;
        for &e in &scores[live] {
            l += e;
        }
        self.0[0] = m_new;
        self.0[1] = l;
        corr
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
    wide: Option<Wide>,
    a: &Attn<'_>,
    out: &mut [f32],
) -> Result<(), ChunkPanicked> {
    let sp = Split::new(a, pool.threads());
    // The AVX-512 kernel needs whole vectors of head dimensions.
    let wide =
        wide.filter(|_| a.p.head_dim.is_multiple_of(16) && a.p.head_dim_v.is_multiple_of(64));
    let nkv = a.p.n_head_kv;
    let tasks = sp.tiles * nkv * sp.splits;
    let mut partial = vec![0.0f32; tasks * sp.region];
    pool.for_each_chunk_mut(&mut partial, sp.region, &|c, region| {
        let (t, rest) = (c / (nkv * sp.splits), c % (nkv * sp.splits));
        let (g, s) = (rest / sp.splits, rest % sp.splits);
        match wide {
            #[cfg(target_arch = "x86_64")]
            Some(w) => x86::task_wide(w, isa, a, &sp, (t, g, s), region),
            _ => task(isa, a, &sp, t, g, s, region),
        }
    })?;
    merge(a, &sp, &partial, out);
    Ok(())
}

/// Proof that the CPU runs the AVX-512 attention kernel (its VNNI token: AVX-512 F/BW/VL).
#[cfg(target_arch = "x86_64")]
pub(crate) type Wide = crate::isa::Vnni512Token;
/// No wide kernel off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) type Wide = core::convert::Infallible;

/// Query tile `t`, KV head `g`, position slice `s`: writes the tile's partial states.
fn task(isa: Isa, a: &Attn<'_>, sp: &Split, t: usize, g: usize, s: usize, region: &mut [f32]) {
    match isa {
        Isa::Portable => task_body(isa, a, sp, t, g, s, region),
        // The portable body, compiled for simd128, with `isa`'s f32 dot and f16 widening.
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => task_body(isa, a, sp, t, g, s, region),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(token) => x86::task(token, a, sp, t, g, s, region),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use super::{Attn, KEY_BLOCK, Split, State, load_rows, task_body};
    use crate::isa::{Avx2Token, Isa, Vnni512Token};

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
        sp: &Split,
        tgs: (usize, usize, usize),
        region: &mut [f32],
    ) {
        let _ = t;
        // SAFETY: a `Vnni512Token` exists only after AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C
        // were detected.
        unsafe { wide_body(isa, a, sp, tgs, region) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    fn wide_body(
        isa: Isa,
        a: &Attn<'_>,
        sp: &Split,
        (t, g, s): (usize, usize, usize),
        region: &mut [f32],
    ) {
        let (hd, dv, nkv, group) = (a.p.head_dim, a.p.head_dim_v, a.desc.n_head_kv, a.group());
        let rows = t * sp.tile..((t + 1) * sp.tile).min(a.n);
        let (lo, _) = a.range(rows.start);
        let (_, hi) = a.range(rows.end - 1);
        let span = hi + 1 - lo;
        let per = span.div_ceil(sp.splits);
        let (j_start, j_end) = (lo + s * per, (lo + (s + 1) * per).min(hi + 1));
        let mut states: Vec<State<'_>> = region.chunks_exact_mut(dv + 2).map(State).collect();
        states.iter_mut().for_each(State::reset);
        // The tile's query vectors, row-major then head: state `ri · group + h`.
        let nq = rows.len() * group;
        let query = |qi: usize| a.query(rows.start + qi / group, g * group + qi % group);
        let range = |qi: usize| a.range(rows.start + qi / group);
        let mut keys = vec![0.0f32; KEY_BLOCK * hd];
        let mut vals = vec![0.0f32; KEY_BLOCK * dv];
        let mut p = [[0.0f32; KEY_BLOCK]; QB];
        let mut j0 = j_start;
        while j0 < j_end {
            let j1 = (j0 + KEY_BLOCK).min(j_end);
            let nk = j1 - j0;
            load_rows(isa, &a.layer.k, nkv, hd, g, j0..j1, &mut keys);
            load_rows(isa, &a.layer.v, nkv, dv, g, j0..j1, &mut vals);
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
                scores(&qs, &keys[..nk * hd], hd, &mut p);
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
                    accumulate(&mut states[q0..q1], &corr, &p, &vals[..nk * dv], nk, dv);
                }
                q0 = q1;
            }
            j0 = j1;
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

    /// `p[i][j] = q_i · k_j` for the (up to 32) keys in `keys` (`[nk, hd]`).
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    fn scores(qs: &[&[f32]; QB], keys: &[f32], hd: usize, p: &mut [[f32; KEY_BLOCK]; QB]) {
        let nk = keys.len() / hd;
        let mut j = 0;
        while j < nk {
            let kn = (nk - j).min(4);
            let mut acc = [[_mm512_setzero_ps(); 4]; QB];
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
                for c in 0..kn {
                    pi[j + c] = _mm512_reduce_add_ps(acc[c]);
                }
            }
            j += kn;
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
