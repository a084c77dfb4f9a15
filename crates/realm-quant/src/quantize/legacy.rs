//! Reference quantizers for the 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Written from llama.cpp `ggml/src/ggml-quants.c` `quantize_row_q4_0_ref` ..
//! `quantize_row_q8_1_ref` (commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`). The output
//! is bit-identical to gguf-py 0.19.0 `gguf.quants.quantize` for Q4_0 .. Q8_0, which
//! performs the same f32 operations. Where C converts a float to an integer type that could
//! overflow, the value is truncated and clamped to the level range instead (the two agree
//! for every finite input).

use bytemuck::Zeroable;

use crate::blocks::{
    BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, LeF16, QK32,
};

const HALF: usize = QK32 / 2;

/// The element of largest magnitude, keeping its sign (the first one on ties).
fn signed_absmax(x: &[f32; QK32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32; QK32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

/// `v` truncated toward zero and clamped to `0..=top` (`(int8_t)v` then `MIN(top, ..)`).
fn level(v: f32, top: i32) -> u8 {
    (v as i32).clamp(0, top) as u8
}

/// Packs 32 five-bit levels: low nibbles into `qs` (element `j` low, `j + 16` high), the
/// fifth bits into a little-endian `u32`.
fn pack5(q: &[u8; QK32]) -> ([u8; HALF], [u8; 4]) {
    let mut qs = [0u8; HALF];
    let mut qh = 0u32;
    for j in 0..HALF {
        let (a, b) = (q[j], q[j + HALF]);
        qs[j] = (a & 0x0F) | ((b & 0x0F) << 4);
        qh |= u32::from((a & 0x10) >> 4) << j;
        qh |= u32::from((b & 0x10) >> 4) << (j + HALF);
    }
    (qs, qh.to_le_bytes())
}

pub(super) fn q4_0(x: &[f32; QK32]) -> BlockQ4_0 {
    let d = signed_absmax(x) / -8.0;
    let id = inverse(d);
    let mut b = BlockQ4_0 { d: LeF16::from_f32(d), ..BlockQ4_0::zeroed() };
    for j in 0..HALF {
        let lo = level(x[j] * id + 8.5, 15);
        let hi = level(x[j + HALF] * id + 8.5, 15);
        b.qs[j] = lo | (hi << 4);
    }
    b
}

pub(super) fn q4_1(x: &[f32; QK32]) -> BlockQ4_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    let mut b = BlockQ4_1 { d: LeF16::from_f32(d), m: LeF16::from_f32(min), ..BlockQ4_1::zeroed() };
    for j in 0..HALF {
        let lo = level((x[j] - min) * id + 0.5, 15);
        let hi = level((x[j + HALF] - min) * id + 0.5, 15);
        b.qs[j] = lo | (hi << 4);
    }
    b
}

pub(super) fn q5_0(x: &[f32; QK32]) -> BlockQ5_0 {
    let d = signed_absmax(x) / -16.0;
    let id = inverse(d);
    let q: [u8; QK32] = core::array::from_fn(|j| level(x[j] * id + 16.5, 31));
    let (qs, qh) = pack5(&q);
    BlockQ5_0 { d: LeF16::from_f32(d), qh, qs }
}

pub(super) fn q5_1(x: &[f32; QK32]) -> BlockQ5_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    let q: [u8; QK32] = core::array::from_fn(|j| level((x[j] - min) * id + 0.5, 31));
    let (qs, qh) = pack5(&q);
    BlockQ5_1 { d: LeF16::from_f32(d), m: LeF16::from_f32(min), qh, qs }
}

/// Scale `amax / 127` and the rounded (half away from zero) quants of a Q8 block.
fn q8_levels(x: &[f32; QK32]) -> (f32, [i8; QK32]) {
    let mut amax = 0.0f32;
    for &v in x {
        // MAX(amax, fabsf(v)) as written in C: keeps `amax` unless it is not greater.
        amax = if amax > v.abs() { amax } else { v.abs() };
    }
    let d = amax / 127.0;
    let id = inverse(d);
    (d, core::array::from_fn(|j| (x[j] * id).round() as i8))
}

pub(super) fn q8_0(x: &[f32; QK32]) -> BlockQ8_0 {
    let (d, qs) = q8_levels(x);
    BlockQ8_0 { d: LeF16::from_f32(d), qs }
}

pub(super) fn q8_1(x: &[f32; QK32]) -> BlockQ8_1 {
    let (d, qs) = q8_levels(x);
    let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
    BlockQ8_1 { d: LeF16::from_f32(d), s: LeF16::from_f32(sum as f32 * d), qs }
}
