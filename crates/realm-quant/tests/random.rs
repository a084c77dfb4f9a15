//! Seeded random tests: hostile bytes never panic, sizes agree with 128-bit arithmetic,
//! and quantization error stays inside a per-format bound on random data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_quant::{
    GgmlType, QuantError, can_dequantize, can_quantize, dequantize, dequantize_to_vec, quantize,
    quantize_to_vec,
};

/// splitmix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough for test inputs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly normal (sum of 4 uniforms), mean 0, standard deviation ~1.
    fn normal(&mut self) -> f32 {
        ((0..4).map(|_| self.unit()).sum::<f32>() - 2.0) * 1.732
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[test]
fn hostile_bytes_never_panic() {
    let mut rng = SplitMix64(0x5eed_0001);
    for ty in GgmlType::ALL {
        for _ in 0..50 {
            let n_blocks = rng.below(4) as usize;
            let extra = if rng.below(3) == 0 { rng.below(5) as usize } else { 0 };
            // Random bytes include NaN and infinite scales.
            let src = rng.bytes(n_blocks * ty.type_size() + extra);
            let n_out = n_blocks * ty.block_size() + if rng.below(3) == 0 { 1 } else { 0 };
            let mut dst = vec![0.0f32; n_out];
            let res = dequantize(ty, &src, &mut dst);
            let vec_res = dequantize_to_vec(ty, &src);
            if !can_dequantize(ty) {
                assert!(matches!(res, Err(QuantError::Unsupported { .. })), "{ty}");
                continue;
            }
            let (bs, ts) = (ty.block_size(), ty.type_size());
            let lengths_ok = n_out.is_multiple_of(bs) && src.len() == n_out / bs * ts;
            assert_eq!(res.is_ok(), lengths_ok, "{ty} {res:?}");
            assert_eq!(vec_res.is_ok(), src.len().is_multiple_of(ts), "{ty}");
            if let (Ok(()), Ok(v)) = (res, vec_res) {
                let a: Vec<u32> = dst.iter().map(|x| x.to_bits()).collect();
                let b: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
                assert_eq!(a, b, "{ty}");
            }
        }
    }
}

#[test]
fn sizes_agree_with_wide_arithmetic() {
    let mut rng = SplitMix64(0x5eed_0002);
    for ty in GgmlType::ALL {
        let (bs, ts) = (ty.block_size() as u128, ty.type_size() as u128);
        for i in 0..500 {
            // Mix tiny counts, whole-block counts and counts near the top of u64.
            let n = match i % 3 {
                0 => rng.below(10_000),
                1 => rng.below(1 << 20) * bs as u64,
                _ => u64::MAX - rng.below(1 << 20),
            };
            let wide = u128::from(n);
            let want =
                if !wide.is_multiple_of(bs) { None } else { u64::try_from(wide / bs * ts).ok() };
            assert_eq!(ty.row_bytes(n).ok(), want, "{ty} {n}");
            assert_eq!(ty.tensor_bytes(n).ok(), want, "{ty} {n}");
        }
    }
}

/// Largest allowed `sqrt(mean squared error) / sqrt(mean square of x)` on Gaussian data,
/// per format: about 1.5 times the value measured with this seed, so a layout or rounding
/// slip shows. (The data are deterministic; the margin only absorbs platform `libm`.)
const RELATIVE_RMSE: &[(GgmlType, f32)] = &[
    (GgmlType::F32, 0.0),
    (GgmlType::F16, 0.0005),
    (GgmlType::BF16, 0.004),
    (GgmlType::Q4_0, 0.12),
    (GgmlType::Q4_1, 0.12),
    (GgmlType::Q5_0, 0.06),
    (GgmlType::Q5_1, 0.06),
    (GgmlType::Q8_0, 0.0075),
    (GgmlType::Q8_1, 0.0075),
    (GgmlType::Q2_K, 0.43),
    (GgmlType::Q3_K, 0.22),
    (GgmlType::Q4_K, 0.11),
    (GgmlType::Q5_K, 0.055),
    (GgmlType::Q6_K, 0.03),
    (GgmlType::Q8_K, 0.0095),
];

#[test]
fn random_data_round_trip_error_per_format() {
    let mut rng = SplitMix64(0x5eed_0003);
    let mut report = String::new();
    let mut failed = Vec::new();
    for &(ty, bound) in RELATIVE_RMSE {
        assert!(can_quantize(ty), "{ty}");
        let scale = 10f32.powi(rng.below(5) as i32 - 3);
        let x: Vec<f32> = (0..4096).map(|_| rng.normal() * scale).collect();
        let y = dequantize_to_vec(ty, &quantize_to_vec(ty, &x).unwrap()).unwrap();
        let err: f64 = x.iter().zip(&y).map(|(&a, &b)| f64::from(a - b).powi(2)).sum();
        let norm: f64 = x.iter().map(|&a| f64::from(a).powi(2)).sum();
        let rel = (err / norm).sqrt() as f32;
        report.push_str(&format!("{ty}: {rel:.5} (bound {bound})\n"));
        if rel.is_nan() || rel > bound {
            failed.push(ty);
        }
    }
    eprint!("{report}");
    assert!(failed.is_empty(), "over bound: {failed:?}\n{report}");
    assert_eq!(RELATIVE_RMSE.len(), GgmlType::ALL.iter().filter(|&&t| can_quantize(t)).count());
}

/// Blocks are independent: quantizing two halves separately gives the same bytes as
/// quantizing the whole, and quantize is deterministic.
#[test]
fn blocks_are_independent_and_deterministic() {
    let mut rng = SplitMix64(0x5eed_0004);
    for &(ty, _) in RELATIVE_RMSE {
        let bs = ty.block_size().max(256);
        let x: Vec<f32> = (0..2 * bs).map(|_| rng.normal()).collect();
        let whole = quantize_to_vec(ty, &x).unwrap();
        let mut halves = quantize_to_vec(ty, &x[..bs]).unwrap();
        halves.extend(quantize_to_vec(ty, &x[bs..]).unwrap());
        assert_eq!(whole, halves, "{ty}");
        // A dirty destination is fully overwritten.
        let mut dirty = vec![0xa5u8; whole.len()];
        quantize(ty, &x, &mut dirty).unwrap();
        assert_eq!(dirty, whole, "{ty}");
    }
}
