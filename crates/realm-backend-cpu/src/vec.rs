//! Vector helpers shared by matmul and attention (ggml's `vec.h`): an f32 dot product with
//! 32 independent accumulators, which LLVM turns into four 8-lane (or eight 4-lane) vector
//! accumulators, and f16 → f32 widening.

use realm_core::GgmlType;
use realm_quant::QuantError;

use crate::isa::Isa;

/// `Σ a[i] · b[i]` over the common length, in plain Rust: two 8-lane accumulators, each
/// lane summed separately, then combined pairwise. The SLP vectorizer turns each 8-lane
/// group into vector adds and multiplies (SSE2, NEON, simd128) that fit the 16 registers.
#[inline]
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ac, at) = a[..n].as_chunks::<16>();
    let (bc, bt) = b[..n].as_chunks::<16>();
    let mut acc = [[0.0f32; 8]; 2];
    for (x, y) in ac.iter().zip(bc) {
        for (j, acc) in acc.iter_mut().enumerate() {
            for l in 0..8 {
                acc[l] += x[8 * j + l] * y[8 * j + l];
            }
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in at.iter().zip(bt) {
        tail += x * y;
    }
    let mut s = [0.0f32; 8];
    for l in 0..8 {
        s[l] = acc[0][l] + acc[1][l];
    }
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail
}

/// `e^x` for each value, within about 2 ulp (Cephes `expf`: `x = n ln 2 + r`, a degree-6
/// polynomial for `e^r`, then `2^n` from the exponent bits), written so that it
/// vectorizes. Inputs below -87.3 give about 1.2e-38 instead of a denormal or 0, which is
/// harmless where it is used (softmax weights next to a weight of 1).
#[inline(always)]
pub(crate) fn exp_in_place(xs: &mut [f32]) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    for x in xs.iter_mut() {
        let v = x.clamp(-87.336_55, 88.722_83);
        let n = (v * LOG2E + ROUND) - ROUND;
        let r = v - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        let pow2n = f32::from_bits(((n as i32 + 127) << 23) as u32);
        *x = e * pow2n;
    }
}

/// The fastest f32 dot product `isa` allows.
#[inline]
pub(crate) fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    match isa {
        Isa::Portable => dot_portable(a, b),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => x86::dot_f32(t, a, b),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => wasm::dot_f32(a, b),
    }
}

/// `h` (binary16 bits) widened to f32, exactly, without branches so that loops of it
/// vectorize (the `half` crate's software path branches per value). The exponent is
/// rebiased by integer addition; subnormals are renormalized with one float subtraction;
/// Inf/NaN get the maximal exponent (F. Giesen, "half_to_float_fast5").
#[inline(always)]
pub(crate) fn f16_bits_to_f32(h: u16) -> f32 {
    const SHIFTED_EXP: u32 = 0x7c00 << 13;
    let magic = f32::from_bits(113 << 23);
    let mut o = u32::from(h & 0x7fff) << 13;
    let exp = o & SHIFTED_EXP;
    o += (127 - 15) << 23;
    let inf_nan = if exp == SHIFTED_EXP { (128 - 16) << 23 } else { 0 };
    o += inf_nan;
    let sub = (f32::from_bits(o + (1 << 23)) - magic).to_bits();
    o = if exp == 0 { sub } else { o };
    f32::from_bits(o | (u32::from(h & 0x8000) << 16))
}

/// Rounds every value to the nearest f16 (ties to even) in place: what a value stored as f16
/// and read back holds.
pub(crate) fn round_to_f16(isa: Isa, xs: &mut [f32]) {
    match isa {
        // simd128 has no f16 conversion: the same code, compiled for it.
        Isa::Portable => xs.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32()),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => xs.iter_mut().for_each(|x| *x = half::f16::from_f32(*x).to_f32()),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => x86::round_to_f16(t, xs),
    }
}

/// Widens f16 bit patterns to f32, `min(src.len(), dst.len())` values.
#[inline]
pub(crate) fn f16_to_f32(isa: Isa, src: &[u16], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => x86::f16_to_f32(t, src, dst),
        // Branch-free integer code: LLVM vectorizes it for simd128, which has no f16 type.
        _ => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f16_bits_to_f32(s);
            }
        }
    }
}

/// Dequantizes one weight row: the float formats by fast conversions (F16C where present),
/// the rest by `realm_quant`'s reference. Same values either way.
pub(crate) fn to_f32(
    isa: Isa,
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
) -> Result<(), QuantError> {
    let (pairs, rest) = src.as_chunks::<2>();
    let halves_fit = rest.is_empty() && pairs.len() == dst.len();
    match ty {
        GgmlType::F16 if halves_fit => {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2(t) => x86::f16le_to_f32(t, pairs, dst),
                // As in `f16_to_f32`: vectorized by LLVM on simd128.
                _ => {
                    for (d, &h) in dst.iter_mut().zip(pairs) {
                        *d = f16_bits_to_f32(u16::from_le_bytes(h));
                    }
                }
            }
            Ok(())
        }
        GgmlType::BF16 if halves_fit => {
            for (d, &h) in dst.iter_mut().zip(pairs) {
                *d = f32::from_bits(u32::from(u16::from_le_bytes(h)) << 16);
            }
            Ok(())
        }
        _ => realm_quant::dequantize(ty, src, dst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_f16_matches_half_on_every_isa() {
        let mut xs: Vec<f32> = (0..40_003).map(|i| (i as f32 - 20_000.0) * 3.37e-3).collect();
        xs.extend([6.1e-5, 5.96e-8, 2.9e-8, 65_504.0, 65_520.0, 1e9, -1e-40, 0.0, -0.0]);
        let want: Vec<u32> =
            xs.iter().map(|&x| half::f16::from_f32(x).to_f32().to_bits()).collect();
        for isa in [Isa::Portable, Isa::detect()] {
            let mut got = xs.clone();
            round_to_f16(isa, &mut got);
            let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            assert!(got == want, "{isa:?}");
        }
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let mut v = [x];
            exp_in_place(&mut v);
            let want = f64::from(x).exp();
            worst = worst.max(((f64::from(v[0]) - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        let mut v = [0.0f32, f32::NEG_INFINITY, -1000.0];
        exp_in_place(&mut v);
        assert_eq!(v[0], 1.0);
        assert!(v[1] < 1e-37 && v[2] < 1e-37);
    }

    #[test]
    fn f16_widening_is_exact_for_every_value() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_bits_to_f32(h);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{h:#06x}");
        }
        let src: Vec<u16> = (0..=u16::MAX).step_by(7).collect();
        let mut dst = vec![0.0f32; src.len()];
        f16_to_f32(Isa::detect(), &src, &mut dst);
        for (&h, &d) in src.iter().zip(&dst) {
            let want = half::f16::from_bits(h).to_f32();
            assert!(d.to_bits() == want.to_bits() || (d.is_nan() && want.is_nan()), "{h:#06x}");
        }
    }

    #[test]
    fn dots_agree() {
        let a: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..100).map(|i| (i as f32 * 0.11).cos()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        assert!((f64::from(dot_portable(&a, &b)) - exact).abs() < 1e-5);
        assert!((f64::from(dot(Isa::detect(), &a, &b)) - exact).abs() < 1e-5);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod wasm {
    use core::arch::wasm32::*;

    /// The sum of the four lanes of an f32x4, pairwise.
    #[inline(always)]
    pub(crate) fn hsum(v: v128) -> f32 {
        (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v))
            + (f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v))
    }

    #[inline(always)]
    fn load4(x: &[f32; 4]) -> v128 {
        // SAFETY: `x` is 4 readable f32 (16 bytes); v128_load has no alignment requirement.
        unsafe { v128_load(x.as_ptr().cast()) }
    }

    /// f32 dot product: four 4-lane accumulators (simd128 has no fused multiply-add).
    #[inline]
    pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (ac, at) = a[..n].as_chunks::<16>();
        let (bc, bt) = b[..n].as_chunks::<16>();
        let mut acc = [f32x4_splat(0.0); 4];
        for (x, y) in ac.iter().zip(bc) {
            let (x4, y4) = (x.as_chunks::<4>().0, y.as_chunks::<4>().0);
            for ((acc, x), y) in acc.iter_mut().zip(x4).zip(y4) {
                *acc = f32x4_add(*acc, f32x4_mul(load4(x), load4(y)));
            }
        }
        let s = f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3]));
        let mut total = hsum(s);
        for (x, y) in at.iter().zip(bt) {
            total += x * y;
        }
        total
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use core::arch::x86_64::*;

    use crate::isa::Avx2Token;

    /// `v` rounded to the nearest f16 (ties to even) and widened back, with F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) fn f16_round1(v: f32) -> f32 {
        let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v));
        _mm_cvtss_f32(_mm_cvtph_ps(h))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn round_to_f16_imp(xs: &mut [f32]) {
        let (x8, rest) = xs.as_chunks_mut::<8>();
        for x in x8 {
            // SAFETY: `x` is 8 readable and writable f32; unaligned access is fine.
            unsafe {
                let v = _mm256_loadu_ps(x.as_ptr());
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm256_storeu_ps(x.as_mut_ptr(), _mm256_cvtph_ps(h));
            }
        }
        for x in rest {
            *x = f16_round1(*x);
        }
    }

    /// Rounds every value to the nearest f16 in place (F16C).
    pub(crate) fn round_to_f16(_: Avx2Token, xs: &mut [f32]) {
        // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
        unsafe { round_to_f16_imp(xs) }
    }

    /// f32 dot product: four 8-lane FMA accumulators.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot_f32_imp(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (ac, at) = a[..n].as_chunks::<32>();
        let (bc, bt) = b[..n].as_chunks::<32>();
        let mut acc = [_mm256_setzero_ps(); 4];
        for (x, y) in ac.iter().zip(bc) {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `x` and `y` hold 32 floats; lanes `8j .. 8j + 8` are in bounds.
                let (xv, yv) = unsafe {
                    (_mm256_loadu_ps(x.as_ptr().add(8 * j)), _mm256_loadu_ps(y.as_ptr().add(8 * j)))
                };
                *acc = _mm256_fmadd_ps(xv, yv, *acc);
            }
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let mut total = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
        for (x, y) in at.iter().zip(bt) {
            total += x * y;
        }
        total
    }

    /// f32 dot product (AVX2 + FMA).
    #[inline]
    pub(crate) fn dot_f32(_: Avx2Token, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: an `Avx2Token` exists only after AVX2 and FMA were detected.
        unsafe { dot_f32_imp(a, b) }
    }

    /// Converts 8 halves at a time; `T` is a 2-byte little-endian half (`u16` or `[u8; 2]`).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16_to_f32_imp<T: Copy + Into<Half>>(src: &[T], dst: &mut [f32]) {
        const { assert!(size_of::<T>() == 2) };
        let (s8, s_rest) = src.as_chunks::<8>();
        let (d8, d_rest) = dst.as_chunks_mut::<8>();
        for (s, d) in s8.iter().zip(d8.iter_mut()) {
            // SAFETY: `s` is 8 two-byte values (16 readable bytes) and `d` 32 writable bytes;
            // unaligned access is fine. x86 is little-endian, as the halves are.
            unsafe {
                let h = _mm_loadu_si128(s.as_ptr().cast());
                _mm256_storeu_ps(d.as_mut_ptr(), _mm256_cvtph_ps(h));
            }
        }
        for (&s, d) in s_rest.iter().zip(d_rest) {
            let Half(bits) = s.into();
            *d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))));
        }
    }

    /// The bits of a half.
    pub(super) struct Half(u16);

    impl From<u16> for Half {
        fn from(v: u16) -> Self {
            Self(v)
        }
    }

    impl From<[u8; 2]> for Half {
        fn from(v: [u8; 2]) -> Self {
            Self(u16::from_le_bytes(v))
        }
    }

    /// Widens little-endian f16 bytes to f32 (F16C), `min(src.len(), dst.len())` values.
    pub(crate) fn f16le_to_f32(_: Avx2Token, src: &[[u8; 2]], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
        unsafe { f16_to_f32_imp(&src[..n], &mut dst[..n]) }
    }

    /// Widens f16 bit patterns to f32 (F16C), `min(src.len(), dst.len())` values.
    #[inline]
    pub(crate) fn f16_to_f32(_: Avx2Token, src: &[u16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
        unsafe { f16_to_f32_imp(&src[..n], &mut dst[..n]) }
    }
}
