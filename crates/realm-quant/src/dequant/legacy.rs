//! The 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Element order and arithmetic follow gguf-py `quants.py` (`Q4_0.dequantize_blocks` and
//! siblings) and ggml-quants.c `dequantize_row_q4_0` .. `dequantize_row_q8_0` (commit
//! 0c1e570): one `f32` multiply, plus one add for the formats with a min, rounded
//! separately. Q8_1 has no dequantizer upstream; it is decoded like Q8_0 (`d * q`), and the
//! sum field `s` is ignored.

use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK32};

const HALF: usize = QK32 / 2;

/// Element `j` and `j + 16` of a nibble-packed 32-block.
#[inline]
fn nibbles(qs: &[u8; HALF], j: usize) -> (u8, u8) {
    (qs[j] & 0x0F, qs[j] >> 4)
}

/// The fifth bit of elements `j` and `j + 16`, already shifted to bit 4.
#[inline]
fn fifth_bits(qh: u32, j: usize) -> (u8, u8) {
    let lo = ((qh >> j) & 1) as u8;
    let hi = ((qh >> (j + HALF)) & 1) as u8;
    (lo << 4, hi << 4)
}

pub(super) fn q4_0(b: &BlockQ4_0, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    for j in 0..HALF {
        let (lo, hi) = nibbles(&b.qs, j);
        y[j] = d * (i32::from(lo) - 8) as f32;
        y[j + HALF] = d * (i32::from(hi) - 8) as f32;
    }
}

pub(super) fn q4_1(b: &BlockQ4_1, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    let m = b.m.to_f32();
    for j in 0..HALF {
        let (lo, hi) = nibbles(&b.qs, j);
        y[j] = d * f32::from(lo) + m;
        y[j + HALF] = d * f32::from(hi) + m;
    }
}

pub(super) fn q5_0(b: &BlockQ5_0, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    let qh = u32::from_le_bytes(b.qh);
    for j in 0..HALF {
        let (lo, hi) = nibbles(&b.qs, j);
        let (hlo, hhi) = fifth_bits(qh, j);
        y[j] = d * (i32::from(lo | hlo) - 16) as f32;
        y[j + HALF] = d * (i32::from(hi | hhi) - 16) as f32;
    }
}

pub(super) fn q5_1(b: &BlockQ5_1, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    let m = b.m.to_f32();
    let qh = u32::from_le_bytes(b.qh);
    for j in 0..HALF {
        let (lo, hi) = nibbles(&b.qs, j);
        let (hlo, hhi) = fifth_bits(qh, j);
        y[j] = d * f32::from(lo | hlo) + m;
        y[j + HALF] = d * f32::from(hi | hhi) + m;
    }
}

pub(super) fn q8_0(b: &BlockQ8_0, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = d * f32::from(q);
    }
}

pub(super) fn q8_1(b: &BlockQ8_1, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    for (y, &q) in y.iter_mut().zip(&b.qs) {
        *y = d * f32::from(q);
    }
}
