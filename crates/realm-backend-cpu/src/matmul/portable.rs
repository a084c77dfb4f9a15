//! Integer dot products of one weight row (GGUF blocks) with one 8-bit activation row, in
//! plain Rust: the fallback where no SIMD kernel exists, and the exact reference the SIMD
//! kernels are tested against (they compute the same integer sums per block and differ only
//! in the order of the final f32 additions).
//!
//! The algebra per format follows llama.cpp `ggml/src/ggml-cpu/quants.c`
//! `ggml_vec_dot_*_generic` (commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`): per block,
//! `d_w · d_a · Σ q_w q_a`, plus `m_w · s_a` for formats with a min (Q8_1 carries
//! `s_a = d_a Σ q_a`), and for k-quants the group mins against the Q8_K per-16 sums.

// Index arithmetic mirrors the block layouts of realm-quant's reference dequantizers.
#![allow(clippy::needless_range_loop)]

use realm_quant::QK_K;
use realm_quant::blocks::{BlockIq4Xs, BlockQ2K, BlockQ3K, KVALUES_IQ4NL, scale_min_k4};

use super::q8::ActRow;

fn f16(b: [u8; 2]) -> f32 {
    crate::vec::f16_bits_to_f32(u16::from_le_bytes(b))
}

/// `Σ x[i] · y[i]` over 32 bytes: written to vectorize (widen to i16, multiply-add pairs).
#[inline(always)]
fn dot32(x: &[i8; 32], y: &[i8; 32]) -> i32 {
    let mut s = 0i32;
    for i in 0..32 {
        s += i32::from(x[i]) * i32::from(y[i]);
    }
    s
}

/// The 32 nibbles of a packed half-block in element order (low nibbles first), plus `add`.
#[inline(always)]
fn unpack_nibbles(qs: &[u8; 16], add: [i8; 32]) -> [i8; 32] {
    let mut x = [0i8; 32];
    for j in 0..16 {
        x[j] = (qs[j] & 0x0F) as i8 + add[j];
        x[j + 16] = (qs[j] >> 4) as i8 + add[j + 16];
    }
    x
}

/// Bit 4 of each of the 32 values of a Q5 block, as `0` or `16`.
#[inline(always)]
fn fifth_bits(qh: [u8; 4]) -> [i8; 32] {
    let qh = u32::from_le_bytes(qh);
    core::array::from_fn(|j| (((qh >> j) & 1) << 4) as i8)
}

/// Iterates `(weight block, activation quants, activation scale, activation sum)`.
fn blocks32<'a, const B: usize>(
    w: &'a [u8],
    a: ActRow<'a>,
) -> impl Iterator<Item = (&'a [u8; B], &'a [i8; 32], f32, f32)> {
    let (wb, _) = w.as_chunks::<B>();
    let (qa, _) = a.qs.as_chunks::<32>();
    let s = a.s.iter().copied().chain(std::iter::repeat(0.0));
    wb.iter().zip(qa).zip(a.d.iter().copied()).zip(s).map(|(((w, q), d), s)| (w, q, d, s))
}

pub(crate) fn dot_q4_0(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks32::<18>(w, a) {
        let [d0, d1, qs @ ..] = b;
        let x = unpack_nibbles(qs, [-8; 32]);
        acc += f16([*d0, *d1]) * da * dot32(&x, qa) as f32;
    }
    acc
}

pub(crate) fn dot_q4_1(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, sa) in blocks32::<20>(w, a) {
        let [d0, d1, m0, m1, qs @ ..] = b;
        let x = unpack_nibbles(qs, [0; 32]);
        acc += f16([*d0, *d1]) * da * dot32(&x, qa) as f32;
        acc += f16([*m0, *m1]) * sa;
    }
    acc
}

pub(crate) fn dot_q5_0(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks32::<22>(w, a) {
        let [d0, d1, h0, h1, h2, h3, qs @ ..] = b;
        let add = fifth_bits([*h0, *h1, *h2, *h3]).map(|h| h - 16);
        let x = unpack_nibbles(qs, add);
        acc += f16([*d0, *d1]) * da * dot32(&x, qa) as f32;
    }
    acc
}

pub(crate) fn dot_q5_1(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, sa) in blocks32::<24>(w, a) {
        let [d0, d1, m0, m1, h0, h1, h2, h3, qs @ ..] = b;
        let x = unpack_nibbles(qs, fifth_bits([*h0, *h1, *h2, *h3]));
        acc += f16([*d0, *d1]) * da * dot32(&x, qa) as f32;
        acc += f16([*m0, *m1]) * sa;
    }
    acc
}

pub(crate) fn dot_q8_0(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks32::<34>(w, a) {
        let [d0, d1, qs @ ..] = b;
        let x = qs.map(|q| q as i8);
        acc += f16([*d0, *d1]) * da * dot32(&x, qa) as f32;
    }
    acc
}

pub(crate) fn dot_iq4_nl(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks32::<18>(w, a) {
        let [d0, d1, qs @ ..] = b;
        let mut x = [0i8; 32];
        for j in 0..16 {
            x[j] = KVALUES_IQ4NL[usize::from(qs[j] & 0x0F)];
            x[j + 16] = KVALUES_IQ4NL[usize::from(qs[j] >> 4)];
        }
        acc += f16([*d0, *d1]) * da * dot32(&x, qa) as f32;
    }
    acc
}

/// Iterates `(weight block, activation quants, activation scale, activation bsums)`.
fn blocks256<'a, const B: usize>(
    w: &'a [u8],
    a: ActRow<'a>,
) -> impl Iterator<Item = (&'a [u8; B], &'a [i8; QK_K], f32, &'a [i16; 16])> {
    let (wb, _) = w.as_chunks::<B>();
    let (qa, _) = a.qs.as_chunks::<QK_K>();
    let (bs, _) = a.bsums.as_chunks::<16>();
    wb.iter().zip(qa).zip(a.d.iter().copied()).zip(bs).map(|(((w, q), d), s)| (w, q, d, s))
}

/// 32 activation quants starting at `32 · i` of a Q8_K block.
#[inline(always)]
fn act32(qa: &[i8; QK_K], i: usize) -> &[i8; 32] {
    let (chunks, _) = qa.as_chunks::<32>();
    &chunks[i]
}

/// The 8 (scale, min) pairs of a Q4_K/Q5_K block.
#[inline(always)]
pub(crate) fn k4_scale_mins(scales: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for g in 0..8 {
        (sc[g], mn[g]) = scale_min_k4(g, scales);
    }
    (sc, mn)
}

/// `Σ_g min_g · Σ_{32 values of group g} q_a`, from the Q8_K per-16 sums.
#[inline(always)]
pub(crate) fn k4_min_sum(mins: &[u8; 8], bsums: &[i16; 16]) -> i32 {
    let mut summ = 0i32;
    for g in 0..8 {
        summ += i32::from(mins[g]) * (i32::from(bsums[2 * g]) + i32::from(bsums[2 * g + 1]));
    }
    summ
}

/// The 8 group scales of a Q4_K/Q5_K block and its min term against `bsums`.
#[inline(always)]
fn k4_scales(scales: &[u8; 12], bsums: &[i16; 16]) -> ([u8; 8], i32) {
    let (sc, mn) = k4_scale_mins(scales);
    (sc, k4_min_sum(&mn, bsums))
}

/// Splits a Q4_K block: `(d, dmin, scales, qs)`.
#[inline(always)]
pub(crate) fn q4k_parts(b: &[u8; 144]) -> (f32, f32, &[u8; 12], &[u8; 128]) {
    let [d0, d1, m0, m1, rest @ ..] = b;
    let (scales, qs) = rest.split_first_chunk::<12>().map_or((&[0u8; 12], rest.as_slice()), |p| p);
    let qs: &[u8; 128] = qs.first_chunk::<128>().unwrap_or(&[0u8; 128]);
    (f16([*d0, *d1]), f16([*m0, *m1]), scales, qs)
}

pub(crate) fn dot_q4_k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, bsums) in blocks256::<144>(w, a) {
        let (d, dmin, scales, qs) = q4k_parts(b);
        let (sc, summ) = k4_scales(scales, bsums);
        let (qs, _) = qs.as_chunks::<32>();
        let mut sumi = 0i32;
        for j in 0..4 {
            let lo = qs[j].map(|q| (q & 0x0F) as i8);
            let hi = qs[j].map(|q| (q >> 4) as i8);
            sumi += i32::from(sc[2 * j]) * dot32(&lo, act32(qa, 2 * j));
            sumi += i32::from(sc[2 * j + 1]) * dot32(&hi, act32(qa, 2 * j + 1));
        }
        acc += d * da * sumi as f32 - dmin * da * summ as f32;
    }
    acc
}

/// Splits a Q5_K block: `(d, dmin, scales, qh, qs)`.
#[inline(always)]
pub(crate) fn q5k_parts(b: &[u8; 176]) -> (f32, f32, &[u8; 12], &[u8; 32], &[u8; 128]) {
    let [d0, d1, m0, m1, rest @ ..] = b;
    let (scales, rest) =
        rest.split_first_chunk::<12>().map_or((&[0u8; 12], rest.as_slice()), |p| p);
    let (qh, qs) = rest.split_first_chunk::<32>().map_or((&[0u8; 32], rest), |p| p);
    let qs: &[u8; 128] = qs.first_chunk::<128>().unwrap_or(&[0u8; 128]);
    (f16([*d0, *d1]), f16([*m0, *m1]), scales, qh, qs)
}

pub(crate) fn dot_q5_k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, bsums) in blocks256::<176>(w, a) {
        let (d, dmin, scales, qh, qs) = q5k_parts(b);
        let (sc, summ) = k4_scales(scales, bsums);
        let (qs, _) = qs.as_chunks::<32>();
        let mut sumi = 0i32;
        for j in 0..4 {
            let mut lo = [0i8; 32];
            let mut hi = [0i8; 32];
            for l in 0..32 {
                lo[l] = ((qs[j][l] & 0x0F) | (((qh[l] >> (2 * j)) & 1) << 4)) as i8;
                hi[l] = ((qs[j][l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) as i8;
            }
            sumi += i32::from(sc[2 * j]) * dot32(&lo, act32(qa, 2 * j));
            sumi += i32::from(sc[2 * j + 1]) * dot32(&hi, act32(qa, 2 * j + 1));
        }
        acc += d * da * sumi as f32 - dmin * da * summ as f32;
    }
    acc
}

/// Splits a Q6_K block: `(ql, qh, scales, d)`.
#[inline(always)]
pub(crate) fn q6k_parts(b: &[u8; 210]) -> (&[u8; 128], &[u8; 64], [i8; 16], f32) {
    let (ql, rest) = b.split_first_chunk::<128>().map_or((&[0u8; 128], b.as_slice()), |p| p);
    let (qh, rest) = rest.split_first_chunk::<64>().map_or((&[0u8; 64], rest), |p| p);
    let (sc, rest) = rest.split_first_chunk::<16>().map_or((&[0u8; 16], rest), |p| p);
    let d = rest.first_chunk::<2>().map_or(0.0, |d| f16(*d));
    (ql, qh, sc.map(|s| s as i8), d)
}

pub(crate) fn dot_q6_k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks256::<210>(w, a) {
        let (ql, qh, sc, d) = q6k_parts(b);
        let (ql, _) = ql.as_chunks::<32>();
        let (qh, _) = qh.as_chunks::<32>();
        let mut sumi = 0i32;
        for h in 0..2 {
            // The four 32-value quarters of this half: low nibbles of ql[2h], of ql[2h + 1],
            // then their high nibbles, each with 2 bits of qh[h] on top, minus 32.
            let (l0, l1, hb) = (&ql[2 * h], &ql[2 * h + 1], &qh[h]);
            let mut q = [[0i8; 32]; 4];
            for l in 0..32 {
                q[0][l] = ((l0[l] & 0x0F) | ((hb[l] & 3) << 4)) as i8 - 32;
                q[1][l] = ((l1[l] & 0x0F) | (((hb[l] >> 2) & 3) << 4)) as i8 - 32;
                q[2][l] = ((l0[l] >> 4) | (((hb[l] >> 4) & 3) << 4)) as i8 - 32;
                q[3][l] = ((l1[l] >> 4) | (((hb[l] >> 6) & 3) << 4)) as i8 - 32;
            }
            for (k, qk) in q.iter().enumerate() {
                let y = act32(qa, 4 * h + k);
                let g = 8 * h + 2 * k;
                let (lo, hi) = (dot16(&qk[..16], &y[..16]), dot16(&qk[16..], &y[16..]));
                sumi += i32::from(sc[g]) * lo + i32::from(sc[g + 1]) * hi;
            }
        }
        acc += d * da * sumi as f32;
    }
    acc
}

/// `Σ x[i] · y[i]` over 16 bytes.
#[inline(always)]
fn dot16(x: &[i8], y: &[i8]) -> i32 {
    let mut s = 0i32;
    for (&a, &b) in x.iter().zip(y).take(16) {
        s += i32::from(a) * i32::from(b);
    }
    s
}

/// `d_w · d_a · Σ_g sc_g Σ q_w q_a − dmin_w · d_a · Σ_g min_g · bsum_g` with 4-bit group scales
/// and mins (`ggml_vec_dot_q2_K_q8_K_generic`).
pub(crate) fn dot_q2_k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, bsums) in blocks256::<84>(w, a) {
        let Ok(b) = bytemuck::try_from_bytes::<BlockQ2K>(b) else { continue };
        let mut q = [0i8; QK_K];
        for (e, v) in q.iter_mut().enumerate() {
            let (h, plane, l) = (e / 128, (e % 128) / 32, e % 32);
            *v = ((b.qs[h * 32 + l] >> (2 * plane)) & 3) as i8;
        }
        let (mut isum, mut summs) = (0i32, 0i32);
        for g in 0..16 {
            let sc = b.scales[g];
            isum += i32::from(sc & 0x0F) * dot16(&q[16 * g..], &qa[16 * g..]);
            summs += i32::from(sc >> 4) * i32::from(bsums[g]);
        }
        acc += b.d.to_f32() * da * isum as f32 - b.dmin.to_f32() * da * summs as f32;
    }
    acc
}

/// `d_w · d_a · Σ_g (sc_g − 32) Σ q_w q_a`, `q` in −4..4 (`ggml_vec_dot_q3_K_q8_K_generic`).
pub(crate) fn dot_q3_k(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks256::<110>(w, a) {
        let Ok(b) = bytemuck::try_from_bytes::<BlockQ3K>(b) else { continue };
        let scales = b.group_scales();
        let mut q = [0i8; QK_K];
        for (e, v) in q.iter_mut().enumerate() {
            let (h, plane, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = ((b.qs[h * 32 + l] >> (2 * plane)) & 3) as i8;
            // A clear high bit means "subtract 4".
            *v = low - if (b.hmask[l] >> (e / 32)) & 1 == 0 { 4 } else { 0 };
        }
        let mut isum = 0i32;
        for g in 0..16 {
            isum += i32::from(scales[g]) * dot16(&q[16 * g..], &qa[16 * g..]);
        }
        acc += b.d.to_f32() * da * isum as f32;
    }
    acc
}

/// `d_w · d_a · Σ_g (ls_g − 32) Σ kvalue(q_w) q_a` over 8 groups of 32
/// (`ggml_vec_dot_iq4_xs_q8_K_generic`).
pub(crate) fn dot_iq4_xs(w: &[u8], a: ActRow<'_>) -> f32 {
    let mut acc = 0.0f32;
    for (b, qa, da, _) in blocks256::<136>(w, a) {
        let Ok(b) = bytemuck::try_from_bytes::<BlockIq4Xs>(b) else { continue };
        let scales_h = b.scales_h.get();
        let mut isum = 0i32;
        for (g, qs) in b.qs.chunks_exact(16).enumerate() {
            let lo = (b.scales_l[g / 2] >> (4 * (g % 2))) & 0x0F;
            let hi = ((scales_h >> (2 * g)) & 3) as u8;
            let mut x = [0i8; 32];
            for j in 0..16 {
                x[j] = KVALUES_IQ4NL[usize::from(qs[j] & 0x0F)];
                x[j + 16] = KVALUES_IQ4NL[usize::from(qs[j] >> 4)];
            }
            isum += (i32::from(lo | (hi << 4)) - 32) * dot32(&x, act32(qa, g));
        }
        acc += b.d.to_f32() * da * isum as f32;
    }
    acc
}
