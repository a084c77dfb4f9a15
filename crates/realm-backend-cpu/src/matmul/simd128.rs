//! wasm32 simd128 integer dot products of one weight row (GGUF blocks) with up to four 8-bit
//! activation rows at once. Same integer sums per block as [`super::portable`]; only the
//! order of the f32 additions differs (tested against it).
//!
//! simd128 has no `u8 × i8` multiply-add (that is relaxed-simd, which not every browser
//! enables), so each weight block is widened to i16 once — and, for the k-quants, multiplied
//! by its group scale there — then every activation row is widened and multiplied in pairs
//! with `i32x4.dot_i16x8_s` (one `pmaddwd` on x86, `smull`+`addp` on arm64). Widening the
//! weights once for four rows is what makes prompt processing pay: the per-row work is two
//! loads, four widenings and four dots per 32 values.
//!
//! Bounds: activation quants lie in -127..=127 (`q8.rs`); widened weights are at most 128
//! (Q8_0), 945 (Q4_K: 15 · 63) or 4096 (Q6_K: 32 · 128) in magnitude, so a lane of one dot is
//! below 2^21 and a superblock's sum below 2^28: no i32 overflow.
//!
//! Every function is safe: the module is compiled only with `target_feature = "simd128"`,
//! so the intrinsics are always available; only the unaligned loads need `unsafe`.

use core::arch::wasm32::*;

use realm_quant::QK_K;
use realm_quant::blocks::KVALUES_IQ4NL;

use super::portable::{k4_min_sum, k4_scale_mins, q4k_parts, q6k_parts};
use super::q8::ActRow;
use crate::vec::wasm::hsum;

/// `out[i] = dot(weight row, activation row a[i])`.
pub(crate) type RowsDot = fn(&[u8], &[ActRow<'_>], &mut [f32]);

/// Defines the entry point `$name` over the row-generic kernel `$imp`: groups of four
/// activation rows, then single rows.
macro_rules! entry {
    ($name:ident => $imp:ident) => {
        pub(crate) fn $name(w: &[u8], a: &[ActRow<'_>], out: &mut [f32]) {
            let (a4, a1) = a.as_chunks::<4>();
            let (o4, o1) = out.as_chunks_mut::<4>();
            for (a, o) in a4.iter().zip(o4) {
                *o = $imp::<4>(w, a);
            }
            for (a, o) in a1.iter().zip(o1) {
                *o = $imp::<1>(w, &[*a])[0];
            }
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
entry!(dot_q6_k => q6_k);

/// An f16 scale widened exactly: shifting the 15 magnitude bits into f32 position and
/// multiplying by 2^112 rebiases the exponent (and normalizes subnormals); Inf/NaN get the
/// maximal exponent. Fewer operations than [`crate::vec::f16_bits_to_f32`], which must
/// vectorize as a loop and so avoids the multiply's float-to-int round trip.
#[inline(always)]
fn f16(b: [u8; 2]) -> f32 {
    let h = u32::from(u16::from_le_bytes(b));
    const POW2_112: f32 = f32::from_bits((127 + 112) << 23);
    let mag = (f32::from_bits((h & 0x7fff) << 13) * POW2_112).to_bits();
    let mag = if h & 0x7c00 == 0x7c00 { mag | 0x7f80_0000 } else { mag };
    f32::from_bits(mag | ((h & 0x8000) << 16))
}

#[inline(always)]
fn load16<T>(b: &[T; 16]) -> v128 {
    const { assert!(size_of::<T>() == 1) };
    // SAFETY: `b` is 16 readable bytes (`T` is one byte); v128_load has no alignment need.
    unsafe { v128_load(b.as_ptr().cast()) }
}

/// The two 16-byte halves of 32 bytes.
#[inline(always)]
fn halves<T>(b: &[T; 32]) -> (&[T; 16], &[T; 16]) {
    let (h, _) = b.as_chunks::<16>();
    (&h[0], &h[1])
}

/// 32 weights as i16 in element order: four i16x8 vectors.
type Wide = [v128; 4];

/// Widens 32 signed bytes (elements 0..16 in `lo`, 16..32 in `hi`) to i16.
#[inline(always)]
fn widen(lo: v128, hi: v128) -> Wide {
    [
        i16x8_extend_low_i8x16(lo),
        i16x8_extend_high_i8x16(lo),
        i16x8_extend_low_i8x16(hi),
        i16x8_extend_high_i8x16(hi),
    ]
}

/// Eight signed bytes widened to i16 as they are loaded (`v128.load8x8_s`: one `pmovsxbw`
/// from memory on x86, cheaper than a load and two widenings).
#[inline(always)]
fn load8x8(b: &[i8; 8]) -> v128 {
    // SAFETY: `b` is 8 readable bytes; the load has no alignment need.
    unsafe { i16x8_load_extend_i8x8(b.as_ptr()) }
}

/// 32 unpacked weights of one block, ready to be dotted with activation quants.
trait Block {
    /// `Σ w · y` over the 32 values, as four i32 lanes.
    fn dot32(&self, y: &[i8; 32]) -> v128;
}

impl Block for Wide {
    #[inline(always)]
    fn dot32(&self, y: &[i8; 32]) -> v128 {
        let w = self;
        let (y, _) = y.as_chunks::<8>();
        let s0 =
            i32x4_add(i32x4_dot_i16x8(w[0], load8x8(&y[0])), i32x4_dot_i16x8(w[1], load8x8(&y[1])));
        let s1 =
            i32x4_add(i32x4_dot_i16x8(w[2], load8x8(&y[2])), i32x4_dot_i16x8(w[3], load8x8(&y[3])));
        i32x4_add(s0, s1)
    }
}

/// 32 weights in 0..=127 as bytes (elements 0..16, 16..32), for relaxed SIMD's
/// `i32x4.relaxed_dot_i8x16_i7x16_add_s`: sixteen products per instruction with no widening
/// (`pmaddubsw` + `pmaddwd` on x86, `sdot` on arm64). Its result is the exact integer sum
/// when the second operand is non-negative, as these are (Q4_1's 0..=15, Q5_1's 0..=31).
#[cfg(target_feature = "relaxed-simd")]
struct Unsigned7([v128; 2]);

#[cfg(target_feature = "relaxed-simd")]
impl Block for Unsigned7 {
    #[inline(always)]
    fn dot32(&self, y: &[i8; 32]) -> v128 {
        let (lo, hi) = halves(y);
        let s = i32x4_relaxed_dot_i8x16_i7x16_add(load16(lo), self.0[0], i32x4_splat(0));
        i32x4_relaxed_dot_i8x16_i7x16_add(load16(hi), self.0[1], s)
    }
}

/// Low nibbles (elements 0..16) and high nibbles (16..32) of a packed half-block.
#[inline(always)]
fn nibbles(qs: &[u8; 16]) -> (v128, v128) {
    let v = load16(qs);
    let m4 = u8x16_splat(0x0F);
    // A 16-bit shift (one instruction on x86; 8-bit ones are emulated) and a mask.
    (v128_and(v, m4), v128_and(u16x8_shr(v, 4), m4))
}

/// Byte `j` (of 32) is `0xFF` where bit `j` of `qh` is set, else 0: `(elements 0..16, 16..32)`.
#[inline(always)]
fn bits_to_bytes(qh: [u8; 4]) -> (v128, v128) {
    let v = u32x4_splat(u32::from_le_bytes(qh));
    let lo = i8x16_shuffle::<0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1>(v, v);
    let hi = i8x16_shuffle::<2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3>(v, v);
    let bit = u64x2_splat(0x8040_2010_0804_0201);
    (i8x16_eq(v128_and(lo, bit), bit), i8x16_eq(v128_and(hi, bit), bit))
}

/// The quants of 32-block `i` of activation row `a`.
#[inline(always)]
fn act_block<'a>(a: &ActRow<'a>, i: usize) -> &'a [i8; 32] {
    let (blocks, _) = a.qs.as_chunks::<32>();
    &blocks[i]
}

/// The common loop of the 32-block formats: for each weight block, `unpack` gives its
/// widened values, its scale and its min; each activation row adds `d_w · d_a · Σ x·y` to a
/// vector accumulator and, for `AFFINE` formats (`w = d·q + m`, Q8_1 activations), `m_w · s_a`
/// to a scalar one.
#[inline(always)]
fn blocks32<const B: usize, const R: usize, const AFFINE: bool, W: Block>(
    w: &[u8],
    a: &[ActRow<'_>; R],
    unpack: impl Fn(&[u8; B]) -> (W, f32, f32),
) -> [f32; R] {
    if let Some(a4) = four(a) {
        let out = blocks32_x4::<B, AFFINE, W>(w, a4, unpack);
        return core::array::from_fn(|r| out[r % 4]);
    }
    let (wb, _) = w.as_chunks::<B>();
    let mut acc = [f32x4_splat(0.0); R];
    let mut mins = [0.0f32; R];
    for (i, b) in wb.iter().enumerate() {
        let (x, dw, mw) = unpack(b);
        for r in 0..R {
            let p = f32x4_convert_i32x4(x.dot32(act_block(&a[r], i)));
            acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_splat(dw * a[r].d[i]), p));
            if AFFINE {
                mins[r] += mw * a[r].s[i];
            }
        }
    }
    core::array::from_fn(|r| hsum(acc[r]) + mins[r])
}

/// `a` as exactly four rows, where `R` is 4.
#[inline(always)]
fn four<'a, 'b, const R: usize>(a: &'a [ActRow<'b>; R]) -> Option<&'a [ActRow<'b>; 4]> {
    a.as_slice().try_into().ok()
}

/// Lane `r` = the sum of the four lanes of `v[r]`.
#[inline(always)]
fn hsum4_i32(v: [v128; 4]) -> v128 {
    // [v0₀+v0₂, v1₀+v1₂, v0₁+v0₃, v1₁+v1₃], and the same for v2, v3.
    let t01 =
        i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(v[0], v[1]), i32x4_shuffle::<2, 6, 3, 7>(v[0], v[1]));
    let t23 =
        i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(v[2], v[3]), i32x4_shuffle::<2, 6, 3, 7>(v[2], v[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(t01, t23), i32x4_shuffle::<2, 3, 6, 7>(t01, t23))
}

/// [`blocks32`] for four rows with one f32x4 accumulator, lane `r` for row `r`: per block the
/// four integer sums are reduced together and scaled by one vector of `d_w · d_a`.
#[inline(always)]
fn blocks32_x4<const B: usize, const AFFINE: bool, W: Block>(
    w: &[u8],
    a: &[ActRow<'_>; 4],
    unpack: impl Fn(&[u8; B]) -> (W, f32, f32),
) -> [f32; 4] {
    let (wb, _) = w.as_chunks::<B>();
    let mut acc = f32x4_splat(0.0);
    for (i, b) in wb.iter().enumerate() {
        let (x, dw, mw) = unpack(b);
        let s = [
            x.dot32(act_block(&a[0], i)),
            x.dot32(act_block(&a[1], i)),
            x.dot32(act_block(&a[2], i)),
            x.dot32(act_block(&a[3], i)),
        ];
        let p = f32x4_convert_i32x4(hsum4_i32(s));
        let da = f32x4(a[0].d[i], a[1].d[i], a[2].d[i], a[3].d[i]);
        acc = f32x4_add(acc, f32x4_mul(f32x4_mul(da, f32x4_splat(dw)), p));
        if AFFINE {
            let sa = f32x4(a[0].s[i], a[1].s[i], a[2].s[i], a[3].s[i]);
            acc = f32x4_add(acc, f32x4_mul(sa, f32x4_splat(mw)));
        }
    }
    [
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ]
}

#[inline(always)]
fn q4_0<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<18, R, false, _>(w, a, |b| {
        let [d0, d1, qs @ ..] = b;
        let (lo, hi) = nibbles(qs);
        let k8 = i8x16_splat(8);
        (widen(i8x16_sub(lo, k8), i8x16_sub(hi, k8)), f16([*d0, *d1]), 0.0)
    })
}

/// The unsigned formats' 32 weights (bytes in 0..=31) in the representation this build dots.
#[inline(always)]
fn unsigned(lo: v128, hi: v128) -> impl Block {
    #[cfg(target_feature = "relaxed-simd")]
    return Unsigned7([lo, hi]);
    #[cfg(not(target_feature = "relaxed-simd"))]
    widen(lo, hi)
}

#[inline(always)]
fn q4_1<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<20, R, true, _>(w, a, |b| {
        let [d0, d1, m0, m1, qs @ ..] = b;
        let (lo, hi) = nibbles(qs);
        (unsigned(lo, hi), f16([*d0, *d1]), f16([*m0, *m1]))
    })
}

#[inline(always)]
fn q5_0<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<22, R, false, _>(w, a, |b| {
        let [d0, d1, h0, h1, h2, h3, qs @ ..] = b;
        let (lo, hi) = nibbles(qs);
        let (b_lo, b_hi) = bits_to_bytes([*h0, *h1, *h2, *h3]);
        // (q | bit4) - 16 as a signed byte: where bit 4 is clear, set the top nibble.
        let top = i8x16_splat(-16);
        let x = widen(v128_or(lo, v128_andnot(top, b_lo)), v128_or(hi, v128_andnot(top, b_hi)));
        (x, f16([*d0, *d1]), 0.0)
    })
}

#[inline(always)]
fn q5_1<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<24, R, true, _>(w, a, |b| {
        let [d0, d1, m0, m1, h0, h1, h2, h3, qs @ ..] = b;
        let (lo, hi) = nibbles(qs);
        let (b_lo, b_hi) = bits_to_bytes([*h0, *h1, *h2, *h3]);
        let bit = i8x16_splat(0x10);
        let x = unsigned(v128_or(lo, v128_and(b_lo, bit)), v128_or(hi, v128_and(b_hi, bit)));
        (x, f16([*d0, *d1]), f16([*m0, *m1]))
    })
}

#[inline(always)]
fn q8_0<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    blocks32::<34, R, false, _>(w, a, |b| {
        let [d0, d1, qs @ ..] = b;
        let (lo, hi) = halves(qs);
        (widen(load16(lo), load16(hi)), f16([*d0, *d1]), 0.0)
    })
}

#[inline(always)]
fn iq4_nl<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let table = load16(&KVALUES_IQ4NL.map(|v| v as u8));
    blocks32::<18, R, false, _>(w, a, |b| {
        let [d0, d1, qs @ ..] = b;
        let (lo, hi) = nibbles(qs);
        (widen(i8x16_swizzle(table, lo), i8x16_swizzle(table, hi)), f16([*d0, *d1]), 0.0)
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

/// `w` times `s` in every lane (i16, no overflow: see the module bounds).
#[inline(always)]
fn scaled(w: Wide, s: i16) -> Wide {
    let s = i16x8_splat(s);
    w.map(|v| i16x8_mul(v, s))
}

#[inline(always)]
fn q4_k<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let (wb, _) = w.as_chunks::<144>();
    let mut acc = [f32x4_splat(0.0); R];
    let mut mins = [0.0f32; R];
    for (i, b) in wb.iter().enumerate() {
        let (d, dmin, scales, qs) = q4k_parts(b);
        let (sc, mn) = k4_scale_mins(scales);
        let (qs, _) = qs.as_chunks::<32>();
        let mut sumi = [i32x4_splat(0); R];
        for (j, q) in qs.iter().enumerate() {
            // Low nibbles of the 32 bytes are group 2j, high nibbles group 2j + 1.
            let (q0, q1) = halves(q);
            let ((l0, h0), (l1, h1)) = (nibbles(q0), nibbles(q1));
            let lo = scaled(widen(l0, l1), i16::from(sc[2 * j]));
            let hi = scaled(widen(h0, h1), i16::from(sc[2 * j + 1]));
            for r in 0..R {
                let (qa, _, _) = act_k(&a[r], i);
                let s = i32x4_add(lo.dot32(act32(qa, 2 * j)), hi.dot32(act32(qa, 2 * j + 1)));
                sumi[r] = i32x4_add(sumi[r], s);
            }
        }
        for r in 0..R {
            let (_, da, bsums) = act_k(&a[r], i);
            let p = f32x4_convert_i32x4(sumi[r]);
            acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_splat(d * da), p));
            mins[r] -= dmin * da * k4_min_sum(&mn, bsums) as f32;
        }
    }
    core::array::from_fn(|r| hsum(acc[r]) + mins[r])
}

#[inline(always)]
fn q6_k<const R: usize>(w: &[u8], a: &[ActRow<'_>; R]) -> [f32; R] {
    let (wb, _) = w.as_chunks::<210>();
    let mut acc = [f32x4_splat(0.0); R];
    let m4 = u8x16_splat(0x0F);
    let m2 = u8x16_splat(0x30);
    let k32 = i8x16_splat(32);
    for (i, b) in wb.iter().enumerate() {
        let (ql, qh, sc, d) = q6k_parts(b);
        let (ql, _) = ql.as_chunks::<32>();
        let (qh, _) = qh.as_chunks::<32>();
        let mut sumi = [i32x4_splat(0); R];
        for h in 0..2 {
            for k in 0..4 {
                // Quarter k of this half: low nibbles of ql[2h] (k = 0) or ql[2h + 1] (k = 1),
                // then their high nibbles (k = 2, 3); bits 2k, 2k + 1 of qh[h] on top; minus
                // 32. Its first 16 values have scale sc[g], the rest sc[g + 1].
                let g = 8 * h + 2 * k;
                let q16 = |p: usize| {
                    let (l, hb) = (halves(&ql[2 * h + (k & 1)]), halves(&qh[h]));
                    let (l, hb) = if p == 0 { (l.0, hb.0) } else { (l.1, hb.1) };
                    let (l, hb) = (load16(l), load16(hb));
                    let low = if k < 2 { v128_and(l, m4) } else { v128_and(u16x8_shr(l, 4), m4) };
                    // Bits 2k, 2k + 1 moved to bits 4, 5 (16-bit shifts; the mask drops what
                    // crosses a byte).
                    let top = match k {
                        0 => i16x8_shl(hb, 4),
                        1 => i16x8_shl(hb, 2),
                        2 => hb,
                        _ => u16x8_shr(hb, 2),
                    };
                    i8x16_sub(v128_or(low, v128_and(top, m2)), k32)
                };
                let (x0, x1) = (q16(0), q16(1));
                let (s0, s1) = (i16x8_splat(i16::from(sc[g])), i16x8_splat(i16::from(sc[g + 1])));
                let x = [
                    i16x8_mul(i16x8_extend_low_i8x16(x0), s0),
                    i16x8_mul(i16x8_extend_high_i8x16(x0), s0),
                    i16x8_mul(i16x8_extend_low_i8x16(x1), s1),
                    i16x8_mul(i16x8_extend_high_i8x16(x1), s1),
                ];
                for r in 0..R {
                    let (qa, _, _) = act_k(&a[r], i);
                    sumi[r] = i32x4_add(sumi[r], x.dot32(act32(qa, 4 * h + k)));
                }
            }
        }
        for r in 0..R {
            let (_, da, _) = act_k(&a[r], i);
            let p = f32x4_convert_i32x4(sumi[r]);
            acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_splat(d * da), p));
        }
    }
    core::array::from_fn(|r| hsum(acc[r]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn f16_scales_widen_exactly() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = super::f16(h.to_le_bytes());
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{h:#06x}");
        }
    }
}
