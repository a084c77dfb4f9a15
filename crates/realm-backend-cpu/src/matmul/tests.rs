//! Kernel-level tests. The integer kernels are checked against each other exactly (AVX2 vs
//! portable: same integer sums, f32 additions reordered) and against the dequantize-then-dot
//! oracle within a bound derived from the activation quantization error. End-to-end
//! tolerances of the fast paths against `CpuMode::Scalar` live in realm-conformance's one
//! table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::pool::ThreadPool;

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// A random weight row of `k` values of `ty` (GGUF blocks).
fn weight_row(ty: GgmlType, k: usize, rng: &mut SplitMix64) -> Vec<u8> {
    if realm_quant::can_quantize(ty) {
        let x: Vec<f32> = (0..k).map(|_| rng.f32() * 2.0 + 0.3 * rng.f32().abs()).collect();
        return realm_quant::quantize_to_vec(ty, &x).unwrap();
    }
    // No reference quantizer (IQ4_NL): random indices under a sane f16 scale.
    let mut bytes: Vec<u8> =
        (0..k / ty.block_size() * ty.type_size()).map(|_| rng.next() as u8).collect();
    for b in bytes.chunks_exact_mut(ty.type_size()) {
        b[..2].copy_from_slice(&half::f16::from_f32(0.01 + rng.f32().abs() * 0.02).to_le_bytes());
    }
    bytes
}

fn dequant(ty: GgmlType, w: &[u8], k: usize) -> Vec<f32> {
    let mut out = vec![0.0; k];
    realm_quant::dequantize(ty, w, &mut out).unwrap();
    out
}

fn dot1(k: IntDot, w: &[u8], a: ActRow<'_>) -> f32 {
    let mut out = [0.0];
    k.dots(w, &[a], &mut out);
    out[0]
}

/// The portable and SIMD kernels of every format, and the oracle bound. Thirteen activation
/// rows go through the SIMD kernel at once (groups of four, then a single row).
#[test]
fn int_kernels_agree_with_each_other_and_the_oracle() {
    let pool = ThreadPool::new(1);
    let mut rng = SplitMix64(7);
    let (k, n) = (1024, 13);
    for ty in INT_TYPES {
        for trial in 0..12 {
            let w = weight_row(ty, k, &mut rng);
            let wf = dequant(ty, &w, k);
            let amp = if trial % 2 == 0 { 1.0 } else { 30.0 };
            let x: Vec<f32> = (0..n * k).map(|_| rng.f32() * amp).collect();
            let (kind, portable) = int_kernel(ty, Isa::Portable).unwrap();
            let acts = QActs::new(Isa::Portable, kind, &x, n, k, &pool).unwrap();
            let rows: Vec<ActRow<'_>> = (0..n).map(|r| acts.row(r)).collect();
            let mut simd_out = vec![0.0f32; n];
            if let Some((_, simd)) = int_kernel(ty, Isa::detect()) {
                simd.dots(&w, &rows, &mut simd_out);
            }
            for (r, &a) in rows.iter().enumerate() {
                let xr = &x[r * k..(r + 1) * k];
                let p = dot1(portable, &w, a);
                // Oracle: the dequantized weights against the exact activations. Allowed:
                // half a quantization step per activation value, plus f16 rounding of the
                // block scale (2^-11 relative), plus f32 rounding of the sums.
                let exact: f32 = wf.iter().zip(xr).map(|(a, b)| a * b).sum();
                let step = |c: usize| {
                    let blk = kind.block();
                    let b = &xr[c / blk * blk..(c / blk + 1) * blk];
                    b.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0
                };
                let bound: f32 = (0..k)
                    .map(|c| wf[c].abs() * (step(c) * 0.5 + xr[c].abs() / 2048.0))
                    .sum::<f32>()
                    * 1.01
                    + 1e-3 * amp;
                assert!(
                    (p - exact).abs() <= bound,
                    "{ty} trial {trial}: portable {p} vs exact {exact} (bound {bound})"
                );
                if matches!(Isa::detect(), Isa::Portable) {
                    continue;
                }
                let s = simd_out[r];
                let mag: f32 = wf.iter().zip(xr).map(|(a, b)| (a * b).abs()).sum();
                assert!(
                    (s - p).abs() <= 1e-5 * mag + 1e-6,
                    "{ty} trial {trial} row {r}: simd {s} vs portable {p}"
                );
            }
        }
    }
}

/// Extreme quants: a hostile Q8_0 row of -128 and activations at ±127 must not saturate.
#[test]
fn q8_0_extremes_do_not_saturate() {
    let pool = ThreadPool::new(1);
    let k = 64;
    let mut w = Vec::new();
    for _ in 0..k / 32 {
        w.extend_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
        w.extend(std::iter::repeat_n(0x80u8, 32));
    }
    for sign in [1.0f32, -1.0] {
        let x = vec![sign; k];
        let acts = QActs::new(Isa::detect(), ActKind::Q8_0, &x, 1, k, &pool).unwrap();
        let want = -128.0 * 127.0 * sign * k as f32 * acts.row(0).d[0];
        for isa in [Isa::Portable, Isa::detect()] {
            let (_, dot) = int_kernel(GgmlType::Q8_0, isa).unwrap();
            let got = dot1(dot, &w, acts.row(0));
            assert_eq!(got, want, "{isa:?}: {got} vs {want}");
        }
    }
}

/// Every (row, output) pair belongs to exactly one chunk, for all kinds of shapes.
#[test]
fn plan_covers_each_output_once() {
    for threads in [1, 2, 3, 8] {
        for (n, m, k) in [
            (1, 1, 32),
            (1, 576, 576),
            (1, 49152, 576),
            (7, 100, 4096),
            (64, 1536, 576),
            (333, 17, 8192),
        ] {
            let plan = Plan::new(n, m, k, threads);
            let mut seen = vec![0u8; n * m];
            for c in 0..plan.chunks() {
                let (rows, outs) = plan.chunk(c);
                for r in rows {
                    for o in outs.clone() {
                        seen[r * m + o] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{threads} {n} {m} {k}");
        }
    }
}

/// The panel kernels this CPU runs (one per instruction-set level that has them).
#[cfg(target_arch = "x86_64")]
fn panel_kernels() -> Vec<crate::isa::PanelKernel> {
    let all: Vec<_> =
        crate::CpuIsa::ALL.into_iter().filter_map(crate::isa::PanelKernel::of).collect();
    if all.is_empty() {
        eprintln!("skipped: this CPU lacks AVX2");
    }
    all
}

/// Every panel kernel (AVX-512 VNNI, 256-bit VNNI, AVX2) over repacked panels against the
/// portable kernels: every format, a partial last panel (37 rows), and activation batches that
/// exercise the groups of four and eight and the single rows.
#[cfg(target_arch = "x86_64")]
#[test]
fn panels_agree_with_the_portable_kernels() {
    for kernel in panel_kernels() {
        panels_agree(kernel);
    }
}

#[cfg(target_arch = "x86_64")]
fn panels_agree(kernel: crate::isa::PanelKernel) {
    let pool = ThreadPool::new(1);
    let mut rng = SplitMix64(11);
    let (m, k) = (37, 512);
    use GgmlType as T;
    for ty in [T::Q4_0, T::Q4_1, T::Q5_0, T::Q5_1, T::Q8_0, T::Q4_K, T::Q5_K, T::Q6_K] {
        for n in [1, 4, 7, 13] {
            let w: Vec<u8> = (0..m).flat_map(|_| weight_row(ty, k, &mut rng)).collect();
            let packed = Packed::new(kernel, ty, m, k, &w).unwrap();
            let width = packed.width();
            let x: Vec<f32> = (0..n * k).map(|_| rng.f32() * 4.0).collect();
            let acts = QActs::new(Isa::detect(), packed.act_kind(), &x, n, k, &pool).unwrap();
            let rows: Vec<ActRow<'_>> = (0..n).map(|r| acts.row(r)).collect();
            let (_, portable) = int_kernel(ty, Isa::Portable).unwrap();
            let row_bytes = w.len() / m;
            for panel in 0..m.div_ceil(width) {
                let mut out = vec![[f32::NAN; vnni::PANEL]; n];
                packed.panel_dots(panel, &rows, &mut out);
                for (r, got) in out.iter().enumerate() {
                    for (i, &g) in got[..width].iter().enumerate() {
                        let o = panel * width + i;
                        if o >= m {
                            assert_eq!(g, 0.0, "{ty} padding row {o}");
                            continue;
                        }
                        let wr = &w[o * row_bytes..(o + 1) * row_bytes];
                        let want = dot1(portable, wr, rows[r]);
                        let wf = dequant(ty, wr, k);
                        let xr = &x[r * k..(r + 1) * k];
                        let mag: f32 = wf.iter().zip(xr).map(|(a, b)| (a * b).abs()).sum();
                        assert!(
                            (g - want).abs() <= 1e-5 * mag + 1e-6,
                            "{kernel:?} {ty} n={n} row {r} out {o}: panel {g} vs portable {want}"
                        );
                    }
                }
            }
        }
    }
}

/// A hostile Q8_0 panel of -128 against activations at ±127 must not overflow, nor saturate
/// the i16 pair sums of the AVX2 kernel.
#[cfg(target_arch = "x86_64")]
#[test]
fn panel_q8_0_extremes_do_not_saturate() {
    for kernel in panel_kernels() {
        q8_0_extremes(kernel);
    }
}

#[cfg(target_arch = "x86_64")]
fn q8_0_extremes(kernel: crate::isa::PanelKernel) {
    let pool = ThreadPool::new(1);
    let (m, k) = (16, 64);
    let mut w = Vec::new();
    for _ in 0..m * k / 32 {
        w.extend_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
        w.extend(std::iter::repeat_n(0x80u8, 32));
    }
    let packed = Packed::new(kernel, GgmlType::Q8_0, m, k, &w).unwrap();
    for sign in [1.0f32, -1.0] {
        let acts = QActs::new(Isa::detect(), ActKind::Q8_0, &vec![sign; k], 1, k, &pool).unwrap();
        let want = -128.0 * 127.0 * sign * k as f32 * acts.row(0).d[0];
        let mut out = [[0.0f32; vnni::PANEL]];
        packed.panel_dots(0, &[acts.row(0)], &mut out);
        let got = &out[0][..packed.width()];
        assert!(got.iter().all(|&g| g == want), "{kernel:?}: {got:?} vs {want}");
    }
}

/// Weights at the top of each format's range (every quant bit set) against activations at
/// ±127: the AVX2 kernel's i16 pair sums must not saturate (their bound is tight for 4-, 5- and
/// 6-bit weights), so every panel kernel must still equal the portable one.
#[cfg(target_arch = "x86_64")]
#[test]
fn panel_extreme_weights_do_not_saturate() {
    use GgmlType as T;
    let pool = ThreadPool::new(1);
    let (m, k) = (16, 512);
    let one = half::f16::from_f32(1.0).to_le_bytes();
    for kernel in panel_kernels() {
        for ty in [T::Q4_0, T::Q4_1, T::Q5_0, T::Q5_1, T::Q4_K, T::Q5_K, T::Q6_K] {
            let (bw, bb) = (ty.block_size(), ty.type_size());
            let mut block = vec![0xFFu8; bb];
            // The f16 scales (and mins) at 1.0: Q6_K's `d` is last, the others' first.
            let at: &[usize] = match ty {
                T::Q6_K => &[bb - 2],
                T::Q4_1 | T::Q5_1 | T::Q4_K | T::Q5_K => &[0, 2],
                _ => &[0],
            };
            for &i in at {
                block[i..i + 2].copy_from_slice(&one);
            }
            let w: Vec<u8> = std::iter::repeat_n(block, m * k / bw).flatten().collect();
            let packed = Packed::new(kernel, ty, m, k, &w).unwrap();
            let (_, portable) = int_kernel(ty, Isa::Portable).unwrap();
            for sign in [1.0f32, -1.0] {
                let acts =
                    QActs::new(Isa::detect(), packed.act_kind(), &vec![sign; k], 1, k, &pool)
                        .unwrap();
                let want = dot1(portable, &w[..w.len() / m], acts.row(0));
                let mut out = [[0.0f32; vnni::PANEL]];
                packed.panel_dots(0, &[acts.row(0)], &mut out);
                for &g in &out[0][..packed.width()] {
                    assert!(
                        (g - want).abs() <= 1e-5 * want.abs() + 1e-3,
                        "{kernel:?} {ty} sign {sign}: {g} vs {want}"
                    );
                }
            }
        }
    }
}
