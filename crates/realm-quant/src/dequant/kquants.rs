//! The k-quant super-block formats: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//!
//! Element order and arithmetic follow gguf-py `Q2_K.dequantize_blocks` .. `Q6_K` and
//! ggml-quants.c `dequantize_row_q2_K` .. `dequantize_row_q8_K` (commit 0c1e570). The
//! group scale is formed first (`d * sc`, `dmin * m`), then each element is
//! `scale * q - min` with the multiply and the subtract rounded separately.

use crate::blocks::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, scale_min_k4};
use crate::types::QK_K;

pub(super) fn q2_k(b: &BlockQ2K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let dmin = b.dmin.to_f32();
    for (e, out) in y.iter_mut().enumerate() {
        // Element e sits in half h, 2-bit plane s, byte l of that half's 32 bytes.
        let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
        let sc = b.scales[e / 16];
        let dl = d * f32::from(sc & 0x0F);
        let ml = dmin * f32::from(sc >> 4);
        let q = (b.qs[h * 32 + l] >> (2 * s)) & 3;
        *out = dl * f32::from(q) - ml;
    }
}

pub(super) fn q3_k(b: &BlockQ3K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let scales = b.group_scales();
    for (e, out) in y.iter_mut().enumerate() {
        let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = ((b.qs[h * 32 + l] >> (2 * s)) & 3) as i8;
        // A clear high bit means "subtract 4".
        let high = (b.hmask[l] >> (e / 32)) & 1;
        let q = low - if high == 0 { 4 } else { 0 };
        let dl = d * f32::from(scales[e / 16]);
        *out = dl * f32::from(q);
    }
}

pub(super) fn q4_k(b: &BlockQ4K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let dmin = b.dmin.to_f32();
    for (g, out) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(g, &b.scales);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        // Group g is the low (even g) or high (odd g) nibbles of 32-byte chunk g / 2.
        let shift = 4 * (g % 2);
        for (l, o) in out.iter_mut().enumerate() {
            let q = (b.qs[(g / 2) * 32 + l] >> shift) & 0x0F;
            *o = dl * f32::from(q) - ml;
        }
    }
}

pub(super) fn q5_k(b: &BlockQ5K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let dmin = b.dmin.to_f32();
    for (g, out) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(g, &b.scales);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        let shift = 4 * (g % 2);
        for (l, o) in out.iter_mut().enumerate() {
            let low = (b.qs[(g / 2) * 32 + l] >> shift) & 0x0F;
            let high = (b.qh[l] >> g) & 1;
            *o = dl * f32::from(low | (high << 4)) - ml;
        }
    }
}

pub(super) fn q6_k(b: &BlockQ6K, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    for (e, out) in y.iter_mut().enumerate() {
        let (h, r) = (e / 128, e % 128);
        let low = (b.ql[h * 64 + r % 64] >> (4 * (r / 64))) & 0x0F;
        let high = (b.qh[h * 32 + r % 32] >> (2 * (r / 32))) & 3;
        let q = i32::from(low | (high << 4)) - 32;
        let dl = d * f32::from(b.scales[e / 16]);
        *out = dl * q as f32;
    }
}

pub(super) fn q8_k(b: &BlockQ8K, y: &mut [f32; QK_K]) {
    let d = b.d.get();
    for (o, &q) in y.iter_mut().zip(&b.qs) {
        *o = d * f32::from(q);
    }
}
