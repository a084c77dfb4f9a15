//! Throughput of the CPU backend's hot ops on SmolLM2-135M shapes, per mode and thread count.
//!
//! `cargo run --release -p realm-backend-cpu --example bench [-- quick]`
//!
//! Each timing is the best of several repetitions (the machine may be shared). GFLOP/s counts
//! 2 flops per multiply-add; GB/s counts the weight bytes read once per call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode, CpuTensor, CpuWeight};
use realm_core::{
    AttentionParams, Backend, GgmlType, KvDesc, KvDtype, RowsDesc, WeightDesc, WeightLayout,
};

fn weight(cpu: &CpuBackend, ty: GgmlType, rows: usize, cols: usize) -> CpuWeight {
    let mut s = 0x1234_5678u64;
    let x: Vec<f32> = (0..rows * cols)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let bytes = realm_quant::quantize_to_vec(ty, &x).unwrap();
    let len = bytes.len();
    let desc = WeightDesc {
        name: "w".into(),
        ty,
        rows,
        cols,
        layout: WeightLayout::Matrix,
        bytes: Arc::new(bytes),
        offset: 0,
        len,
    };
    cpu.upload(desc).unwrap()
}

fn input(cpu: &CpuBackend, rows: usize, cols: usize) -> CpuTensor {
    let table = weight(cpu, GgmlType::F32, rows, cols);
    let mut t = cpu.tensor(rows, cols).unwrap();
    cpu.embed(&table, &(0..rows as u32).collect::<Vec<_>>(), &mut t).unwrap();
    t
}

/// Process CPU time (user + system) in seconds, from /proc (Linux; 0 elsewhere).
fn cpu_time() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// (best wall time per call, average process CPU time per call).
fn best(budget: Duration, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let start = Instant::now();
    let cpu0 = cpu_time();
    let mut best = f64::INFINITY;
    let mut reps = 0;
    while reps < 3 || (start.elapsed() < budget && reps < 100_000) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    (best, (cpu_time() - cpu0) / reps as f64)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let only_auto = std::env::args().any(|a| a == "auto");
    let budget = Duration::from_millis(if quick { 200 } else { 1000 });
    let configs =
        [(CpuMode::Scalar, 1), (CpuMode::Portable, 1), (CpuMode::Auto, 1), (CpuMode::Auto, 2)];
    let matmuls = [
        ("q8_0 256x576   n=1 (cache-resident)", GgmlType::Q8_0, 256, 576, 1),
        ("q4_0 256x576   n=1 (cache-resident)", GgmlType::Q4_0, 256, 576, 1),
        ("q4_1 256x576   n=1 (cache-resident)", GgmlType::Q4_1, 256, 576, 1),
        ("q4_K 256x768   n=1 (cache-resident)", GgmlType::Q4_K, 256, 768, 1),
        ("q6_K 256x768   n=1 (cache-resident)", GgmlType::Q6_K, 256, 768, 1),
        ("q4_1 1536x576  n=1 (ffn gate/up)", GgmlType::Q4_1, 1536, 576, 1),
        ("q4_1 576x1536  n=1 (ffn down)", GgmlType::Q4_1, 576, 1536, 1),
        ("q8_0 49152x576 n=1 (tied logits)", GgmlType::Q8_0, 49152, 576, 1),
        ("q4_K 1536x768  n=1", GgmlType::Q4_K, 1536, 768, 1),
        ("q6_K 1536x768  n=1", GgmlType::Q6_K, 1536, 768, 1),
        ("q4_1 1536x576  n=64 (prefill)", GgmlType::Q4_1, 1536, 576, 64),
        ("f16  1536x576  n=64 (prefill)", GgmlType::F16, 1536, 576, 64),
    ];
    println!("{}", CpuBackend::new(CpuConfig::default()).info().details.join("; "));
    for (name, ty, m, k, n) in matmuls {
        for (mode, threads) in configs {
            if (only_auto && mode != CpuMode::Auto)
                || (mode == CpuMode::Scalar && (m * n > 100_000))
            {
                continue;
            }
            let cpu = CpuBackend::new(CpuConfig { threads, mode, ..Default::default() });
            let w = weight(&cpu, ty, m, k);
            let x = input(&cpu, n, k);
            let mut out = cpu.tensor(n, m).unwrap();
            let (t, cpu_t) = best(budget, || cpu.matmul(&w, None, &x, &mut out).unwrap());
            let flops = 2.0 * (m * k * n) as f64;
            let bytes = w.data().len() as f64;
            println!(
                "{name:<34} {:<9} {threads}t {:>9.1} µs (cpu {:>9.1} µs) {:>7.2} GFLOP/s {:>6.2} GB/s",
                format!("{mode:?}"),
                t * 1e6,
                cpu_t * 1e6,
                flops / t / 1e9,
                bytes / t / 1e9
            );
        }
    }
    for (mode, threads) in configs {
        let cpu = CpuBackend::new(CpuConfig { threads, mode, ..Default::default() });
        let (n_ctx, nkv, hd, nh) = (1024, 3, 64, 9);
        let table = [0u32];
        let rows = |from: u32, to: u32| {
            let pos: Vec<u32> = (from..to).collect();
            let seq = vec![0; pos.len()];
            cpu.rows(&RowsDesc { pos: &pos, seq: &seq, tables: &[&table], block_size: n_ctx })
                .unwrap()
        };
        let desc = KvDesc {
            n_layer: 1,
            n_blocks: 1,
            block_size: n_ctx,
            n_head_kv: nkv,
            head_dim: hd,
            head_dim_v: hd,
            dtype: KvDtype::F16,
        };
        let mut kv = cpu.kv_cache(desc).unwrap();
        let k = input(&cpu, n_ctx, nkv * hd);
        cpu.kv_store(&mut kv, 0, &rows(0, n_ctx as u32), &k, &k).unwrap();
        let last = rows(n_ctx as u32 - 1, n_ctx as u32);
        let q = input(&cpu, 1, nh * hd);
        let mut out = cpu.tensor(1, nh * hd).unwrap();
        let p = AttentionParams {
            n_head: nh,
            n_head_kv: nkv,
            head_dim: hd,
            head_dim_v: hd,
            scale: 0.125,
            window: None,
            softcap: None,
        };
        let (t, cpu_t) = best(budget, || cpu.attention(&q, &kv, 0, &p, &last, &mut out).unwrap());
        println!(
            "attention decode ctx=1024 9h/3kv d=64 {:<9} {threads}t {:>9.1} µs (cpu {:>9.1} µs)",
            format!("{mode:?}"),
            t * 1e6,
            cpu_t * 1e6
        );
    }
}
