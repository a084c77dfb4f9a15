//! x86_64 AVX-512 VNNI kernels over weights repacked in panels of 16 rows ([`super::pack`]):
//! the 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the K-quants Q4_K, Q5_K and Q6_K.
//!
//! One `vpdpbusd` multiplies 4 consecutive weights of 16 rows at once (one i32 lane per weight
//! row) by the same 4 activation quants (broadcast), so a block of 16 rows costs 8
//! `vpdpbusd`, and the conversion and scaling are done for 16 outputs at a time.

use core::arch::x86_64::*;

use super::pack::{Fmt, Layout};
use super::q8::ActRow;

/// Weight rows per panel: one i32 lane each of a 512-bit vector.
pub(crate) const PANEL: usize = 16;

/// How far ahead of the record being read the kernel prefetches (bytes).
pub(crate) const PREFETCH_AHEAD: usize = 4096;

const K4: Layout = Layout { fmt: Fmt::Q4K, p: PANEL };
const K5: Layout = Layout { fmt: Fmt::Q5K, p: PANEL };
const K6: Layout = Layout { fmt: Fmt::Q6K, p: PANEL };

/// `out[i][o]` = row `o` of the panel whose records are `recs`, dotted with activation row
/// `a[i]`. The caller checked that the rows cover the records (`Panels::rows_fit`).
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) fn rows(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>], out: &mut [[f32; PANEL]]) {
    // The 32-block formats unpack a record once for eight rows where there are eight (a
    // batch of decode rows); the super-block ones keep four (their accumulators would spill).
    let (a, out) = if fmt.superblock() {
        (a, out)
    } else {
        let (a8, a_rest) = a.as_chunks::<8>();
        let (o8, o_rest) = out.as_chunks_mut::<8>();
        for (a, o) in a8.iter().zip(o8) {
            store(o, dispatch::<8>(fmt, recs, a));
        }
        (a_rest, o_rest)
    };
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
#[target_feature(enable = "avx512f")]
fn store<const R: usize>(out: &mut [[f32; PANEL]], v: [__m512; R]) {
    for (o, v) in out.iter_mut().zip(v) {
        // SAFETY: `o` is 16 writable f32; storeu has no alignment need.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dispatch<const R: usize>(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>; R]) -> [__m512; R] {
    match fmt {
        Fmt::Q4_0 => panel_loop::<R, false>(fmt, recs, a, |r| nibbles(r)),
        Fmt::Q4_1 => panel_loop::<R, true>(fmt, recs, a, |r| nibbles(r)),
        Fmt::Q5_0 => panel_loop::<R, false>(fmt, recs, a, |r| fifth_bits(r)),
        Fmt::Q5_1 => panel_loop::<R, true>(fmt, recs, a, |r| fifth_bits(r)),
        Fmt::Q8_0 => panel_loop::<R, false>(fmt, recs, a, |r| bytes(r)),
        Fmt::Q4K => q4k_loop::<R>(K4, recs, a, |s| nibbles(s)),
        Fmt::Q5K => q4k_loop::<R>(K5, recs, a, |s| fifth_bits(s)),
        Fmt::Q6K => q6k_loop::<R>(recs, a),
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load512(rec: &[u8], at: usize) -> __m512i {
    let b: &[u8; 64] = rec[at..at + 64].try_into().unwrap_or(&[0; 64]);
    // SAFETY: `b` is 64 readable bytes; loadu has no alignment need.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,f16c")]
fn load_f16x16(rec: &[u8], at: usize) -> __m512 {
    let b: &[u8; 32] = rec[at..at + 32].try_into().unwrap_or(&[0; 32]);
    // SAFETY: `b` is 32 readable bytes; loadu has no alignment need.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(b.as_ptr().cast()) })
}

/// The 8 weight vectors of a 4-bit record: low nibbles of the 4 stored vectors, then high.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn nibbles(rec: &[u8]) -> [__m512i; 8] {
    let m4 = _mm512_set1_epi8(0x0F);
    let v: [__m512i; 4] = core::array::from_fn(|j| load512(rec, 64 * j));
    let hi = |x: __m512i| _mm512_and_si512(_mm512_srli_epi16::<4>(x), m4);
    [
        _mm512_and_si512(v[0], m4),
        _mm512_and_si512(v[1], m4),
        _mm512_and_si512(v[2], m4),
        _mm512_and_si512(v[3], m4),
        hi(v[0]),
        hi(v[1]),
        hi(v[2]),
        hi(v[3]),
    ]
}

/// [`nibbles`] plus 16 where the record's masks hold a fifth bit.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn fifth_bits(rec: &[u8]) -> [__m512i; 8] {
    let mut w = nibbles(rec);
    let sixteen = _mm512_set1_epi8(16);
    for (j, x) in w.iter_mut().enumerate() {
        let at = 4 * 64 + 8 * j;
        let k = rec.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        *x = _mm512_mask_add_epi8(*x, k, *x, sixteen);
    }
    w
}

/// The 8 weight vectors of a Q8_0 record.
#[inline]
#[target_feature(enable = "avx512f")]
fn bytes(rec: &[u8]) -> [__m512i; 8] {
    core::array::from_fn(|j| load512(rec, 64 * j))
}

/// Activation quants `4j .. 4j + 4` of a block as one i32.
#[inline(always)]
fn dword(q: &[i8; 32], j: usize) -> i32 {
    i32::from_le_bytes([q[4 * j] as u8, q[4 * j + 1] as u8, q[4 * j + 2] as u8, q[4 * j + 3] as u8])
}

/// The loop over a panel's records: `R` activation rows share each unpacked record.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn panel_loop<const R: usize, const AFFINE: bool>(
    fmt: Fmt,
    recs: &[u8],
    a: &[ActRow<'_>; R],
    unpack: impl Fn(&[u8]) -> [__m512i; 8],
) -> [__m512; R] {
    let l = Layout { fmt, p: PANEL };
    let (sc, off) = (l.scales_at(), l.offset());
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, rec) in recs.chunks_exact(l.record()).enumerate() {
        // Decode streams the weights once: ask for them ahead of the hardware prefetcher
        // (measured +15–20 % tokens/s at one thread). Past the panel's end this reaches the
        // next panel, which comes next; a prefetch never faults.
        let ahead = rec.as_ptr().wrapping_add(PREFETCH_AHEAD);
        for line in 0..l.record().div_ceil(64) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
        }
        let w = unpack(rec);
        let d = load_f16x16(rec, sc);
        let m = if AFFINE { load_f16x16(rec, sc + 32) } else { _mm512_setzero_ps() };
        for (acc, a) in acc.iter_mut().zip(a) {
            let (blocks, _) = a.qs.as_chunks::<32>();
            let q = &blocks[b];
            // Two chains halve the vpdpbusd latency a single row waits on.
            let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for j in (0..8).step_by(2) {
                s0 = _mm512_dpbusd_epi32(s0, w[j], _mm512_set1_epi32(dword(q, j)));
                s1 = _mm512_dpbusd_epi32(s1, w[j + 1], _mm512_set1_epi32(dword(q, j + 1)));
            }
            let mut s = _mm512_add_epi32(s0, s1);
            if off != 0 {
                s = _mm512_sub_epi32(s, _mm512_set1_epi32(off * a.isum[b]));
            }
            let scale = _mm512_mul_ps(d, _mm512_set1_ps(a.d[b]));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, *acc);
            if AFFINE {
                *acc = _mm512_fmadd_ps(m, _mm512_set1_ps(a.s[b]), *acc);
            }
        }
    }
    acc
}

/// Prefetches `len` bytes `PREFETCH_AHEAD` past `at` (see [`panel_loop`]).
#[inline(always)]
fn prefetch_ahead(at: &[u8], len: usize) {
    let ahead = at.as_ptr().wrapping_add(PREFETCH_AHEAD);
    for line in 0..len.div_ceil(64) {
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast()) };
    }
}

/// 16 bytes of `rec` at `at`, widened to 16 i32 (signed or not).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_i8x16<const SIGNED: bool>(rec: &[u8], at: usize) -> __m512i {
    let b: &[u8; 16] = rec[at..at + 16].try_into().unwrap_or(&[0; 16]);
    // SAFETY: `b` is 16 readable bytes; loadu has no alignment need.
    let v = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
    if SIGNED { _mm512_cvtepi8_epi32(v) } else { _mm512_cvtepu8_epi32(v) }
}

/// Q4_K (and Q5_K, whose `unpack` adds the fifth bits): per sub-block an integer dot of 16 rows (`vpdpbusd`), times the rows' 6-bit scales
/// (`vpmulld`), summed over the superblock; the mins against the activations' per-32 sums with
/// `vpdpwssd`. Then, as ggml: `acc += d · d_a · Σ sc·dot − dmin · d_a · Σ min·bsum`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4k_loop<const R: usize>(
    l: Layout,
    recs: &[u8],
    a: &[ActRow<'_>; R],
    unpack: impl Fn(&[u8]) -> [__m512i; 8],
) -> [__m512; R] {
    let sub_len = l.k4_sub();
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, rec) in recs.chunks_exact(l.record()).enumerate() {
        let mut sumi = [_mm512_setzero_si512(); R];
        for s in 0..8 {
            let sub = &rec[sub_len * s..sub_len * (s + 1)];
            prefetch_ahead(sub, sub_len);
            let w = unpack(sub);
            let sc = load_i8x16::<false>(rec, l.k4_sc() + 16 * s);
            for (sumi, a) in sumi.iter_mut().zip(a) {
                let (blocks, _) = a.qs.as_chunks::<32>();
                let q = &blocks[8 * b + s];
                let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for j in (0..8).step_by(2) {
                    s0 = _mm512_dpbusd_epi32(s0, w[j], _mm512_set1_epi32(dword(q, j)));
                    s1 = _mm512_dpbusd_epi32(s1, w[j + 1], _mm512_set1_epi32(dword(q, j + 1)));
                }
                *sumi = _mm512_add_epi32(*sumi, _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        let d = load_f16x16(rec, l.k4_d());
        let dmin = load_f16x16(rec, l.k4_d() + 32);
        let mins: [__m512i; 4] = core::array::from_fn(|k| load512(rec, l.k4_mins() + 64 * k));
        for ((acc, sumi), a) in acc.iter_mut().zip(sumi).zip(a) {
            let bs = &a.bsums[16 * b..16 * b + 16];
            let pair = |g: usize| i32::from(bs[2 * g]) + i32::from(bs[2 * g + 1]);
            let mut m = _mm512_setzero_si512();
            for (k, &mv) in mins.iter().enumerate() {
                let p = (pair(2 * k) as u32 & 0xFFFF) | (pair(2 * k + 1) as u32) << 16;
                m = _mm512_dpwssd_epi32(m, mv, _mm512_set1_epi32(p as i32));
            }
            let da = _mm512_set1_ps(a.d[b]);
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, da), *acc);
            *acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, da), *acc);
        }
    }
    acc
}

/// The 8 weight vectors (unsigned 6-bit) of a Q6_K sub-record: nibbles plus 2 high bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn six_bits(sub: &[u8]) -> [__m512i; 8] {
    let mut w = nibbles(sub);
    let m = _mm512_set1_epi8(0x30);
    let h = [load512(sub, 256), load512(sub, 256 + 64)];
    for (j, x) in w.iter_mut().enumerate() {
        let hv = h[j / 4];
        // Bits `2 (j % 4) ..` of each byte moved to bits 4..6; 16-bit shifts are safe because
        // the mask drops whatever crossed from the neighbouring byte.
        let top = match j % 4 {
            0 => _mm512_slli_epi16::<4>(hv),
            1 => _mm512_slli_epi16::<2>(hv),
            2 => hv,
            _ => _mm512_srli_epi16::<2>(hv),
        };
        *x = _mm512_or_si512(*x, _mm512_and_si512(top, m));
    }
    w
}

/// Q6_K: per sub-record two 16-weight integer dots (`vpdpbusd` over unsigned `q`, corrected by
/// `32 · Σ a` from the activation sums), times the rows' signed scales, summed over the
/// superblock; `acc += d · d_a · Σ`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6k_loop<const R: usize>(recs: &[u8], a: &[ActRow<'_>; R]) -> [__m512; R] {
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, rec) in recs.chunks_exact(K6.record()).enumerate() {
        let mut sumi = [_mm512_setzero_si512(); R];
        for s in 0..8 {
            let sub = &rec[K6.k6_sub() * s..K6.k6_sub() * (s + 1)];
            prefetch_ahead(sub, K6.k6_sub());
            let w = six_bits(sub);
            let sc_lo = load_i8x16::<true>(rec, K6.k6_sc() + 32 * s);
            let sc_hi = load_i8x16::<true>(rec, K6.k6_sc() + 32 * s + 16);
            for (sumi, a) in sumi.iter_mut().zip(a) {
                let (blocks, _) = a.qs.as_chunks::<32>();
                let q = &blocks[8 * b + s];
                let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for j in 0..4 {
                    lo = _mm512_dpbusd_epi32(lo, w[j], _mm512_set1_epi32(dword(q, j)));
                    hi = _mm512_dpbusd_epi32(hi, w[j + 4], _mm512_set1_epi32(dword(q, j + 4)));
                }
                let bs = &a.bsums[16 * b + 2 * s..16 * b + 2 * s + 2];
                lo = _mm512_sub_epi32(lo, _mm512_set1_epi32(32 * i32::from(bs[0])));
                hi = _mm512_sub_epi32(hi, _mm512_set1_epi32(32 * i32::from(bs[1])));
                let t =
                    _mm512_add_epi32(_mm512_mullo_epi32(lo, sc_lo), _mm512_mullo_epi32(hi, sc_hi));
                *sumi = _mm512_add_epi32(*sumi, t);
            }
        }
        let d = load_f16x16(rec, K6.k6_d());
        for ((acc, sumi), a) in acc.iter_mut().zip(sumi).zip(a) {
            let scale = _mm512_mul_ps(d, _mm512_set1_ps(a.d[b]));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), scale, *acc);
        }
    }
    acc
}
