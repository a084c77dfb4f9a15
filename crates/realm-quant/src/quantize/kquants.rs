//! Reference quantizers for the k-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//!
//! Written from llama.cpp `ggml/src/ggml-quants.c` `quantize_row_q2_K_ref` ..
//! `quantize_row_q8_K_ref` (commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`), the
//! variants without an importance matrix. Each finds per-group scales (and mins) with the
//! helpers in [`super::helpers`], quantizes those scales against one f16 super-block scale,
//! then requantizes every element against the group scale that will actually be decoded.

use bytemuck::Zeroable;

use super::helpers::{
    GROUP_MAX_EPS, Qkx2, make_q3_quants, make_qkx2_quants, make_qx_quants, nearest_int,
};
use crate::blocks::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, K_SCALE_SIZE, LeF16, LeF32, LeI16,
    scale_min_k4,
};
use crate::types::QK_K;

/// Packs 2-bit levels: per 128-element half, element `32 * s + l` goes to bits `2s..2s+2`
/// of byte `l` of that half's 32 bytes.
fn pack2(l: &[u8; QK_K]) -> [u8; QK_K / 4] {
    let mut qs = [0u8; QK_K / 4];
    for (h, out) in qs.chunks_exact_mut(32).enumerate() {
        let base = h * 128;
        for (j, o) in out.iter_mut().enumerate() {
            let at = |s: usize| (l[base + 32 * s + j] & 3) << (2 * s);
            *o = at(0) | at(1) | at(2) | at(3);
        }
    }
    qs
}

/// Packs 4-bit levels: per 64-element chunk, the first 32 in the low nibbles of 32 bytes,
/// the next 32 in the high nibbles.
fn pack4(l: &[u8; QK_K]) -> [u8; QK_K / 2] {
    let mut qs = [0u8; QK_K / 2];
    for (c, out) in qs.chunks_exact_mut(32).enumerate() {
        for (j, o) in out.iter_mut().enumerate() {
            *o = (l[64 * c + j] & 0x0F) | ((l[64 * c + j + 32] & 0x0F) << 4);
        }
    }
    qs
}

/// Packs 8 six-bit (scale, min) pairs the way `get_scale_min_k4` unpacks them.
fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut s = [0u8; K_SCALE_SIZE];
    for j in 0..8 {
        let (sc, m) = (ls[j].min(63), lm[j].min(63));
        if j < 4 {
            s[j] = sc;
            s[j + 4] = m;
        } else {
            s[j + 4] = (sc & 0x0F) | ((m & 0x0F) << 4);
            s[j - 4] |= (sc >> 4) << 6;
            s[j] |= (m >> 4) << 6;
        }
    }
    s
}

pub(super) fn q2_k(x: &[f32; QK_K]) -> BlockQ2K {
    const Q4SCALE: f32 = 15.0;
    let params = Qkx2 { nmax: 3, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: true };
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let (mut scales, mut mins) = ([0.0f32; 16], [0.0f32; 16]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    let groups = x.as_chunks::<16>().0.iter().zip(l.as_chunks_mut::<16>().0);
    for (j, (xg, lg)) in groups.enumerate() {
        let weights = xg.map(f32::abs);
        let (scale, min) = make_qkx2_quants(xg, &weights, lg, &mut laux, params);
        scales[j] = scale;
        mins[j] = min;
        max_scale = if scale > max_scale { scale } else { max_scale };
        max_min = if min > max_min { min } else { max_min };
    }

    let mut b = BlockQ2K::zeroed();
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for (s, &sc) in b.scales.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * sc) as u8;
        }
        b.d = LeF16::from_f32(max_scale / Q4SCALE);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for (s, &m) in b.scales.iter_mut().zip(&mins) {
            *s |= (nearest_int(iscale * m) << 4) as u8;
        }
        b.dmin = LeF16::from_f32(max_min / Q4SCALE);
    }

    let (d_all, m_all) = (b.d.to_f32(), b.dmin.to_f32());
    let groups = x.as_chunks::<16>().0.iter().zip(l.as_chunks_mut::<16>().0);
    for ((xg, lg), &sc) in groups.zip(&b.scales) {
        let d = d_all * f32::from(sc & 0x0F);
        if d == 0.0 {
            continue;
        }
        let dm = m_all * f32::from(sc >> 4);
        for (li, &xi) in lg.iter_mut().zip(xg) {
            *li = nearest_int((xi + dm) / d).clamp(0, 3) as u8;
        }
    }
    b.qs = pack2(&l);
    b
}

pub(super) fn q3_k(x: &[f32; QK_K]) -> BlockQ3K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
    let groups = x.as_chunks::<16>().0.iter().zip(l.as_chunks_mut::<16>().0);
    for (j, (xg, lg)) in groups.enumerate() {
        scales[j] = make_q3_quants(xg, 4, lg, true);
        let scale = scales[j].abs();
        if scale > amax {
            amax = scale;
            max_scale = scales[j];
        }
    }

    let mut b = BlockQ3K::zeroed();
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for (j, &sc) in scales.iter().enumerate() {
            // C stores nearest_int into an int8_t before clamping: keep the wrap.
            let lv = (i32::from(nearest_int(iscale * sc) as i8).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                b.scales[j] = lv & 0x0F;
            } else {
                b.scales[j - 8] |= (lv & 0x0F) << 4;
            }
            b.scales[j % 4 + 8] |= (lv >> 4) << (2 * (j / 4));
        }
        b.d = LeF16::from_f32(1.0 / iscale);
    }

    let d_all = b.d.to_f32();
    let group_scales = b.group_scales();
    let groups = x.as_chunks::<16>().0.iter().zip(l.as_chunks_mut::<16>().0);
    for ((xg, lg), &sc) in groups.zip(&group_scales) {
        let d = d_all * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        for (li, &xi) in lg.iter_mut().zip(xg) {
            *li = (nearest_int(xi / d).clamp(-4, 3) + 4) as i8;
        }
    }

    // Bit 2 of element j goes to bit j / 32 of hmask[j % 32]; the low 2 bits stay.
    let mut low = [0u8; QK_K];
    for (j, (&lj, lo)) in l.iter().zip(low.iter_mut()).enumerate() {
        let v = lj as u8;
        if v > 3 {
            b.hmask[j % 32] |= 1 << (j / 32);
        }
        *lo = v & 3;
    }
    b.qs = pack2(&low);
    b
}

/// Shared body of Q4_K and Q5_K: group (scale, min) search, the packed 6-bit scales, the
/// two f16 super-scales and the final levels in `0..=nmax`.
fn q45_k(x: &[f32; QK_K], params: Qkx2) -> (LeF16, LeF16, [u8; K_SCALE_SIZE], [u8; QK_K]) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    let groups = x.as_chunks::<32>().0.iter().zip(l.as_chunks_mut::<32>().0);
    for (j, (xg, lg)) in groups.enumerate() {
        let mut sum_x2 = 0.0f32;
        for &v in xg {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights = xg.map(|v| av_x + v.abs());
        let (scale, min) = make_qkx2_quants(xg, &weights, lg, &mut laux, params);
        scales[j] = scale;
        mins[j] = min;
        max_scale = if scale > max_scale { scale } else { max_scale };
        max_min = if min > max_min { min } else { max_min };
    }

    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let ls: [u8; 8] = core::array::from_fn(|j| nearest_int(inv_scale * scales[j]) as u8);
    let lm: [u8; 8] = core::array::from_fn(|j| nearest_int(inv_min * mins[j]) as u8);
    let packed = pack_scale_min_k4(&ls, &lm);
    let d = LeF16::from_f32(max_scale / 63.0);
    let dmin = LeF16::from_f32(max_min / 63.0);

    let groups = x.as_chunks::<32>().0.iter().zip(l.as_chunks_mut::<32>().0);
    for (j, (xg, lg)) in groups.enumerate() {
        let (sc, m) = scale_min_k4(j, &packed);
        let dl = d.to_f32() * f32::from(sc);
        if dl == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * f32::from(m);
        for (li, &xi) in lg.iter_mut().zip(xg) {
            *li = nearest_int((xi + dm) / dl).clamp(0, params.nmax) as u8;
        }
    }
    (d, dmin, packed, l)
}

pub(super) fn q4_k(x: &[f32; QK_K]) -> BlockQ4K {
    let params = Qkx2 { nmax: 15, rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false };
    let (d, dmin, scales, l) = q45_k(x, params);
    BlockQ4K { d, dmin, scales, qs: pack4(&l) }
}

pub(super) fn q5_k(x: &[f32; QK_K]) -> BlockQ5K {
    let params = Qkx2 { nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15, use_mad: false };
    let (d, dmin, scales, mut l) = q45_k(x, params);
    // Bit 4 of element 32 * g + j goes to bit g of qh[j].
    let mut qh = [0u8; QK_K / 8];
    for (e, v) in l.iter_mut().enumerate() {
        if *v > 15 {
            *v -= 16;
            qh[e % 32] |= 1 << (e / 32);
        }
    }
    BlockQ5K { d, dmin, scales, qh, qs: pack4(&l) }
}

pub(super) fn q6_k(x: &[f32; QK_K]) -> BlockQ6K {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    let groups = x.as_chunks::<16>().0.iter().zip(l.as_chunks_mut::<16>().0);
    for (j, (xg, lg)) in groups.enumerate() {
        let scale = make_qx_quants(xg, 32, lg, 1, None);
        scales[j] = scale;
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = scale;
        }
    }
    let mut b = BlockQ6K::zeroed();
    if max_abs_scale < GROUP_MAX_EPS {
        return b;
    }

    let iscale = -128.0 / max_scale;
    b.d = LeF16::from_f32(1.0 / iscale);
    for (s, &sc) in b.scales.iter_mut().zip(&scales) {
        *s = nearest_int(iscale * sc).min(127) as i8;
    }
    let d_all = b.d.to_f32();
    let groups = x.as_chunks::<16>().0.iter().zip(l.as_chunks_mut::<16>().0);
    for ((xg, lg), &sc) in groups.zip(&b.scales) {
        let d = d_all * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        for (li, &xi) in lg.iter_mut().zip(xg) {
            *li = (nearest_int(xi / d).clamp(-32, 31) + 32) as i8;
        }
    }

    // Per 128-element half: low nibbles of elements m and m + 64 share ql byte m % 64;
    // the top 2 bits of elements 32 * s + j share qh byte j.
    for h in 0..2 {
        let lv = |k: usize| l[128 * h + k] as u8;
        for j in 0..32 {
            b.ql[64 * h + j] = (lv(j) & 0x0F) | ((lv(j + 64) & 0x0F) << 4);
            b.ql[64 * h + j + 32] = (lv(j + 32) & 0x0F) | ((lv(j + 96) & 0x0F) << 4);
            b.qh[32 * h + j] = ((lv(j) >> 4) & 3)
                | (((lv(j + 32) >> 4) & 3) << 2)
                | (((lv(j + 64) >> 4) & 3) << 4)
                | (((lv(j + 96) >> 4) & 3) << 6);
        }
    }
    b
}

pub(super) fn q8_k(x: &[f32; QK_K]) -> BlockQ8K {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let mut b = BlockQ8K::zeroed();
    if amax == 0.0 {
        return b;
    }
    let iscale = -127.0 / max;
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
        let sum: i32 = g.iter().map(|&q| i32::from(q)).sum();
        *s = LeI16::new(sum as i16);
    }
    b.d = LeF32::new(1.0 / iscale);
    b
}
