//! Batched decode on the wgpu backend, beyond what the shared conformance suite reaches:
//! - steps of decode rows only (one row per sequence, ragged lengths, shared prefix blocks,
//!   a window, a soft-cap), whose key positions are split with empty splits for the shorter
//!   rows, and a step of enough rows to run unsplit;
//! - the batch matvec (4 output rows × 8 activation rows per workgroup) at 8, 9, 12 and 16
//!   rows, with the norm folded in and each epilogue.
//!
//! Each result against the CPU scalar oracle with the tolerance table's budget, and each
//! attention row alone against the same row in its batch. Needs an adapter as conformance.rs
//! does (lavapipe without a GPU; `REALM_SKIP_WGPU=1` skips, printed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use realm_backend_wgpu::{WgpuBackend, WgpuConfig};
use realm_conformance::rng::SplitMix64;
use realm_conformance::{Check, CpuBackend, CpuConfig, CpuMode, block_on, compare, tolerance};
use realm_core::{
    Activation, AttentionParams, Backend, Epilogue, GgmlType, KvDesc, KvDtype, RowsDesc,
    WeightDesc, WeightLayout,
};

fn backends() -> Option<(WgpuBackend, CpuBackend)> {
    match block_on(WgpuBackend::new(WgpuConfig::default())) {
        Ok(b) => Some((
            b,
            CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Scalar, ..Default::default() }),
        )),
        Err(e) if std::env::var("REALM_SKIP_WGPU").is_ok_and(|v| v == "1") => {
            println!("SKIPPED (REALM_SKIP_WGPU=1): no wgpu device: {e}");
            None
        }
        Err(e) => panic!("no wgpu device: {e} (see tests/conformance.rs)"),
    }
}

fn weight<B: Backend>(
    be: &B,
    ty: GgmlType,
    (rows, cols): (usize, usize),
    bytes: Vec<u8>,
    layout: WeightLayout,
) -> B::Weight {
    let len = bytes.len();
    let desc = WeightDesc {
        name: "w".into(),
        ty,
        rows,
        cols,
        layout,
        bytes: Arc::new(bytes),
        offset: 0,
        len,
    };
    be.upload(desc).unwrap()
}

/// A tensor holding `data`, through an f32 table and `embed` (the contract's only way in).
fn input<B: Backend>(be: &B, rows: usize, cols: usize, data: &[f32]) -> B::Tensor {
    let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let table = weight(be, GgmlType::F32, (rows, cols), bytes, WeightLayout::Embedding);
    let mut t = be.tensor(rows, cols).unwrap();
    let ids: Vec<u32> = (0..rows as u32).collect();
    be.embed(&table, &ids, &mut t).unwrap();
    t
}

fn read<B: Backend>(be: &B, t: &B::Tensor) -> Vec<f32> {
    be.submit().unwrap();
    block_on(be.read(t)).unwrap()
}

/// Block tables over a shuffled pool: sequence `i` of `len` positions, its first `shared`
/// blocks those of sequence `i - 1`.
struct Tables {
    block_size: usize,
    tables: Vec<Vec<u32>>,
}

impl Tables {
    fn new(block_size: usize, seqs: &[(usize, usize)], rng: &mut SplitMix64) -> (Self, usize) {
        let n_blocks: usize = seqs.iter().map(|&(len, _)| len.div_ceil(block_size)).sum();
        let mut free: Vec<u32> = (0..n_blocks as u32).collect();
        for i in (1..free.len()).rev() {
            free.swap(i, rng.below(i + 1));
        }
        let mut tables: Vec<Vec<u32>> = Vec::new();
        for (i, &(len, shared)) in seqs.iter().enumerate() {
            let mut t = if shared > 0 { tables[i - 1][..shared].to_vec() } else { Vec::new() };
            while t.len() * block_size < len {
                t.push(free.pop().unwrap());
            }
            tables.push(t);
        }
        (Self { block_size, tables }, n_blocks)
    }

    fn rows<B: Backend>(&self, be: &B, rows: &[(usize, usize)]) -> B::Rows {
        let refs: Vec<&[u32]> = self.tables.iter().map(Vec::as_slice).collect();
        let pos: Vec<u32> = rows.iter().map(|&(_, p)| p as u32).collect();
        let seq: Vec<u32> = rows.iter().map(|&(s, _)| s as u32).collect();
        be.rows(&RowsDesc { pos: &pos, seq: &seq, tables: &refs, block_size: self.block_size })
            .unwrap()
    }
}

/// One decode-only step: sequences `(len, shared blocks)`, each with its last position as
/// the step's row.
fn decode_step(
    name: &str,
    p: AttentionParams,
    dtype: KvDtype,
    seqs: &[(usize, usize)],
    alone_every: usize,
) {
    let Some((b, o)) = backends() else { return };
    let mut rng = SplitMix64::for_case(name);
    let (tables, n_blocks) = Tables::new(16, seqs, &mut rng);
    let desc = KvDesc {
        n_layer: 1,
        n_blocks,
        block_size: 16,
        n_head_kv: p.n_head_kv,
        head_dim: p.head_dim,
        head_dim_v: p.head_dim_v,
        dtype,
    };
    let (mut kb, mut ko) = (b.kv_cache(desc).unwrap(), o.kv_cache(desc).unwrap());
    // Every sequence's own positions (not those of the blocks it shares), one store.
    let mut stored = Vec::new();
    for (s, &(len, shared)) in seqs.iter().enumerate() {
        stored.extend((shared * 16..len).map(|j| (s, j)));
    }
    let n = stored.len();
    let (kdim, vdim) = (p.n_head_kv * p.head_dim, p.n_head_kv * p.head_dim_v);
    let (k, v) = (rng.vec(n * kdim, 1.5), rng.vec(n * vdim, 1.0));
    let (rb, ro) = (tables.rows(&b, &stored), tables.rows(&o, &stored));
    let (k_b, v_b) = (input(&b, n, kdim, &k), input(&b, n, vdim, &v));
    let (k_o, v_o) = (input(&o, n, kdim, &k), input(&o, n, vdim, &v));
    b.kv_store(&mut kb, 0, &rb, &k_b, &v_b).unwrap();
    o.kv_store(&mut ko, 0, &ro, &k_o, &v_o).unwrap();

    let step: Vec<(usize, usize)> =
        seqs.iter().enumerate().map(|(s, &(len, _))| (s, len - 1)).collect();
    let n = step.len();
    let (qdim, odim) = (p.n_head * p.head_dim, p.n_head * p.head_dim_v);
    let q = rng.vec(n * qdim, 1.5);
    let (rb, ro) = (tables.rows(&b, &step), tables.rows(&o, &step));
    let (mut out_b, mut out_o) = (b.tensor(n, odim).unwrap(), o.tensor(n, odim).unwrap());
    b.attention(&input(&b, n, qdim, &q), &kb, 0, &p, &rb, &mut out_b).unwrap();
    o.attention(&input(&o, n, qdim, &q), &ko, 0, &p, &ro, &mut out_o).unwrap();
    let batched = read(&b, &out_b);
    let want = read(&o, &out_o);
    let tol = tolerance(Check::Attention);
    compare::check(&batched, &want, tol).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (r, &row) in step.iter().enumerate().step_by(alone_every) {
        let rb1 = tables.rows(&b, &[row]);
        let mut alone = b.tensor(1, odim).unwrap();
        let q1 = input(&b, 1, qdim, &q[r * qdim..(r + 1) * qdim]);
        b.attention(&q1, &kb, 0, &p, &rb1, &mut alone).unwrap();
        let got = read(&b, &alone);
        compare::check(&got, &batched[r * odim..(r + 1) * odim], tol)
            .unwrap_or_else(|e| panic!("{name}: row {r} {row:?} alone vs in the batch: {e}"));
    }
}

fn params(n_head: usize, n_head_kv: usize, window: Option<usize>) -> AttentionParams {
    AttentionParams {
        n_head,
        n_head_kv,
        head_dim: 64,
        head_dim_v: 64,
        scale: 0.125,
        window,
        softcap: None,
    }
}

/// Ragged lengths (one long enough for 5 splits, one of a single position), a sequence that
/// shares 8 blocks with the one before it.
const RAGGED: [(usize, usize); 6] = [(301, 0), (6, 0), (130, 0), (150, 8), (1, 0), (64, 0)];

#[test]
fn decode_rows_of_ragged_lengths_split_their_keys() {
    decode_step("decode f16", params(4, 2, None), KvDtype::F16, &RAGGED, 1);
}

#[test]
fn decode_rows_with_a_window_and_f32() {
    decode_step("decode window f32", params(4, 2, Some(100)), KvDtype::F32, &RAGGED, 1);
}

#[test]
fn decode_rows_with_softcap_and_one_kv_head() {
    let p = AttentionParams { softcap: Some(10.0), scale: 1.0, ..params(8, 1, None) };
    decode_step("decode softcap", p, KvDtype::F16, &RAGGED, 1);
}

/// Enough rows × heads (1056) that the step runs unsplit, ragged all the same.
#[test]
fn many_decode_rows_run_unsplit() {
    let mut rng = SplitMix64::for_case("many decode rows");
    let seqs: Vec<(usize, usize)> = (0..264).map(|_| (1 + rng.below(160), 0)).collect();
    decode_step("many decode rows", params(4, 2, None), KvDtype::F16, &seqs, 33);
}

/// `matmul_fused` of `n` rows against the oracle.
fn fused(ty: GgmlType, n: usize, norm: bool, then: &str) {
    let Some((b, o)) = backends() else { return };
    let name = format!("matmul_fused {ty:?} n={n} norm={norm} {then}");
    let mut rng = SplitMix64::for_case(&name);
    let (m, k) = (70, 256);
    let bytes = realm_conformance::random_weight(ty, m, k, &mut rng);
    let (wb, wo) = (
        weight(&b, ty, (m, k), bytes.clone(), WeightLayout::Matrix),
        weight(&o, ty, (m, k), bytes, WeightLayout::Matrix),
    );
    let x = rng.vec(n * k, 2.0);
    let nw: Vec<f32> = (0..k).map(|_| 0.5 + rng.unit()).collect();
    let nbytes: Vec<u8> = nw.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (nb, no) = (
        weight(&b, GgmlType::F32, (1, k), nbytes.clone(), WeightLayout::Vector),
        weight(&o, GgmlType::F32, (1, k), nbytes, WeightLayout::Vector),
    );
    let gate = rng.vec(n * m, 3.0);
    let start = rng.vec(n * m, 4.0);
    let (gb, go) = (input(&b, n, m, &gate), input(&o, n, m, &gate));
    let (mut yb, mut yo) = (input(&b, n, m, &start), input(&o, n, m, &start));
    let (tb, to) = match then {
        "add" => (Epilogue::Add, Epilogue::Add),
        "glu" => (
            Epilogue::Glu { gate: &gb, act: Activation::Silu },
            Epilogue::Glu { gate: &go, act: Activation::Silu },
        ),
        _ => (Epilogue::Store, Epilogue::Store),
    };
    let (normb, normo) = if norm { (Some((&nb, 1e-5)), Some((&no, 1e-5))) } else { (None, None) };
    let xb = input(&b, n, k, &x);
    b.matmul_fused(&wb, None, &xb, normb, tb, &mut yb).unwrap();
    o.matmul_fused(&wo, None, &input(&o, n, k, &x), normo, to, &mut yo).unwrap();
    assert!(b.fuses_norm(n), "{n} rows should run as matvec");
    compare::check(&read(&b, &yb), &read(&o, &yo), tolerance(Check::MatmulFused(ty)))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn batch_matvec_at_8_to_16_rows() {
    for ty in [GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::F32] {
        fused(ty, 8, true, "store");
        fused(ty, 9, true, "glu");
        fused(ty, 12, false, "add");
        fused(ty, 16, true, "add");
    }
}
