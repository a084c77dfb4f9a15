//! Activations quantized to 8 bits for the integer dot products, stored as separate arrays
//! (quants, f32 scales, sums) rather than GGUF blocks, so kernels load them aligned-free and
//! convert no f16 scale per block.
//!
//! The arithmetic follows llama.cpp `ggml/src/ggml-quants.c` `quantize_row_q8_0_ref`,
//! `quantize_row_q8_1_ref` and `quantize_row_q8_K_ref` (commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`), as `realm_quant`'s reference quantizer does:
//! the scale of a Q8_0/Q8_1 block is rounded to f16 as ggml stores it, so a dot product here
//! sees the same activation values llama.cpp's CPU backend sees (up to its SIMD quantizer
//! rounding ties to even where the reference rounds them away from zero).

use std::sync::{Arc, Mutex};

use realm_quant::QK_K;

use crate::isa::Isa;
use crate::pool::{ChunkPanicked, SharedMut, ThreadPool};

/// The last activations quantized, with the rows they came from: the q, k and v projections
/// (and the gate and up ones) read the same normalized rows, so each set is quantized once
/// per kind. A hit is an exact comparison of the input's bits (much cheaper than quantizing).
#[derive(Default)]
pub(crate) struct ActCache(Mutex<Option<Arc<Quantized>>>);

/// Input rows and their quantization.
pub(crate) type Quantized = (Vec<f32>, QActs);

impl ActCache {
    /// `x`'s `n` rows of `k` quantized to `kind`: the cached ones when `x` is the same.
    pub(crate) fn get(
        &self,
        isa: Isa,
        kind: ActKind,
        x: &[f32],
        n: usize,
        k: usize,
        pool: &ThreadPool,
    ) -> Result<Arc<Quantized>, ChunkPanicked> {
        let same = |c: &Quantized| {
            c.1.kind == kind
                && c.1.k == k
                && c.0.len() == x.len()
                && bytemuck::cast_slice::<f32, u32>(&c.0) == bytemuck::cast_slice::<f32, u32>(x)
        };
        if let Ok(g) = self.0.lock()
            && let Some(c) = g.as_ref().filter(|c| same(c))
        {
            return Ok(c.clone());
        }
        let c = Arc::new((x.to_vec(), QActs::new(isa, kind, x, n, k, pool)?));
        if let Ok(mut g) = self.0.lock() {
            *g = Some(c.clone());
        }
        Ok(c)
    }
}

/// Which 8-bit activation format a weight type's kernel takes (ggml's `vec_dot_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActKind {
    /// 32 per block, one scale.
    Q8_0,
    /// 32 per block, a scale and `d · Σq` (for formats with a min).
    Q8_1,
    /// 256 per block, an f32 scale and per-16 sums of the quants.
    Q8K,
}

impl ActKind {
    pub(crate) fn block(self) -> usize {
        match self {
            Self::Q8_0 | Self::Q8_1 => 32,
            Self::Q8K => QK_K,
        }
    }
}

/// `n` quantized activation rows of `k` values.
pub(crate) struct QActs {
    kind: ActKind,
    k: usize,
    qs: Vec<i8>,
    /// One scale per block.
    d: Vec<f32>,
    /// Q8_1: `d · Σq` per block (rounded to f16, as ggml stores it). Q8_K: unused.
    s: Vec<f32>,
    /// Q8_K: `Σq` over each 16 values.
    bsums: Vec<i16>,
    /// Q8_0/Q8_1: the exact `Σq` of each block (for weights stored with an offset).
    isum: Vec<i32>,
}

/// One quantized activation row.
#[derive(Clone, Copy)]
pub(crate) struct ActRow<'a> {
    pub(crate) qs: &'a [i8],
    pub(crate) d: &'a [f32],
    pub(crate) s: &'a [f32],
    pub(crate) bsums: &'a [i16],
    /// Read only by the x86_64 VNNI kernel.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) isum: &'a [i32],
}

impl QActs {
    /// Quantizes the `n` rows of `x` (`[n, k]`, `k` a multiple of the block size), rows in
    /// parallel on `pool`.
    pub(crate) fn new(
        isa: Isa,
        kind: ActKind,
        x: &[f32],
        n: usize,
        k: usize,
        pool: &ThreadPool,
    ) -> Result<Self, ChunkPanicked> {
        let nb = k / kind.block();
        let mut qs = vec![0i8; n * k];
        let mut d = vec![0.0f32; n * nb];
        let mut s = vec![0.0f32; if kind == ActKind::Q8_1 { n * nb } else { 0 }];
        let mut bsums = vec![0i16; if kind == ActKind::Q8K { n * k / 16 } else { 0 }];
        let mut isum = vec![0i32; if kind == ActKind::Q8K { 0 } else { n * nb }];
        {
            let (qs_w, d_w) = (SharedMut::new(&mut qs), SharedMut::new(&mut d));
            let (s_w, b_w) = (SharedMut::new(&mut s), SharedMut::new(&mut bsums));
            let i_w = SharedMut::new(&mut isum);
            // Rows of about 16 K values per chunk, and at least one chunk per thread.
            let rows_per_chunk = (16384 / k.max(1)).min(n.div_ceil(pool.threads())).max(1);
            pool.run(n.div_ceil(rows_per_chunk), &|c| {
                for r in c * rows_per_chunk..((c + 1) * rows_per_chunk).min(n) {
                    let src = &x[r * k..(r + 1) * k];
                    // SAFETY: row `r` belongs to chunk `c` only, and each array's range for a
                    // row is disjoint from every other row's.
                    let (q, dd) = unsafe { (qs_w.range(r * k, k), d_w.range(r * nb, nb)) };
                    let (Some(q), Some(dd)) = (q, dd) else { continue };
                    match kind {
                        ActKind::Q8_0 | ActKind::Q8_1 => {
                            // SAFETY: as above.
                            let Some(is) = (unsafe { i_w.range(r * nb, nb) }) else { continue };
                            // SAFETY: as above.
                            let sums = if kind == ActKind::Q8_1 {
                                unsafe { s_w.range(r * nb, nb) }
                            } else {
                                None
                            };
                            simd::q8_0(isa, src, q, dd, is, sums);
                        }
                        ActKind::Q8K => {
                            // SAFETY: as above.
                            if let Some(b) = unsafe { b_w.range(r * k / 16, k / 16) } {
                                simd::q8_k(isa, src, q, dd, b);
                            }
                        }
                    }
                }
            })?;
        }
        Ok(Self { kind, k, qs, d, s, bsums, isum })
    }

    pub(crate) fn row(&self, r: usize) -> ActRow<'_> {
        let nb = self.k / self.kind.block();
        let per_s = if self.s.is_empty() { 0 } else { nb };
        let per_i = if self.isum.is_empty() { 0 } else { nb };
        ActRow {
            qs: self.qs.get(r * self.k..(r + 1) * self.k).unwrap_or_default(),
            d: self.d.get(r * nb..(r + 1) * nb).unwrap_or_default(),
            s: self.s.get(r * per_s..(r + 1) * per_s).unwrap_or_default(),
            bsums: self.bsums.get(r * self.k / 16..(r + 1) * self.k / 16).unwrap_or_default(),
            isum: self.isum.get(r * per_i..(r + 1) * per_i).unwrap_or_default(),
        }
    }
}

#[inline(always)]
fn f16_round(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// The quantizers compiled for the detected instruction set: the same code, so the same
/// results (`round` is half away from zero and `round_ties_even` to nearest even either
/// way), but inlined and vectorized instead of a libm call per value.
mod simd {
    use super::{quantize_q8_0, quantize_q8_k};
    use crate::isa::Isa;

    pub(super) fn q8_0(
        isa: Isa,
        x: &[f32],
        qs: &mut [i8],
        d: &mut [f32],
        isum: &mut [i32],
        sums: Option<&mut [f32]>,
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(_) => {
                #[target_feature(enable = "avx2,fma,f16c")]
                fn imp(
                    x: &[f32],
                    q: &mut [i8],
                    d: &mut [f32],
                    i: &mut [i32],
                    s: Option<&mut [f32]>,
                ) {
                    quantize_q8_0(x, q, d, i, s, |v| crate::vec::x86::f16_round1(v));
                }
                // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
                unsafe { imp(x, qs, d, isum, sums) }
            }
            // On wasm32 the build's target features (simd128) apply to this code already.
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => quantize_q8_0(x, qs, d, isum, sums, super::f16_round),
            Isa::Portable => quantize_q8_0(x, qs, d, isum, sums, super::f16_round),
        }
    }

    pub(super) fn q8_k(isa: Isa, x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(_) => {
                #[target_feature(enable = "avx2,fma,f16c")]
                fn imp(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
                    quantize_q8_k(x, qs, d, bsums);
                }
                // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
                unsafe { imp(x, qs, d, bsums) }
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => quantize_q8_k(x, qs, d, bsums),
            Isa::Portable => quantize_q8_k(x, qs, d, bsums),
        }
    }
}

/// Q8_0 (and with `sums`, Q8_1) blocks of 32: `d = amax / 127`, `q = round(x / d)`;
/// `isum` gets each block's exact `Σq`.
#[inline(always)]
fn quantize_q8_0(
    x: &[f32],
    qs: &mut [i8],
    d: &mut [f32],
    isum: &mut [i32],
    mut sums: Option<&mut [f32]>,
    f16_round: impl Fn(f32) -> f32,
) {
    let (xbs, _) = x.as_chunks::<32>();
    let (qbs, _) = qs.as_chunks_mut::<32>();
    for (b, (xb, qb)) in xbs.iter().zip(qbs).enumerate() {
        // Eight lanes of maxima, then their maximum: the same value as a serial scan (max
        // is exact), written so that it vectorizes.
        let mut lanes = [0.0f32; 8];
        for c in xb.as_chunks::<8>().0 {
            for (m, &v) in lanes.iter_mut().zip(c) {
                *m = if *m > v.abs() { *m } else { v.abs() };
            }
        }
        let amax = lanes.iter().fold(0.0f32, |m, &v| if m > v { m } else { v });
        let db = amax / 127.0;
        let id = if db != 0.0 { 1.0 / db } else { 0.0 };
        // |v · id| ≤ 127 up to rounding, so the clamp changes nothing but lets the
        // conversion vectorize.
        // A plain loop rather than `array::from_fn`, whose closure is compiled apart from the
        // caller's target features (scalar code with a libm call per value).
        let mut qi = [0i32; 32];
        for (q, &v) in qi.iter_mut().zip(xb) {
            *q = round_half_away(v * id).clamp(-127.0, 127.0) as i32;
        }
        let mut sum = 0i32;
        for (q, &v) in qb.iter_mut().zip(&qi) {
            *q = v as i8;
            sum += v;
        }
        d[b] = f16_round(db);
        isum[b] = sum;
        if let Some(s) = sums.as_deref_mut() {
            s[b] = f16_round(sum as f32 * db);
        }
    }
}

/// `v.round()` (half away from zero) without the libm call `round` compiles to on x86_64
/// (there is no such rounding instruction): truncate, then step away from zero when the
/// dropped fraction — exact in f32 — is at least one half.
#[inline(always)]
fn round_half_away(v: f32) -> f32 {
    let t = v.trunc();
    if (v - t).abs() >= 0.5 { t + 1.0f32.copysign(v) } else { t }
}

/// Q8_K blocks of 256: `d = max / -127` (signed), `q = nearest(x / d)` (ties to even, as
/// ggml's `nearest_int`), plus per-16 sums.
#[inline(always)]
fn quantize_q8_k(x: &[f32], qs: &mut [i8], d: &mut [f32], bsums: &mut [i16]) {
    let blocks = x.chunks_exact(QK_K).zip(qs.chunks_exact_mut(QK_K));
    for (b, (xb, qb)) in blocks.enumerate() {
        // ggml keeps the first value of largest magnitude (strict `>`): find the magnitude
        // in eight vectorizable lanes, then the first value that has it.
        let mut lanes = [0.0f32; 8];
        for c in xb.chunks_exact(8) {
            for (m, &v) in lanes.iter_mut().zip(c) {
                *m = if *m > v.abs() { *m } else { v.abs() };
            }
        }
        let amax = lanes.iter().fold(0.0f32, |m, &v| if m > v { m } else { v });
        let max = xb.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0);
        let sums = &mut bsums[b * 16..(b + 1) * 16];
        if amax == 0.0 {
            d[b] = 0.0;
            qb.fill(0);
            sums.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in qb.iter_mut().zip(xb) {
            *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
        }
        for (s, g) in sums.iter_mut().zip(qb.chunks_exact(16)) {
            *s = g.iter().map(|&q| i16::from(q)).sum();
        }
        d[b] = 1.0 / iscale;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use realm_quant::GgmlType;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.37 + seed as f32).sin() * 3.0).powi(3)).collect()
    }

    #[test]
    fn round_half_away_is_round() {
        let mut v = vec![0.0f32, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 126.5, -127.5, 0.499_999_97];
        v.extend((0..20_000).map(|i| (i as f32 - 10_000.0) * 0.013_7));
        v.extend([f32::MAX, f32::MIN, 8_388_607.5, -8_388_609.0]);
        for x in v {
            assert_eq!(round_half_away(x).to_bits(), x.round().to_bits(), "{x}");
        }
    }

    /// The separate arrays hold exactly what realm-quant's reference quantizer writes, on
    /// the portable and the SIMD path.
    #[test]
    fn matches_the_reference_quantizer() {
        for isa in [Isa::Portable, Isa::detect()] {
            matches_the_reference_quantizer_on(isa);
        }
    }

    fn matches_the_reference_quantizer_on(isa: Isa) {
        let pool = ThreadPool::new(2);
        let (n, k) = (3, 512);
        let mut x = values(n * k, 1);
        x[40..72].fill(0.0);
        // A block of exact ties (scale 1): half away from zero vs half to even matters.
        x[96] = -127.0;
        for (i, v) in x[97..128].iter_mut().enumerate() {
            *v = i as f32 - 15.5;
        }
        for (kind, ty) in [
            (ActKind::Q8_0, GgmlType::Q8_0),
            (ActKind::Q8_1, GgmlType::Q8_1),
            (ActKind::Q8K, GgmlType::Q8_K),
        ] {
            let acts = QActs::new(isa, kind, &x, n, k, &pool).unwrap();
            for r in 0..n {
                let bytes = realm_quant::quantize_to_vec(ty, &x[r * k..(r + 1) * k]).unwrap();
                let row = acts.row(r);
                let bs = ty.type_size();
                for (b, blk) in bytes.chunks_exact(bs).enumerate() {
                    let f16 = |o: usize| half::f16::from_le_bytes([blk[o], blk[o + 1]]).to_f32();
                    match kind {
                        ActKind::Q8_0 => {
                            assert_eq!(row.d[b], f16(0));
                            let q: Vec<i8> = blk[2..].iter().map(|&v| v as i8).collect();
                            assert_eq!(&row.qs[b * 32..(b + 1) * 32], &q[..]);
                        }
                        ActKind::Q8_1 => {
                            assert_eq!((row.d[b], row.s[b]), (f16(0), f16(2)));
                            let q: Vec<i8> = blk[4..].iter().map(|&v| v as i8).collect();
                            assert_eq!(&row.qs[b * 32..(b + 1) * 32], &q[..]);
                        }
                        ActKind::Q8K => {
                            let d = f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]);
                            assert_eq!(row.d[b], d);
                            let q: Vec<i8> = blk[4..260].iter().map(|&v| v as i8).collect();
                            assert_eq!(&row.qs[b * 256..(b + 1) * 256], &q[..]);
                            for g in 0..16 {
                                let s = i16::from_le_bytes([blk[260 + 2 * g], blk[261 + 2 * g]]);
                                assert_eq!(row.bsums[b * 16 + g], s);
                            }
                        }
                    }
                }
            }
        }
    }
}
