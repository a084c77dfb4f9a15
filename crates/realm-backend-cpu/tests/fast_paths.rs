//! The fast paths against the scalar oracle on model-sized shapes (beyond the conformance
//! suite's ≤1 M multiply-adds per op), so that row tiles, output chunks and KV splits all
//! come into play. Budgets come from realm-conformance's one tolerance table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode, CpuTensor};
use realm_conformance::rng::SplitMix64;
use realm_conformance::{Check, compare, random_weight, tolerance};
use realm_core::{
    AttentionParams, Backend, GgmlType, KvDesc, KvDtype, RowsDesc, WeightDesc, WeightLayout,
};

fn upload(
    cpu: &CpuBackend,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    bytes: &Arc<Vec<u8>>,
) -> realm_backend_cpu::CpuWeight {
    let len = bytes.len();
    let layout = WeightLayout::Matrix;
    let bytes: realm_core::SharedBytes = bytes.clone();
    cpu.upload(WeightDesc { name: "w".into(), ty, rows, cols, layout, bytes, offset: 0, len })
        .unwrap()
}

fn input(cpu: &CpuBackend, rows: usize, cols: usize, data: &[f32]) -> CpuTensor {
    let bytes = Arc::new(data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    let table = upload(cpu, GgmlType::F32, rows, cols, &bytes);
    let mut t = cpu.tensor(rows, cols).unwrap();
    cpu.embed(&table, &(0..rows as u32).collect::<Vec<_>>(), &mut t).unwrap();
    t
}

fn backends() -> Vec<CpuBackend> {
    [(CpuMode::Auto, 1), (CpuMode::Auto, 2), (CpuMode::Auto, 3), (CpuMode::Portable, 2)]
        .into_iter()
        .map(|(mode, threads)| CpuBackend::new(CpuConfig { threads, mode, ..Default::default() }))
        // Every lower instruction-set level this CPU runs, on 2 threads.
        .chain(realm_backend_cpu::CpuIsa::available().into_iter().map(|isa| {
            CpuBackend::new(CpuConfig { threads: 2, mode: CpuMode::Auto, isa: Some(isa) })
        }))
        .collect()
}

#[test]
fn matmul_on_model_shapes() {
    let oracle =
        CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Scalar, ..Default::default() });
    let shapes = [
        (GgmlType::Q4_1, 1536, 576, 1),
        (GgmlType::Q4_1, 576, 1536, 37),
        (GgmlType::Q8_0, 4096, 576, 1),
        (GgmlType::Q8_0, 576, 576, 70),
        (GgmlType::Q5_0, 640, 640, 9),
        (GgmlType::Q4_K, 512, 768, 20),
        (GgmlType::Q5_K, 520, 512, 11),
        (GgmlType::Q6_K, 640, 512, 3),
        (GgmlType::Q3_K, 256, 512, 33),
        (GgmlType::F16, 300, 640, 41),
    ];
    for (ty, m, k, n) in shapes {
        let mut rng = SplitMix64::for_case(&format!("{ty} {m} {k} {n}"));
        let bytes = Arc::new(random_weight(ty, m, k, &mut rng));
        let x = rng.vec(n * k, 2.0);
        let want = {
            let w = upload(&oracle, ty, m, k, &bytes);
            let mut out = oracle.tensor(n, m).unwrap();
            oracle.matmul(&w, None, &input(&oracle, n, k, &x), &mut out).unwrap();
            out
        };
        for cpu in backends() {
            let w = upload(&cpu, ty, m, k, &bytes);
            let mut out = cpu.tensor(n, m).unwrap();
            cpu.matmul(&w, None, &input(&cpu, n, k, &x), &mut out).unwrap();
            let r = compare::check(out.as_slice(), want.as_slice(), tolerance(Check::Matmul(ty)));
            assert!(
                r.is_ok(),
                "{ty} {m}x{k} n={n} {:?}×{}: {}",
                cpu.mode(),
                cpu.threads(),
                r.unwrap_err()
            );
        }
    }
}

#[test]
fn attention_on_long_caches() {
    let oracle =
        CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Scalar, ..Default::default() });
    // (n_head, n_head_kv, head_dim, start_pos, n, window, dtype)
    let cases = [
        (9, 3, 64, 900, 1, None, KvDtype::F16),
        (9, 3, 64, 700, 70, None, KvDtype::F16),
        (4, 1, 256, 500, 1, Some(256), KvDtype::F32),
        (4, 1, 256, 100, 45, Some(32), KvDtype::F16),
    ];
    for (n_head, n_head_kv, hd, start_pos, n, window, dtype) in cases {
        let mut rng = SplitMix64::for_case(&format!("{n_head} {start_pos} {n}"));
        let n_ctx = start_pos + n;
        let kv_data = rng.vec(n_ctx * n_head_kv * hd, 1.5);
        let v_data = rng.vec(n_ctx * n_head_kv * hd, 1.0);
        let q_data = rng.vec(n * n_head * hd, 1.5);
        let p = AttentionParams {
            n_head,
            n_head_kv,
            head_dim: hd,
            head_dim_v: hd,
            scale: 1.0 / (hd as f32).sqrt(),
            window,
            softcap: None,
        };
        let run = |cpu: &CpuBackend| {
            // One sequence in 16-position blocks, laid out in reverse over the pool.
            let bs = 16;
            let n_blocks = n_ctx.div_ceil(bs);
            let table: Vec<u32> = (0..n_blocks as u32).rev().collect();
            let rows = |from: usize, to: usize| {
                let pos: Vec<u32> = (from as u32..to as u32).collect();
                let seq = vec![0; pos.len()];
                let d = RowsDesc { pos: &pos, seq: &seq, tables: &[&table], block_size: bs };
                cpu.rows(&d).unwrap()
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
            let mut kv = cpu.kv_cache(desc).unwrap();
            let k = input(cpu, n_ctx, n_head_kv * hd, &kv_data);
            let v = input(cpu, n_ctx, n_head_kv * hd, &v_data);
            cpu.kv_store(&mut kv, 0, &rows(0, n_ctx), &k, &v).unwrap();
            let mut out = cpu.tensor(n, n_head * hd).unwrap();
            let q = input(cpu, n, n_head * hd, &q_data);
            cpu.attention(&q, &kv, 0, &p, &rows(start_pos, n_ctx), &mut out).unwrap();
            out
        };
        let want = run(&oracle);
        for cpu in backends() {
            let got = run(&cpu);
            let r = compare::check(got.as_slice(), want.as_slice(), tolerance(Check::Attention));
            assert!(
                r.is_ok(),
                "{p:?} n={n} {:?}×{}: {}",
                cpu.mode(),
                cpu.threads(),
                r.unwrap_err()
            );
        }
    }
}
