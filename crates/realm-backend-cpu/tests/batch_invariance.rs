//! Batch invariance, bit for bit: a row's result is the same whether it runs alone or with any
//! other rows, in every CPU mode and thread count — for the ops whose work is split across
//! rows (matmul, attention) and the per-row ones (rms_norm, rope). This is what lets a
//! request's tokens and logits be identical alone and in any batch of the serving engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode, CpuTensor};
use realm_conformance::random_weight;
use realm_conformance::rng::SplitMix64;
use realm_core::{
    AttentionParams, Backend, GgmlType, KvDesc, KvDtype, RopeParams, RopeStyle, RowsDesc,
    WeightDesc, WeightLayout,
};

fn backends() -> Vec<CpuBackend> {
    [
        (CpuMode::Auto, 1),
        (CpuMode::Auto, 2),
        (CpuMode::Auto, 3),
        (CpuMode::Portable, 2),
        (CpuMode::Scalar, 1),
    ]
    .into_iter()
    .map(|(mode, threads)| CpuBackend::new(CpuConfig { threads, mode, ..Default::default() }))
    // Every lower instruction-set level this CPU runs, on 2 threads.
    .chain(
        realm_backend_cpu::CpuIsa::available().into_iter().map(|isa| {
            CpuBackend::new(CpuConfig { threads: 2, mode: CpuMode::Auto, isa: Some(isa) })
        }),
    )
    .collect()
}

fn upload(
    cpu: &CpuBackend,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    bytes: &Arc<Vec<u8>>,
) -> realm_backend_cpu::CpuWeight {
    let len = bytes.len();
    let bytes: realm_core::SharedBytes = bytes.clone();
    let layout = if rows == 1 { WeightLayout::Vector } else { WeightLayout::Matrix };
    cpu.upload(WeightDesc { name: "w".into(), ty, rows, cols, layout, bytes, offset: 0, len })
        .unwrap()
}

fn input(cpu: &CpuBackend, rows: usize, cols: usize, data: &[f32]) -> CpuTensor {
    let bytes = Arc::new(data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    let table = upload(cpu, GgmlType::F32, rows.max(2), cols, &bytes_padded(&bytes, rows, cols));
    let mut t = cpu.tensor(rows, cols).unwrap();
    cpu.embed(&table, &(0..rows as u32).collect::<Vec<_>>(), &mut t).unwrap();
    t
}

/// An f32 table of at least two rows (a one-row table would upload as a vector).
fn bytes_padded(bytes: &Arc<Vec<u8>>, rows: usize, cols: usize) -> Arc<Vec<u8>> {
    if rows >= 2 {
        return bytes.clone();
    }
    let mut b = bytes.as_ref().clone();
    b.resize(2 * cols * 4, 0);
    Arc::new(b)
}

/// Bits of row `r` of `t`.
fn row_bits(t: &CpuTensor, r: usize) -> Vec<u32> {
    let cols = t.shape().1;
    t.as_slice()[r * cols..(r + 1) * cols].iter().map(|v| v.to_bits()).collect()
}

#[test]
fn matmul_rows_alone_equal_rows_in_a_batch() {
    let types = [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q5_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::Q3_K,
        GgmlType::IQ4_XS,
        GgmlType::F16,
        GgmlType::F32,
    ];
    let (m, k) = (300, 512);
    for ty in types {
        let mut rng = SplitMix64::for_case(&format!("invariance {ty}"));
        let bytes = Arc::new(random_weight(ty, m, k, &mut rng));
        // Batch sizes around every tile edge of the kernels (4, 8, 16, 64 rows).
        for n in [2, 3, 5, 8, 17, 70] {
            let x = rng.vec(n * k, 2.0);
            for cpu in backends() {
                let w = upload(&cpu, ty, m, k, &bytes);
                let mut all = cpu.tensor(n, m).unwrap();
                cpu.matmul(&w, None, &input(&cpu, n, k, &x), &mut all).unwrap();
                for r in [0, n / 2, n - 1] {
                    let mut one = cpu.tensor(1, m).unwrap();
                    cpu.matmul(&w, None, &input(&cpu, 1, k, &x[r * k..(r + 1) * k]), &mut one)
                        .unwrap();
                    assert_eq!(
                        row_bits(&one, 0),
                        row_bits(&all, r),
                        "{ty} row {r} of {n} {:?}×{}",
                        cpu.mode(),
                        cpu.threads()
                    );
                }
            }
        }
    }
}

#[test]
fn attention_rows_alone_equal_rows_in_a_batch() {
    // (n_head, n_head_kv, head_dim, window, dtype): SmolLM2-like, Gemma-like with a window.
    let shapes = [
        (9, 3, 64, None, KvDtype::F16),
        (4, 1, 256, Some(100), KvDtype::F16),
        (4, 2, 64, None, KvDtype::F32),
    ];
    // Sequences as (cached positions, rows in the step): a long decode that splits, a
    // prefill chunk crossing segment edges, short decodes.
    let seqs = [(300usize, 1usize), (120, 20), (5, 1), (0, 9), (255, 1), (130, 1)];
    let bs = 16;
    for (n_head, n_head_kv, hd, window, dtype) in shapes {
        let mut rng = SplitMix64::for_case(&format!("attention invariance {n_head} {hd}"));
        let mut tables: Vec<Vec<u32>> = Vec::new();
        let mut next = 0u32;
        for &(c, n) in &seqs {
            let blocks = (c + n).div_ceil(bs) as u32;
            // Every other block, backwards: scattered over the pool.
            tables.push((0..blocks).rev().map(|b| next + 2 * b).collect());
            next += 2 * blocks;
        }
        let n_blocks = next as usize;
        let refs: Vec<&[u32]> = tables.iter().map(Vec::as_slice).collect();
        let step: Vec<(u32, u32)> = seqs
            .iter()
            .enumerate()
            .flat_map(|(s, &(c, n))| (c..c + n).map(move |p| (s as u32, p as u32)))
            .collect();
        let all_rows: Vec<(u32, u32)> = seqs
            .iter()
            .enumerate()
            .flat_map(|(s, &(c, n))| (0..c + n).map(move |p| (s as u32, p as u32)))
            .collect();
        let kd = n_head_kv * hd;
        let k = rng.vec(all_rows.len() * kd, 1.5);
        let v = rng.vec(all_rows.len() * kd, 1.0);
        let q = rng.vec(step.len() * n_head * hd, 1.5);
        let p = AttentionParams {
            n_head,
            n_head_kv,
            head_dim: hd,
            head_dim_v: hd,
            scale: 1.0 / (hd as f32).sqrt(),
            window,
            softcap: None,
        };
        let desc = KvDesc {
            n_layer: 1,
            n_blocks,
            block_size: bs,
            n_head_kv,
            head_dim: hd,
            head_dim_v: hd,
            dtype,
        };
        for cpu in backends() {
            let rows = |r: &[(u32, u32)]| {
                let seq: Vec<u32> = r.iter().map(|x| x.0).collect();
                let pos: Vec<u32> = r.iter().map(|x| x.1).collect();
                cpu.rows(&RowsDesc { pos: &pos, seq: &seq, tables: &refs, block_size: bs }).unwrap()
            };
            let mut kv = cpu.kv_cache(desc).unwrap();
            let n = all_rows.len();
            let (kt, vt) = (input(&cpu, n, kd, &k), input(&cpu, n, kd, &v));
            cpu.kv_store(&mut kv, 0, &rows(&all_rows), &kt, &vt).unwrap();
            let qd = n_head * hd;
            let mut out = cpu.tensor(step.len(), qd).unwrap();
            let qt = input(&cpu, step.len(), qd, &q);
            cpu.attention(&qt, &kv, 0, &p, &rows(&step), &mut out).unwrap();
            for (r, &row) in step.iter().enumerate() {
                let mut one = cpu.tensor(1, qd).unwrap();
                let q1 = input(&cpu, 1, qd, &q[r * qd..(r + 1) * qd]);
                cpu.attention(&q1, &kv, 0, &p, &rows(&[row]), &mut one).unwrap();
                assert_eq!(
                    row_bits(&one, 0),
                    row_bits(&out, r),
                    "{n_head}h d={hd} {window:?} row {r} {row:?} {:?}×{}",
                    cpu.mode(),
                    cpu.threads()
                );
            }
        }
    }
}

#[test]
fn norm_and_rope_rows_alone_equal_rows_in_a_batch() {
    let (n, cols) = (37, 576);
    let mut rng = SplitMix64::for_case("norm rope invariance");
    let x = rng.vec(n * cols, 3.0);
    let wv = Arc::new(rng.vec(cols, 1.0).iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    let table = [0u32];
    let pos: Vec<u32> = (0..n as u32).map(|i| i * 37 % 1000).collect();
    for cpu in backends() {
        let w = upload(&cpu, GgmlType::F32, 1, cols, &wv);
        let mut all = cpu.tensor(n, cols).unwrap();
        cpu.rms_norm(&input(&cpu, n, cols, &x), &w, cols, 1e-5, &mut all).unwrap();
        let seq = vec![0u32; n];
        let d = RowsDesc { pos: &pos, seq: &seq, tables: &[&table], block_size: 1024 };
        let rope = RopeParams {
            n_heads: 9,
            head_dim: 64,
            rope_dim: 64,
            freq_base: 100_000.0,
            freq_scale: 1.0,
            style: RopeStyle::Normal,
        };
        cpu.rope(&mut all, &rope, &cpu.rows(&d).unwrap()).unwrap();
        for r in [0, 17, n - 1] {
            let mut one = cpu.tensor(1, cols).unwrap();
            let xr = &x[r * cols..(r + 1) * cols];
            cpu.rms_norm(&input(&cpu, 1, cols, xr), &w, cols, 1e-5, &mut one).unwrap();
            let d1 =
                RowsDesc { pos: &pos[r..r + 1], seq: &[0], tables: &[&table], block_size: 1024 };
            cpu.rope(&mut one, &rope, &cpu.rows(&d1).unwrap()).unwrap();
            assert_eq!(row_bits(&one, 0), row_bits(&all, r), "row {r} {:?}", cpu.mode());
        }
    }
}
