// Q5_1 (24 bytes / 32 values): d, m: f16, qh: u32, qs[16]; y = d · q + m.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 32u;
const QBYTES: u32 = 24u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 32u) * 24u;
    let j = c % 32u;
    let lo = (wq_u8(base + 8u + (j & 15u)) >> ((j / 16u) * 4u)) & 0xfu;
    let hi = ((wq_u32(base + 4u) >> j) & 1u) << 4u;
    return f16_bits_to_f32(wq_u16(base)) * f32(lo | hi) + f16_bits_to_f32(wq_u16(base + 2u));
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 32u) * 24u;
    let j = c % 32u;
    let lo = fields4(wq_u32(base + 8u + (j & 15u)), (j / 16u) * 4u, 0xfu);
    let hi = ((vec4<u32>(wq_u32(base + 4u)) >> (vec4<u32>(j) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    return f16_bits_to_f32(wq_u16(base)) * vec4<f32>(lo | hi) + vec4<f32>(f16_bits_to_f32(wq_u16(base + 2u)));
}
