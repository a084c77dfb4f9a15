//! kv_store + attention over a paged KV pool.
//!
//! - One sequence: a prefix stored first, then a prefill step that starts after it, then a
//!   decode step, each attention compared with the oracle. Its blocks are scattered over the
//!   pool (a shuffled block table), so paging is exercised by every scenario.
//! - Batches: several sequences in one step — prefill chunks and decode rows of ragged
//!   lengths, sequences that share their first blocks (a common prefix), a sliding window —
//!   compared with the oracle, and each row compared with the same row run alone on the same
//!   backend (batch invariance).

use realm_core::{
    AttentionParams, Backend, KvDesc, KvDtype, RopeParams, RopeStyle, RowsDesc, RowsPlan,
};

use crate::harness::{Cx, ok};
use crate::rng::SplitMix64;
use crate::tolerance::Check;

#[derive(Debug, Clone, Copy)]
struct Scenario {
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    head_dim_v: usize,
    dtype: KvDtype,
    window: Option<usize>,
    softcap: Option<f32>,
    /// Positions stored before the prefill step.
    prefix: usize,
    /// Rows of the prefill step.
    prefill: usize,
    /// Amplitude of q and k.
    amp: f32,
    block_size: usize,
}

const LAYER: usize = 1;

/// Sequences' block tables over a pool, with blocks handed out in a shuffled order.
pub(crate) struct Pool {
    pub(crate) block_size: usize,
    free: Vec<u32>,
    pub(crate) tables: Vec<Vec<u32>>,
}

impl Pool {
    pub(crate) fn new(block_size: usize, n_blocks: usize, rng: &mut SplitMix64) -> Self {
        let mut free: Vec<u32> = (0..n_blocks as u32).collect();
        for i in (1..free.len()).rev() {
            free.swap(i, rng.below(i + 1));
        }
        Self { block_size, free, tables: Vec::new() }
    }

    /// A new sequence holding `len` positions, whose first `shared` blocks are sequence
    /// `from`'s; returns its index.
    pub(crate) fn sequence(&mut self, len: usize, shared: Option<(usize, usize)>) -> usize {
        let mut t: Vec<u32> = match shared {
            Some((from, blocks)) => self.tables[from][..blocks].to_vec(),
            None => Vec::new(),
        };
        while t.len() * self.block_size < len {
            t.push(self.free.pop().unwrap_or(0));
        }
        self.tables.push(t);
        self.tables.len() - 1
    }

    pub(crate) fn desc<'a>(
        &self,
        refs: &'a [&'a [u32]],
        pos: &'a [u32],
        seq: &'a [u32],
    ) -> RowsDesc<'a> {
        RowsDesc { pos, seq, tables: refs, block_size: self.block_size }
    }
}

impl<B: Backend> Cx<'_, B> {
    /// The same row placement on both backends: rows `(sequence, position)`.
    pub(crate) fn rows(
        &self,
        pool: &Pool,
        rows: &[(usize, usize)],
    ) -> Result<(B::Rows, RowsPlan), String> {
        let refs: Vec<&[u32]> = pool.tables.iter().map(Vec::as_slice).collect();
        let pos: Vec<u32> = rows.iter().map(|&(_, p)| p as u32).collect();
        let seq: Vec<u32> = rows.iter().map(|&(s, _)| s as u32).collect();
        let d = pool.desc(&refs, &pos, &seq);
        Ok((ok("rows", "backend", self.b.rows(&d))?, ok("rows", "oracle", self.o.rows(&d))?))
    }
}

/// The KV pools of both backends with every slot of layer 0 filled with unrelated values (so
/// reading the wrong layer shows) and sequences stored into `LAYER` by `store`.
struct Pools<B: Backend> {
    b: B::Kv,
    o: <realm_backend_cpu::CpuBackend as Backend>::Kv,
    kdim: usize,
    vdim: usize,
    amp: f32,
}

impl<B: Backend> Pools<B> {
    fn new(
        cx: &mut Cx<'_, B>,
        desc: KvDesc,
        amp: f32,
        rng: &mut SplitMix64,
    ) -> Result<Self, String> {
        let b = ok("kv_cache", "backend", cx.b.kv_cache(desc))?;
        let o = ok("kv_cache", "oracle", cx.o.kv_cache(desc))?;
        let (kdim, vdim) = (desc.n_head_kv * desc.head_dim, desc.n_head_kv * desc.head_dim_v);
        let mut p = Self { b, o, kdim, vdim, amp };
        let mut all = Pool::new(desc.block_size, desc.n_blocks, rng);
        let s = all.sequence(desc.n_blocks * desc.block_size, None);
        let rows: Vec<(usize, usize)> =
            (0..desc.n_blocks * desc.block_size).map(|j| (s, j)).collect();
        p.store(cx, &all, 0, &rows, rng)?;
        Ok(p)
    }

    /// Random keys and values for `rows` into `layer`.
    fn store(
        &mut self,
        cx: &mut Cx<'_, B>,
        pool: &Pool,
        layer: usize,
        rows: &[(usize, usize)],
        rng: &mut SplitMix64,
    ) -> Result<(), String> {
        let n = rows.len();
        if n == 0 {
            return Ok(());
        }
        let (rb, ro) = cx.rows(pool, rows)?;
        let (k_b, k_o) = cx.input(n, self.kdim, &rng.vec(n * self.kdim, self.amp))?;
        let (v_b, v_o) = cx.input(n, self.vdim, &rng.vec(n * self.vdim, 1.0))?;
        ok("kv_store", "backend", cx.b.kv_store(&mut self.b, layer, &rb, &k_b, &v_b))?;
        ok("kv_store", "oracle", cx.o.kv_store(&mut self.o, layer, &ro, &k_o, &v_o))
    }
}

/// 4 heads over 2 KV heads of 64, an f16 cache in blocks of 16, no window or cap; a prefix of
/// 40 positions and a prefill of 8 (single-sequence scenarios).
const BASE: Scenario = Scenario {
    n_head: 4,
    n_head_kv: 2,
    head_dim: 64,
    head_dim_v: 64,
    dtype: KvDtype::F16,
    window: None,
    softcap: None,
    prefix: 40,
    prefill: 8,
    amp: 1.5,
    block_size: 16,
};

fn run_list(rows: impl IntoIterator<Item = usize>, seq: usize) -> Vec<(usize, usize)> {
    rows.into_iter().map(|p| (seq, p)).collect()
}

pub(crate) fn run<B: Backend>(cx: &mut Cx<'_, B>) {
    let base = BASE;
    let scenarios = [
        base,
        Scenario { dtype: KvDtype::F32, block_size: 32, ..base },
        Scenario { n_head: 3, n_head_kv: 3, head_dim: 32, head_dim_v: 32, ..base },
        Scenario { n_head: 8, n_head_kv: 1, block_size: 64, ..base },
        Scenario { window: Some(16), ..base },
        Scenario { window: Some(16), dtype: KvDtype::F32, prefill: 20, ..base },
        Scenario { softcap: Some(10.0), amp: 4.0, ..base },
        Scenario { head_dim_v: 32, prefix: 0, ..base },
        // Gemma-like: one KV head for 4 query heads, wide heads, a prefill longer than one
        // block of keys with the causal edge inside blocks.
        Scenario {
            n_head: 4,
            n_head_kv: 1,
            head_dim: 128,
            head_dim_v: 128,
            prefix: 5,
            prefill: 37,
            ..base
        },
        // A long cache, so a backend that splits decode over positions does.
        Scenario { prefix: 300, prefill: 3, n_head: 2, n_head_kv: 1, ..base },
        Scenario { prefix: 300, prefill: 3, window: Some(100), ..base },
    ];
    for s in scenarios {
        let name = format!(
            "attention {}h/{}kv d={}/{} {:?} window={:?} softcap={:?} prefix={} prefill={} block={}",
            s.n_head,
            s.n_head_kv,
            s.head_dim,
            s.head_dim_v,
            s.dtype,
            s.window,
            s.softcap,
            s.prefix,
            s.prefill,
            s.block_size
        );
        cx.case(&name, |cx, rng| scenario(cx, &name, s, rng));
    }
    batches(cx);
}

fn params(s: &Scenario) -> AttentionParams {
    AttentionParams {
        n_head: s.n_head,
        n_head_kv: s.n_head_kv,
        head_dim: s.head_dim,
        head_dim_v: s.head_dim_v,
        scale: if s.softcap.is_some() { 1.0 } else { 1.0 / (s.head_dim as f32).sqrt() },
        window: s.window,
        softcap: s.softcap,
    }
}

fn kv_desc(s: &Scenario, n_blocks: usize) -> KvDesc {
    KvDesc {
        n_layer: 2,
        n_blocks,
        block_size: s.block_size,
        n_head_kv: s.n_head_kv,
        head_dim: s.head_dim,
        head_dim_v: s.head_dim_v,
        dtype: s.dtype,
    }
}

fn scenario<B: Backend>(
    cx: &mut Cx<'_, B>,
    name: &str,
    s: Scenario,
    rng: &mut SplitMix64,
) -> Result<(), String> {
    let len = s.prefix + s.prefill + 1;
    // Room for the sequence and as many blocks again, so its blocks are scattered.
    let n_blocks = 2 * len.div_ceil(s.block_size) + 1;
    let mut pool = Pool::new(s.block_size, n_blocks, rng);
    let seq = pool.sequence(len, None);
    let mut kv = Pools::new(cx, kv_desc(&s, n_blocks), s.amp, rng)?;
    kv.store(cx, &pool, LAYER, &run_list(0..s.prefix, seq), rng)?;
    kv.store(cx, &pool, LAYER, &run_list(s.prefix..s.prefix + s.prefill, seq), rng)?;
    kv.store(cx, &pool, LAYER, &run_list([s.prefix + s.prefill], seq), rng)?;
    for (step, start, n) in [("prefill", s.prefix, s.prefill), ("decode", s.prefix + s.prefill, 1)]
    {
        let qdim = s.n_head * s.head_dim;
        let mut rng = SplitMix64::for_case(&format!("{name} {step}"));
        let (qb, qo) = cx.input(n, qdim, &rng.vec(n * qdim, s.amp))?;
        let (mut b, mut o) = cx.output(n, s.n_head * s.head_dim_v)?;
        let (rb, ro) = cx.rows(&pool, &run_list(start..start + n, seq))?;
        let p = params(&s);
        ok("attention", "backend", cx.b.attention(&qb, &kv.b, LAYER, &p, &rb, &mut b))?;
        ok("attention", "oracle", cx.o.attention(&qo, &kv.o, LAYER, &p, &ro, &mut o))?;
        cx.compare(&format!("{name} {step}"), Check::Attention, &b, &o)
            .map_err(|e| format!("{step}: {e}"))?;
    }
    Ok(())
}

/// A batch of several sequences in one step.
#[derive(Debug, Clone, Copy)]
struct BatchCase {
    name: &'static str,
    s: Scenario,
    /// Per sequence: (cached positions before the step, rows in the step, blocks shared with
    /// the sequence before it).
    seqs: &'static [(usize, usize, usize)],
}

fn batches<B: Backend>(cx: &mut Cx<'_, B>) {
    let base = Scenario { prefix: 0, prefill: 0, ..BASE };
    let cases = [
        // Decode rows of ragged lengths, one of them long enough to split, and a prefill
        // chunk after a cached prefix, in one step.
        BatchCase {
            name: "ragged",
            s: base,
            seqs: &[(40, 8, 0), (300, 1, 0), (5, 1, 0), (0, 12, 0), (17, 1, 0)],
        },
        // Sequences that share their first blocks with the one before (a common prefix),
        // each going on from it: one decoding, one prefilling the rest of its prompt.
        BatchCase {
            name: "shared prefix",
            s: base,
            seqs: &[(48, 1, 0), (48, 6, 3), (50, 1, 3), (33, 1, 2)],
        },
        // A sliding-window layer over the same shapes; Gemma's wide heads and one KV head.
        BatchCase {
            name: "sliding window",
            s: Scenario { window: Some(24), block_size: 32, ..base },
            seqs: &[(70, 1, 0), (64, 9, 2), (3, 1, 0), (130, 1, 0)],
        },
        BatchCase {
            name: "gemma-like f32",
            s: Scenario {
                n_head: 4,
                n_head_kv: 1,
                head_dim: 128,
                head_dim_v: 128,
                dtype: KvDtype::F32,
                ..base
            },
            seqs: &[(20, 16, 0), (200, 1, 0), (21, 1, 1)],
        },
    ];
    for c in cases {
        let name = format!("attention batch {}: {:?}", c.name, c.seqs);
        cx.case(&name, |cx, rng| batch(cx, &name, c, rng));
    }
}

fn batch<B: Backend>(
    cx: &mut Cx<'_, B>,
    name: &str,
    c: BatchCase,
    rng: &mut SplitMix64,
) -> Result<(), String> {
    let s = c.s;
    let blocks: usize =
        c.seqs.iter().map(|&(cached, n, _)| (cached + n).div_ceil(s.block_size)).sum();
    let n_blocks = 2 * blocks + 1;
    let mut pool = Pool::new(s.block_size, n_blocks, rng);
    let mut kv = Pools::new(cx, kv_desc(&s, n_blocks), s.amp, rng)?;
    let mut step = Vec::new();
    for (i, &(cached, n, shared)) in c.seqs.iter().enumerate() {
        let from = (shared > 0 && i > 0).then(|| (i - 1, shared));
        let seq = pool.sequence(cached + n, from);
        // Positions in shared blocks were stored by the sequence that owns them.
        let own = if from.is_some() { shared * s.block_size } else { 0 };
        kv.store(cx, &pool, LAYER, &run_list(own.min(cached)..cached, seq), rng)?;
        step.extend(run_list(cached..cached + n, seq));
    }
    // The step stores its rows' keys and values, then attends.
    kv.store(cx, &pool, LAYER, &step, rng)?;
    let n = step.len();
    let qdim = s.n_head * s.head_dim;
    let odim = s.n_head * s.head_dim_v;
    let q = rng.vec(n * qdim, s.amp);
    let (qb, qo) = cx.input(n, qdim, &q)?;
    let (mut b, mut o) = cx.output(n, odim)?;
    let (rb, ro) = cx.rows(&pool, &step)?;
    let p = params(&s);
    ok("attention", "backend", cx.b.attention(&qb, &kv.b, LAYER, &p, &rb, &mut b))?;
    ok("attention", "oracle", cx.o.attention(&qo, &kv.o, LAYER, &p, &ro, &mut o))?;
    cx.compare(name, Check::Attention, &b, &o)?;
    // Each row alone on the backend under test must give what it gave in the batch.
    let batched = ok("read", "backend", crate::block_on(cx.b.read(&b)))?;
    for (r, &row) in step.iter().enumerate() {
        let (qb1, _) = cx.input(1, qdim, &q[r * qdim..(r + 1) * qdim])?;
        let mut alone = ok("tensor", "backend", cx.b.tensor(1, odim))?;
        let (rb1, _) = cx.rows(&pool, &[row])?;
        ok("attention", "backend", cx.b.attention(&qb1, &kv.b, LAYER, &p, &rb1, &mut alone))?;
        ok("submit", "backend", cx.b.submit())?;
        let got = ok("read", "backend", crate::block_on(cx.b.read(&alone)))?;
        let want = &batched[r * odim..(r + 1) * odim];
        crate::compare::check(&got, want, crate::tolerance(Check::Attention))
            .map_err(|e| format!("row {r} {row:?} alone vs in the batch: {e}"))?;
    }
    Ok(())
}

/// `rope_kv_store` (rope of q and k, k and v into the cache): q compared after it, and the
/// cache through an attention that reads it. Rows may be of several sequences at their own
/// positions.
pub(crate) fn rope_kv<B: Backend>(cx: &mut Cx<'_, B>) {
    // (n_head, n_head_kv, head_dim, rope_dim, style, dtype, rows as (cached, new) per sequence)
    type Case = (usize, usize, usize, usize, RopeStyle, KvDtype, &'static [(usize, usize)]);
    let cases: [Case; 6] = [
        (4, 2, 64, 64, RopeStyle::Normal, KvDtype::F16, &[(5, 3)]),
        (4, 2, 64, 32, RopeStyle::Neox, KvDtype::F32, &[(5, 3)]),
        (4, 2, 64, 64, RopeStyle::Neox, KvDtype::F16, &[(40, 1)]),
        (8, 1, 128, 128, RopeStyle::Neox, KvDtype::F16, &[(0, 7)]),
        (3, 3, 32, 16, RopeStyle::Normal, KvDtype::F32, &[(9, 1)]),
        // Three sequences at their own positions in one step.
        (4, 2, 64, 64, RopeStyle::Neox, KvDtype::F16, &[(33, 1), (0, 5), (70, 1)]),
    ];
    for (n_head, n_head_kv, head_dim, rope_dim, style, dtype, seqs) in cases {
        let name = format!(
            "rope_kv_store {n_head}h/{n_head_kv}kv d={head_dim} rope={rope_dim} {style:?} {dtype:?} seqs={seqs:?}"
        );
        cx.case(&name, |cx, rng| {
            let s = Scenario { n_head, n_head_kv, head_dim, head_dim_v: head_dim, dtype, ..BASE };
            let blocks: usize = seqs.iter().map(|&(c, n)| (c + n).div_ceil(16)).sum();
            let n_blocks = 2 * blocks + 1;
            let mut pool = Pool::new(16, n_blocks, rng);
            let mut kv = Pools::new(cx, kv_desc(&s, n_blocks), 1.5, rng)?;
            let mut step = Vec::new();
            for &(cached, n) in seqs {
                let seq = pool.sequence(cached + n, None);
                kv.store(cx, &pool, LAYER, &run_list(0..cached, seq), rng)?;
                step.extend(run_list(cached..cached + n, seq));
            }
            let n = step.len();
            let (qdim, kdim) = (n_head * head_dim, n_head_kv * head_dim);
            let (mut qb, mut qo) = cx.input(n, qdim, &rng.vec(n * qdim, 1.5))?;
            let (mut k_b, mut k_o) = cx.input(n, kdim, &rng.vec(n * kdim, 1.5))?;
            let (v_b, v_o) = cx.input(n, kdim, &rng.vec(n * kdim, 1.0))?;
            let (rb, ro) = cx.rows(&pool, &step)?;
            let rope = |n_heads| RopeParams {
                n_heads,
                head_dim,
                rope_dim,
                freq_base: 10000.0,
                freq_scale: 1.0,
                style,
            };
            let (rq, rk) = (rope(n_head), rope(n_head_kv));
            let r = cx.b.rope_kv_store(&mut qb, &mut k_b, &v_b, &mut kv.b, LAYER, &rq, &rk, &rb);
            ok("rope_kv_store", "backend", r)?;
            let r = cx.o.rope_kv_store(&mut qo, &mut k_o, &v_o, &mut kv.o, LAYER, &rq, &rk, &ro);
            ok("rope_kv_store", "oracle", r)?;
            cx.compare(&format!("{name} q"), Check::Rope, &qb, &qo)?;
            let p = params(&s);
            let (mut b, mut o) = cx.output(n, n_head * head_dim)?;
            ok("attention", "backend", cx.b.attention(&qb, &kv.b, LAYER, &p, &rb, &mut b))?;
            ok("attention", "oracle", cx.o.attention(&qo, &kv.o, LAYER, &p, &ro, &mut o))?;
            cx.compare(&format!("{name} attention"), Check::Attention, &b, &o)
        });
    }
}
