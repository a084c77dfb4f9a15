//! x86_64 256-bit kernels over weights repacked in panels of 8 rows ([`super::pack`]): the
//! 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the K-quants Q4_K, Q5_K and Q6_K, the same
//! set and arithmetic as the AVX-512 kernels ([`super::vnni`]) at half the width.
//!
//! The integer dot of 4 weights of each of 8 rows (unsigned bytes, one i32 lane per row) with
//! 4 broadcast activation quants (signed) is the one thing that differs between the levels:
//! - [`avx2`]: `vpmaddubsw` (pairs of `u8 × i8` into i16) then `vpmaddwd` by ones into i32, as
//!   llama.cpp's AVX2 kernels. The i16 pair sums of several weight vectors are added before
//!   the widening where they cannot overflow: a pair is at most `2 · 128 · max_w`, so 8 pairs
//!   of 4-bit weights (≤ 30720), 4 of 5-bit (≤ 31744) or 2 of 6-bit (≤ 32256) fit in an i16.
//!   Q8_0's signed weights take `|w|` times the activation with `w`'s sign (`vpsignb`), one
//!   vector at a time (a pair of 8-bit products reaches 32512).
//! - [`vnni_vex`]: AVX-VNNI's `vpdpbusd` (VEX, 256-bit; Alder Lake and later, Zen 5), exact
//!   i32 accumulation, no i16 stage.
//! - [`vnni_evex`]: the same instruction in its AVX-512 VL form, on CPUs with AVX-512 VNNI but
//!   not AVX-VNNI (Ice Lake to Sapphire Rapids, Zen 4), so that the 256-bit VNNI level can run
//!   and be measured there.
//!
//! Each level is the same kernel source (the `kernels!` macro) compiled with its features.

use super::pack::Fmt;
use super::q8::ActRow;

/// Weight rows per panel: one i32 lane each of a 256-bit vector.
pub(crate) const PANEL: usize = 8;
/// Results are written into the first [`PANEL`] entries of rows as wide as the 16-row panels'.
const OUT: usize = super::vnni::PANEL;

/// Activation quants `4j .. 4j + 4` of a block as one i32.
#[inline(always)]
fn dword(q: &[i8; 32], j: usize) -> i32 {
    i32::from_le_bytes([q[4 * j] as u8, q[4 * j + 1] as u8, q[4 * j + 2] as u8, q[4 * j + 3] as u8])
}

macro_rules! kernels {
    ($name:ident, $feat:literal, $dot:ident) => {
        pub(crate) mod $name {
            use core::arch::x86_64::*;

            use super::super::pack::{Fmt, Layout};
            use super::super::q8::ActRow;
            use super::super::vnni::PREFETCH_AHEAD;
            use super::{OUT, PANEL};

            const K4: Layout = Layout { fmt: Fmt::Q4K, p: PANEL };
            const K5: Layout = Layout { fmt: Fmt::Q5K, p: PANEL };
            const K6: Layout = Layout { fmt: Fmt::Q6K, p: PANEL };

            /// `out[i][o]` = row `o` of the panel whose records are `recs`, dotted with
            /// activation row `a[i]` (the caller checked that the rows cover the records).
            #[target_feature(enable = $feat)]
            pub(crate) fn rows(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>], out: &mut [[f32; OUT]]) {
                let (a4, a1) = a.as_chunks::<4>();
                let (o4, o1) = out.as_chunks_mut::<4>();
                for (a, o) in a4.iter().zip(o4) {
                    store(o, dispatch::<4>(fmt, recs, a));
                }
                for (a, o) in a1.iter().zip(o1) {
                    store(core::slice::from_mut(o), dispatch::<1>(fmt, recs, &[*a]));
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            fn store<const R: usize>(out: &mut [[f32; OUT]], v: [__m256; R]) {
                for (o, v) in out.iter_mut().zip(v) {
                    // SAFETY: `o` has at least 8 writable f32; storeu has no alignment need.
                    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) }
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            fn dispatch<const R: usize>(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>; R]) -> [__m256; R] {
                match fmt {
                    Fmt::Q4_0 => panel_loop::<R, false, 8, false>(fmt, recs, a, |r| nibbles(r)),
                    Fmt::Q4_1 => panel_loop::<R, true, 8, false>(fmt, recs, a, |r| nibbles(r)),
                    Fmt::Q5_0 => panel_loop::<R, false, 4, false>(fmt, recs, a, |r| fifth_bits(r)),
                    Fmt::Q5_1 => panel_loop::<R, true, 4, false>(fmt, recs, a, |r| fifth_bits(r)),
                    Fmt::Q8_0 => panel_loop::<R, false, 1, true>(fmt, recs, a, |r| bytes(r)),
                    Fmt::Q4K => q4k_loop::<R, 8>(K4, recs, a, |s| nibbles(s)),
                    Fmt::Q5K => q4k_loop::<R, 4>(K5, recs, a, |s| fifth_bits(s)),
                    Fmt::Q6K => q6k_loop::<R>(recs, a),
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            fn load256(rec: &[u8], at: usize) -> __m256i {
                let b: &[u8; 32] = rec[at..at + 32].try_into().unwrap_or(&[0; 32]);
                // SAFETY: `b` is 32 readable bytes; loadu has no alignment need.
                unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            fn load_f16x8(rec: &[u8], at: usize) -> __m256 {
                let b: &[u8; 16] = rec[at..at + 16].try_into().unwrap_or(&[0; 16]);
                // SAFETY: `b` is 16 readable bytes; loadu has no alignment need.
                _mm256_cvtph_ps(unsafe { _mm_loadu_si128(b.as_ptr().cast()) })
            }

            /// 8 bytes of `rec` at `at`, widened to 8 i32 (signed or not).
            #[inline]
            #[target_feature(enable = $feat)]
            fn load_i8x8<const SIGNED: bool>(rec: &[u8], at: usize) -> __m256i {
                let b: [u8; 8] = rec[at..at + 8].try_into().unwrap_or([0; 8]);
                let v = _mm_cvtsi64_si128(i64::from_le_bytes(b));
                if SIGNED { _mm256_cvtepi8_epi32(v) } else { _mm256_cvtepu8_epi32(v) }
            }

            /// Prefetches `len` bytes `PREFETCH_AHEAD` past `at`: decode streams the weights
            /// once, so they are asked for ahead of the hardware prefetcher.
            #[inline(always)]
            fn prefetch_ahead(at: &[u8], len: usize) {
                let ahead = at.as_ptr().wrapping_add(PREFETCH_AHEAD);
                for line in 0..len.div_ceil(64) {
                    // SAFETY: a prefetch never faults, whatever the address.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast()) };
                }
            }

            /// The 8 weight vectors of a 4-bit record: low nibbles of the 4 stored vectors,
            /// then high.
            #[inline]
            #[target_feature(enable = $feat)]
            fn nibbles(rec: &[u8]) -> [__m256i; 8] {
                let m4 = _mm256_set1_epi8(0x0F);
                let v: [__m256i; 4] = core::array::from_fn(|j| load256(rec, 32 * j));
                let hi = |x: __m256i| _mm256_and_si256(_mm256_srli_epi16::<4>(x), m4);
                [
                    _mm256_and_si256(v[0], m4),
                    _mm256_and_si256(v[1], m4),
                    _mm256_and_si256(v[2], m4),
                    _mm256_and_si256(v[3], m4),
                    hi(v[0]),
                    hi(v[1]),
                    hi(v[2]),
                    hi(v[3]),
                ]
            }

            /// [`nibbles`] plus 16 where the record's masks hold a fifth bit.
            #[inline]
            #[target_feature(enable = $feat)]
            fn fifth_bits(rec: &[u8]) -> [__m256i; 8] {
                let l = Layout { fmt: Fmt::Q5_0, p: PANEL };
                let mut w = nibbles(rec);
                let sixteen = _mm256_set1_epi8(16);
                for (j, x) in w.iter_mut().enumerate() {
                    let at = l.mask_at(j);
                    let k: [u8; 4] =
                        rec.get(at..at + 4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]);
                    let bits = super::super::avx2::bits_to_bytes(k);
                    *x = _mm256_or_si256(*x, _mm256_and_si256(bits, sixteen));
                }
                w
            }

            /// The 8 weight vectors of a Q8_0 record (signed).
            #[inline]
            #[target_feature(enable = $feat)]
            fn bytes(rec: &[u8]) -> [__m256i; 8] {
                core::array::from_fn(|j| load256(rec, 32 * j))
            }

            /// The loop over a panel's records: `R` activation rows share each unpacked
            /// record. `GROUP`, `SIGNED`: see [`super::dot_avx2`].
            #[inline]
            #[target_feature(enable = $feat)]
            fn panel_loop<
                const R: usize,
                const AFFINE: bool,
                const GROUP: usize,
                const SIGNED: bool,
            >(
                fmt: Fmt,
                recs: &[u8],
                a: &[ActRow<'_>; R],
                unpack: impl Fn(&[u8]) -> [__m256i; 8],
            ) -> [__m256; R] {
                let l = Layout { fmt, p: PANEL };
                let (sc, off) = (l.scales_at(), l.offset());
                let mut acc = [_mm256_setzero_ps(); R];
                for (b, rec) in recs.chunks_exact(l.record()).enumerate() {
                    prefetch_ahead(rec, l.record());
                    let w = unpack(rec);
                    let d = load_f16x8(rec, sc);
                    let m =
                        if AFFINE { load_f16x8(rec, sc + 2 * PANEL) } else { _mm256_setzero_ps() };
                    for (acc, a) in acc.iter_mut().zip(a) {
                        let (blocks, _) = a.qs.as_chunks::<32>();
                        let mut s = super::$dot::<GROUP, SIGNED>(&w, &blocks[b], 0);
                        if off != 0 {
                            s = _mm256_sub_epi32(s, _mm256_set1_epi32(off * a.isum[b]));
                        }
                        let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d[b]));
                        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, *acc);
                        if AFFINE {
                            *acc = _mm256_fmadd_ps(m, _mm256_set1_ps(a.s[b]), *acc);
                        }
                    }
                }
                acc
            }

            /// Q4_K (Q5_K: `unpack` adds the fifth bits): per sub-block an integer dot of 8 rows, times the rows' 6-bit scales,
            /// summed over the superblock; the mins against the activations' per-32 sums with
            /// `vpmaddwd`. Then, as ggml: `acc += d · d_a · Σ sc·dot − dmin · d_a · Σ min·bsum`.
            #[inline]
            #[target_feature(enable = $feat)]
            fn q4k_loop<const R: usize, const GROUP: usize>(
                l: Layout,
                recs: &[u8],
                a: &[ActRow<'_>; R],
                unpack: impl Fn(&[u8]) -> [__m256i; 8],
            ) -> [__m256; R] {
                let sub_len = l.k4_sub();
                let mut acc = [_mm256_setzero_ps(); R];
                for (b, rec) in recs.chunks_exact(l.record()).enumerate() {
                    let mut sumi = [_mm256_setzero_si256(); R];
                    for s in 0..8 {
                        let sub = &rec[sub_len * s..sub_len * (s + 1)];
                        prefetch_ahead(sub, sub_len);
                        let w = unpack(sub);
                        let sc = load_i8x8::<false>(rec, l.k4_sc() + PANEL * s);
                        for (sumi, a) in sumi.iter_mut().zip(a) {
                            let (blocks, _) = a.qs.as_chunks::<32>();
                            let dot = super::$dot::<GROUP, false>(&w, &blocks[8 * b + s], 0);
                            *sumi = _mm256_add_epi32(*sumi, _mm256_mullo_epi32(dot, sc));
                        }
                    }
                    let d = load_f16x8(rec, l.k4_d());
                    let dmin = load_f16x8(rec, l.k4_d() + 2 * PANEL);
                    let mins: [__m256i; 4] =
                        core::array::from_fn(|k| load256(rec, l.k4_mins() + 32 * k));
                    for ((acc, sumi), a) in acc.iter_mut().zip(sumi).zip(a) {
                        let bs = &a.bsums[16 * b..16 * b + 16];
                        let pair = |g: usize| i32::from(bs[2 * g]) + i32::from(bs[2 * g + 1]);
                        let mut m = _mm256_setzero_si256();
                        for (k, &mv) in mins.iter().enumerate() {
                            let p = (pair(2 * k) as u32 & 0xFFFF) | (pair(2 * k + 1) as u32) << 16;
                            m = _mm256_add_epi32(
                                m,
                                _mm256_madd_epi16(mv, _mm256_set1_epi32(p as i32)),
                            );
                        }
                        let da = _mm256_set1_ps(a.d[b]);
                        *acc =
                            _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, da), *acc);
                        *acc =
                            _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, da), *acc);
                    }
                }
                acc
            }

            /// The 8 weight vectors (unsigned 6-bit) of a Q6_K sub-record: nibbles plus 2 high
            /// bits.
            #[inline]
            #[target_feature(enable = $feat)]
            fn six_bits(sub: &[u8]) -> [__m256i; 8] {
                let mut w = nibbles(sub);
                let m = _mm256_set1_epi8(0x30);
                let h = [load256(sub, 4 * 32), load256(sub, 5 * 32)];
                for (j, x) in w.iter_mut().enumerate() {
                    let hv = h[j / 4];
                    // Bits `2 (j % 4) ..` of each byte moved to bits 4..6; 16-bit shifts are
                    // safe because the mask drops whatever crossed from the neighbouring byte.
                    let top = match j % 4 {
                        0 => _mm256_slli_epi16::<4>(hv),
                        1 => _mm256_slli_epi16::<2>(hv),
                        2 => hv,
                        _ => _mm256_srli_epi16::<2>(hv),
                    };
                    *x = _mm256_or_si256(*x, _mm256_and_si256(top, m));
                }
                w
            }

            /// Q6_K: per sub-record two 16-weight integer dots (over unsigned `q`, corrected by
            /// `32 · Σ a` from the activation sums), times the rows' signed scales, summed over
            /// the superblock; `acc += d · d_a · Σ`.
            #[inline]
            #[target_feature(enable = $feat)]
            fn q6k_loop<const R: usize>(recs: &[u8], a: &[ActRow<'_>; R]) -> [__m256; R] {
                let sub_len = K6.k6_sub();
                let mut acc = [_mm256_setzero_ps(); R];
                for (b, rec) in recs.chunks_exact(K6.record()).enumerate() {
                    let mut sumi = [_mm256_setzero_si256(); R];
                    for s in 0..8 {
                        let sub = &rec[sub_len * s..sub_len * (s + 1)];
                        prefetch_ahead(sub, sub_len);
                        let w = six_bits(sub);
                        let sc_lo = load_i8x8::<true>(rec, K6.k6_sc() + 2 * PANEL * s);
                        let sc_hi = load_i8x8::<true>(rec, K6.k6_sc() + 2 * PANEL * s + PANEL);
                        for (sumi, a) in sumi.iter_mut().zip(a) {
                            let (blocks, _) = a.qs.as_chunks::<32>();
                            let q = &blocks[8 * b + s];
                            let bs = &a.bsums[16 * b + 2 * s..16 * b + 2 * s + 2];
                            let lo = super::$dot::<2, false>(&w[..4], q, 0);
                            let hi = super::$dot::<2, false>(&w[4..], q, 4);
                            let lo = _mm256_sub_epi32(lo, _mm256_set1_epi32(32 * i32::from(bs[0])));
                            let hi = _mm256_sub_epi32(hi, _mm256_set1_epi32(32 * i32::from(bs[1])));
                            let t = _mm256_add_epi32(
                                _mm256_mullo_epi32(lo, sc_lo),
                                _mm256_mullo_epi32(hi, sc_hi),
                            );
                            *sumi = _mm256_add_epi32(*sumi, t);
                        }
                    }
                    let d = load_f16x8(rec, K6.k6_d());
                    for ((acc, sumi), a) in acc.iter_mut().zip(sumi).zip(a) {
                        let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d[b]));
                        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), scale, *acc);
                    }
                }
                acc
            }
        }
    };
}

/// `Σ_j` over the weight vectors `w[j]` (unsigned bytes; signed where `SIGNED`) of the 4-byte
/// dots with activation dword `j0 + j` of `q`, as 8 i32 lanes, with `vpmaddubsw`: the i16 pair
/// sums of `GROUP` vectors are added before they are widened (see the module docs for why
/// that cannot overflow).
#[inline]
#[target_feature(enable = "avx2")]
fn dot_avx2<const GROUP: usize, const SIGNED: bool>(
    w: &[core::arch::x86_64::__m256i],
    q: &[i8; 32],
    j0: usize,
) -> core::arch::x86_64::__m256i {
    use core::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    for (g, ws) in w.chunks(GROUP).enumerate() {
        let mut s16 = _mm256_setzero_si256();
        for (i, &wv) in ws.iter().enumerate() {
            let a = _mm256_set1_epi32(dword(q, j0 + GROUP * g + i));
            let p = if SIGNED {
                _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(a, wv))
            } else {
                _mm256_maddubs_epi16(wv, a)
            };
            s16 = _mm256_add_epi16(s16, p);
        }
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s16, ones));
    }
    acc
}

/// A [`dot_avx2`] with a 256-bit `vpdpbusd` (exact i32 sums; `GROUP` does not matter), for
/// each encoding of the instruction: its target features and intrinsic.
macro_rules! vnni_dot {
    ($(#[$doc:meta])* $name:ident, $feat:literal, $dp:ident) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $feat)]
        fn $name<const GROUP: usize, const SIGNED: bool>(
            w: &[core::arch::x86_64::__m256i],
            q: &[i8; 32],
            j0: usize,
        ) -> core::arch::x86_64::__m256i {
            use core::arch::x86_64::*;
            // Two chains halve the latency a single row waits on.
            let (mut s0, mut s1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for (j, &wv) in w.iter().enumerate() {
                let a = _mm256_set1_epi32(dword(q, j0 + j));
                let (u, a) =
                    if SIGNED { (_mm256_abs_epi8(wv), _mm256_sign_epi8(a, wv)) } else { (wv, a) };
                if j % 2 == 0 {
                    s0 = $dp(s0, u, a);
                } else {
                    s1 = $dp(s1, u, a);
                }
            }
            _mm256_add_epi32(s0, s1)
        }
    };
}

vnni_dot!(
    /// AVX-VNNI's `vpdpbusd` (VEX).
    dot_vex, "avx2,avxvnni", _mm256_dpbusd_avx_epi32
);
vnni_dot!(
    /// The AVX-512 VL encoding of `vpdpbusd`.
    dot_evex, "avx2,avx512f,avx512vl,avx512vnni", _mm256_dpbusd_epi32
);

kernels!(avx2, "avx2,fma,f16c", dot_avx2);
kernels!(vnni_vex, "avx2,fma,f16c,avxvnni", dot_vex);
kernels!(vnni_evex, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_evex);

/// Which 256-bit kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dot {
    Avx2,
    VnniVex,
    VnniEvex,
}

/// `out[i][o]` = row `o` of the panel `recs` (format `fmt`) dotted with activation row `a[i]`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C, and for `VnniVex` AVX-VNNI, for `VnniEvex` AVX-512
/// F/VL/VNNI.
pub(crate) unsafe fn rows(
    dot: Dot,
    fmt: Fmt,
    recs: &[u8],
    a: &[ActRow<'_>],
    out: &mut [[f32; OUT]],
) {
    // SAFETY: the caller's contract.
    unsafe {
        match dot {
            Dot::Avx2 => avx2::rows(fmt, recs, a, out),
            Dot::VnniVex => vnni_vex::rows(fmt, recs, a, out),
            Dot::VnniEvex => vnni_evex::rows(fmt, recs, a, out),
        }
    }
}
