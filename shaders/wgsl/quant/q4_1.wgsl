// Q4_1 (20 bytes / 32 values): d, m: f16, qs[16] nibbles as Q4_0; y = d · q + m.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 32u;
const QBYTES: u32 = 20u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 32u) * 20u;
    let j = c % 32u;
    let q = (wq_u8(base + 4u + (j & 15u)) >> ((j / 16u) * 4u)) & 0xfu;
    return f16_bits_to_f32(wq_u16(base)) * f32(q) + f16_bits_to_f32(wq_u16(base + 2u));
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 32u) * 20u;
    let j = c % 32u;
    let q = fields4(wq_u32(base + 4u + (j & 15u)), (j / 16u) * 4u, 0xfu);
    return f16_bits_to_f32(wq_u16(base)) * vec4<f32>(q) + vec4<f32>(f16_bits_to_f32(wq_u16(base + 2u)));
}
