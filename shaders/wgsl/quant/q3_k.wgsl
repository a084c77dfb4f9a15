// Q3_K (110 bytes / 256 values): hmask[32] (high bits: bit e / 32 of byte e % 32), qs[64]
// (2-bit planes as Q2_K), scales[12] (16 six-bit signed scales), d: f16.
// y = (d · sc) · (low − 4 · (1 − high)).
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 110u;

// d times the six-bit signed scale of group k = e / 16.
fn q3k_scale(base: u32, k: u32) -> f32 {
    var lo: u32;
    if k < 8u {
        lo = wq_u8(base + 96u + k) & 0xfu;
    } else {
        lo = wq_u8(base + 96u + k - 8u) >> 4u;
    }
    let hi = (wq_u8(base + 96u + 8u + k % 4u) >> (2u * (k / 4u))) & 3u;
    return f16_bits_to_f32(wq_u16(base + 108u)) * f32(i32(lo | (hi << 4u)) - 32);
}

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 110u;
    let e = c % 256u;
    let l = e % 32u;
    let low = (wq_u8(base + 32u + (e / 128u) * 32u + l) >> (2u * ((e % 128u) / 32u))) & 3u;
    let high = (wq_u8(base + l) >> (e / 32u)) & 1u;
    return q3k_scale(base, e / 16u) * f32(i32(low) - select(4, 0, high == 1u));
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 110u;
    let e = c % 256u;
    let l = e % 32u;
    let low = vec4<i32>(fields4(wq_u32(base + 32u + (e / 128u) * 32u + l), 2u * ((e % 128u) / 32u), 3u));
    let high = vec4<i32>(fields4(wq_u32(base + l), e / 32u, 1u));
    return q3k_scale(base, e / 16u) * vec4<f32>(low - 4 * (vec4<i32>(1) - high));
}
