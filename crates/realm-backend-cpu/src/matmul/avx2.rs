//! x86_64 AVX2 + FMA + F16C integer dot products of one weight row (GGUF blocks) with up to
//! four 8-bit activation rows at once. Same results as [`super::portable`] up to the order of
//! the f32 additions; tested against it.
//!
//! The technique follows llama.cpp `ggml/src/ggml-cpu/arch/x86/quants.c`
//! (`ggml_vec_dot_q4_0_q8_0` and siblings, commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`):
//! unpack 32 weights to bytes, multiply bytes pairwise into i16 with `vpmaddubsw`
//! (unsigned × signed, so a signed weight lends its sign to the activation first), widen
//! pairs to i32 with `vpmaddwd`, and scale each block's integer sum once in f32.
//! Activation quants lie in -127..=127 (see `q8.rs`), which keeps `vpmaddubsw` from
//! saturating and the sign transfer from overflowing. Unlike ggml, a weight block is unpacked
//! once for up to four activation rows (prefill), each with its own accumulator.
//!
//! Every function here requires AVX2, FMA and F16C; the safe entry points take an
//! [`Avx2Token`], which only exists once those were detected.

use core::arch::x86_64::*;

use realm_quant::QK_K;
use realm_quant::blocks::KVALUES_IQ4NL;

use super::portable::{k4_min_sum, k4_scale_mins, q4k_parts, q5k_parts, q6k_parts};
use super::q8::ActRow;
use crate::isa::Avx2Token;

/// `out[i] = dot(weight row, activation row a[i])`.
pub(crate) type RowsDot = fn(Avx2Token, &[u8], &[ActRow<'_>], &mut [f32]);

/// Defines the safe entry point `$name` over the row-generic kernel `$imp`: groups of four
/// activation rows, then single rows.
macro_rules! entry {
    ($name:ident => $imp:ident) => {
        pub(crate) fn $name(_: Avx2Token, w: &[u8], a: &[ActRow<'_>], out: &mut [f32]) {
            #[target_feature(enable = "avx2,fma,f16c")]
            fn rows(w: &[u8], a: &[ActRow<'_>], out: &mut [f32]) {
                let (a4, a1) = a.as_chunks::<4>();
                let (o4, o1) = out.as_chunks_mut::<4>();
                for (a, o) in a4.iter().zip(o4) {
                    *o = $imp::<4>(w, a);
                }
                for (a, o) in a1.iter().zip(o1) {
                    *o = $imp::<1>(w, &[*a])[0];
                }
            }
            // SAFETY: an `Avx2Token` exists only after AVX2, FMA and F16C were detected.
            unsafe { rows(w, a, out) }
        }
    };
}

entry!(dot_q4_0 => q4_0);
entry!(dot_q4_1 => q4_1);
entry!(dot_q5_0 => q5_0);
entry!(dot_q5_1 => q5_1);
entry!(dot_q8_0 => q8_0);
entry!(dot_iq4_nl => iq4_nl);
entry!(dot_q4_k => q4_k);
entry!(dot_q5_k => q5_k);
entry!(dot_q6_k => q6_k);

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(b)))))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load32<T>(b: &[T; 32]) -> __m256i {
    const { assert!(size_of::<T>() == 1) };
    // SAFETY: `b` is 32 readable bytes (`T` is one byte); loadu has no alignment need.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load16(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; loadu has no alignment need.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Bytes 0..16 = low nibbles of `qs`, bytes 16..32 = high nibbles (element order of the
/// 32-blocks).
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles(qs: &[u8; 16]) -> __m256i {
    let v = load16(qs);
    let both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Byte `j` is `0xFF` where bit `j` of `qh` is set, else 0.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn bits_to_bytes(qh: [u8; 4]) -> __m256i {
    let v = _mm256_set1_epi32(i32::from_le_bytes(qh));
    #[rustfmt::skip]
    let spread = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bytes = _mm256_shuffle_epi8(v, spread);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit)
}

/// Eight i32 lanes, each the sum of 4 adjacent `u8 × i8` products.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_u8_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// The quants of 32-block `i` of activation row `a`.
#[inline(always)]
fn act_block<'a>(a: &ActRow<'a>, i: usize) -> &'a [i8; 32] {
    let (blocks, _) = a.qs.as_chunks::<32>();
    &blocks[i]
}

/// The common loop of the 32-block formats: for each weight block, `unpack` gives its
/// bytes `x`, its scale and its min; each activation row adds `d_w · d_a · Σ x·y` to a
/// vector accumulator and, for `AFFINE` formats (`w = d·q + m`, `x` unsigned, Q8_1
/// activations), `m_w · s_a` to a scalar one. Otherwise `x` is signed.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn blocks32<const B: usize, const R: usize, const AFFINE: bool>(
    w: &[u8],
    a: &[ActRow<'_>; R],
    mut unpack: impl FnMut(&[u8; B]) -> (__m256i, f32, f32),
) -> [f32; R] {
    let (wb, _) = w.as_chunks::<B>();
    // Two accumulators per row (even and odd blocks) halve the FMA dependency chain.
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut mins = [0.0f32; R];
    for (i, b) in wb.iter().enumerate() {
        let (x, dw, mw) = unpack(b);
        // A signed x lends its sign to y so that vpmaddubsw sees |x| (unsigned).
        let ux = if AFFINE { x } else { _mm256_sign_epi8(x, x) };
        for r in 0..R {
            let y = load32(act_block(&a[r], i));
            let y = if AFFINE { y } else { _mm256_sign_epi8(y, x) };
            let p = _mm256_cvtepi32_ps(dot_u8_i8(ux, y));
            let slot = &mut acc[r][i & 1];
            *slot = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[r].d[i]), p, *slot);
            if AFFINE {
                mins[r] += mw * a[r].s[i];
            }
        }
    }
    core::array::from_fn(|r| hsum(_mm256_add_ps(acc[r][0], acc[r][1])) + mins[r])
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<18, R, false>(w, a, |b| {
        let [d0, d1, qs @ ..] = b;
        (_mm256_sub_epi8(nibbles(qs), _mm256_set1_epi8(8)), f16([*d0, *d1]), 0.0)
    })
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<20, R, true>(w, a, |b| {
        let [d0, d1, m0, m1, qs @ ..] = b;
        (nibbles(qs), f16([*d0, *d1]), f16([*m0, *m1]))
    })
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_0<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<22, R, false>(w, a, |b| {
        let [d0, d1, h0, h1, h2, h3, qs @ ..] = b;
        // (q | bit4) - 16 as a signed byte: where bit 4 is clear, set the top nibble.
        let high = _mm256_andnot_si256(bits_to_bytes([*h0, *h1, *h2, *h3]), _mm256_set1_epi8(-16));
        (_mm256_or_si256(nibbles(qs), high), f16([*d0, *d1]), 0.0)
    })
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_1<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<24, R, true>(w, a, |b| {
        let [d0, d1, m0, m1, h0, h1, h2, h3, qs @ ..] = b;
        let high = _mm256_and_si256(bits_to_bytes([*h0, *h1, *h2, *h3]), _mm256_set1_epi8(0x10));
        (_mm256_or_si256(nibbles(qs), high), f16([*d0, *d1]), f16([*m0, *m1]))
    })
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<34, R, false>(w, a, |b| {
        let [d0, d1, qs @ ..] = b;
        (load32(qs), f16([*d0, *d1]), 0.0)
    })
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn iq4_nl<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let table = load16(&KVALUES_IQ4NL.map(|v| v as u8));
    let table = _mm256_set_m128i(table, table);
    blocks32::<18, R, false>(w, a, |b| {
        let [d0, d1, qs @ ..] = b;
        (_mm256_shuffle_epi8(table, nibbles(qs)), f16([*d0, *d1]), 0.0)
    })
}

/// 32 activation quants starting at `32 · i` of a Q8_K block.
#[inline(always)]
fn act32(qa: &[i8; QK_K], i: usize) -> &[i8; 32] {
    let (chunks, _) = qa.as_chunks::<32>();
    &chunks[i]
}

/// The Q8_K block `i` of activation row `a`: quants, scale, per-16 sums.
#[inline(always)]
fn act_k<'a>(a: &ActRow<'a>, i: usize) -> (&'a [i8; QK_K], f32, &'a [i16; 16]) {
    let (qs, _) = a.qs.as_chunks::<QK_K>();
    let (bs, _) = a.bsums.as_chunks::<16>();
    (&qs[i], a.d[i], &bs[i])
}

/// The common loop of Q4_K and Q5_K: `unpack(block, j)` gives the unsigned bytes of groups
/// `2j` and `2j + 1`; each activation row accumulates `d · Σ_g sc_g Σ q·y` in a vector and
/// `-dmin · Σ_g m_g Σ y` (from the Q8_K sums) in a scalar.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn k4_blocks<const B: usize, const R: usize>(
    w: &[u8],
    a: &[ActRow<'_>; R],
    parts: impl Fn(&[u8; B]) -> (f32, f32, &[u8; 12]),
    unpack: impl Fn(&[u8; B], usize) -> (__m256i, __m256i),
) -> [f32; R] {
    let (wb, _) = w.as_chunks::<B>();
    let mut acc = [_mm256_setzero_ps(); R];
    let mut mins = [0.0f32; R];
    for (i, b) in wb.iter().enumerate() {
        let (d, dmin, scales) = parts(b);
        let (sc, mn) = k4_scale_mins(scales);
        let mut sumi = [_mm256_setzero_si256(); R];
        for j in 0..4 {
            let (lo, hi) = unpack(b, j);
            let (s_lo, s_hi) = (
                _mm256_set1_epi16(i16::from(sc[2 * j])),
                _mm256_set1_epi16(i16::from(sc[2 * j + 1])),
            );
            for r in 0..R {
                let (qa, _, _) = act_k(&a[r], i);
                let p_lo =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(act32(qa, 2 * j))), s_lo);
                let p_hi =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(act32(qa, 2 * j + 1))), s_hi);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(p_lo, p_hi));
            }
        }
        for r in 0..R {
            let (_, da, bsums) = act_k(&a[r], i);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            mins[r] -= dmin * da * k4_min_sum(&mn, bsums) as f32;
        }
    }
    core::array::from_fn(|r| hsum(acc[r]) + mins[r])
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_k<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let m4 = _mm256_set1_epi8(0x0F);
    k4_blocks::<144, R>(
        w,
        a,
        |b| {
            let (d, dmin, scales, _) = q4k_parts(b);
            (d, dmin, scales)
        },
        |b, j| {
            let (_, _, _, qs) = q4k_parts(b);
            let (qs, _) = qs.as_chunks::<32>();
            let q = load32(&qs[j]);
            (_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4))
        },
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q5_k<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let m4 = _mm256_set1_epi8(0x0F);
    let bit = _mm256_set1_epi8(0x10);
    k4_blocks::<176, R>(
        w,
        a,
        |b| {
            let (d, dmin, scales, _, _) = q5k_parts(b);
            (d, dmin, scales)
        },
        |b, j| {
            let (_, _, _, qh, qs) = q5k_parts(b);
            let (qs, _) = qs.as_chunks::<32>();
            let q = load32(&qs[j]);
            // Bit 4 of group g's element l is bit g of qh[l]: move bits 2j and 2j + 1 of
            // every byte to bit 4 (16-bit shifts; the mask drops what crosses bytes).
            let h = _mm256_srl_epi16(load32(qh), _mm_cvtsi32_si128(2 * j as i32));
            let h_lo = _mm256_and_si256(_mm256_slli_epi16(h, 4), bit);
            let h_hi = _mm256_and_si256(_mm256_slli_epi16(h, 3), bit);
            let lo = _mm256_or_si256(_mm256_and_si256(q, m4), h_lo);
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h_hi);
            (lo, hi)
        },
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q6_k<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let (wb, _) = w.as_chunks::<210>();
    let mut acc = [_mm256_setzero_ps(); R];
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x03);
    let k32 = _mm256_set1_epi8(32);
    for (i, b) in wb.iter().enumerate() {
        let (ql, qh, sc, d) = q6k_parts(b);
        let (ql, _) = ql.as_chunks::<32>();
        let (qh, _) = qh.as_chunks::<32>();
        let mut sumi = [_mm256_setzero_si256(); R];
        for h in 0..2 {
            let (l0, l1, hb) = (load32(&ql[2 * h]), load32(&ql[2 * h + 1]), load32(&qh[h]));
            let top = |s: i32| {
                let v = _mm256_srl_epi16(hb, _mm_cvtsi32_si128(s));
                _mm256_slli_epi16(_mm256_and_si256(v, m2), 4)
            };
            // The four 32-element quarters of this half, as unsigned 6-bit values.
            let q = [
                _mm256_or_si256(_mm256_and_si256(l0, m4), top(0)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), top(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), top(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), top(6)),
            ];
            for (k, &qk) in q.iter().enumerate() {
                let g = 8 * h + 2 * k;
                // Group g covers the quarter's first 16 values (low i16 lanes), g + 1 the rest.
                let scale = _mm256_set_m128i(
                    _mm_set1_epi16(i16::from(sc[g + 1])),
                    _mm_set1_epi16(i16::from(sc[g])),
                );
                for r in 0..R {
                    let (qa, _, _) = act_k(&a[r], i);
                    let y = load32(act32(qa, 4 * h + k));
                    // (q - 32) · y = q · y - 32 · y, both within i16.
                    let p =
                        _mm256_sub_epi16(_mm256_maddubs_epi16(qk, y), _mm256_maddubs_epi16(k32, y));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, scale));
                }
            }
        }
        for r in 0..R {
            let (_, da, _) = act_k(&a[r], i);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * da), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    core::array::from_fn(|r| hsum(acc[r]))
}
