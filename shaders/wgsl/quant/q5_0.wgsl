// Q5_0 (22 bytes / 32 values): d: f16, qh: u32 (bit j = fifth bit of value j), qs[16]
// nibbles as Q4_0; y = d · (q − 16).
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 32u;
const QBYTES: u32 = 22u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 32u) * 22u;
    let j = c % 32u;
    let lo = (wq_u8(base + 6u + (j & 15u)) >> ((j / 16u) * 4u)) & 0xfu;
    let hi = ((wq_u32(base + 2u) >> j) & 1u) << 4u;
    return f16_bits_to_f32(wq_u16(base)) * f32(i32(lo | hi) - 16);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 32u) * 22u;
    let j = c % 32u;
    let lo = fields4(wq_u32(base + 6u + (j & 15u)), (j / 16u) * 4u, 0xfu);
    let hi = ((vec4<u32>(wq_u32(base + 2u)) >> (vec4<u32>(j) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    return f16_bits_to_f32(wq_u16(base)) * vec4<f32>(vec4<i32>(lo | hi) - vec4<i32>(16));
}
