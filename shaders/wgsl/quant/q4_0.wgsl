// Q4_0 (18 bytes / 32 values): d: f16, qs[16]: value j is the low nibble of qs[j], value
// j + 16 the high nibble; y = d · (q − 8).
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 32u;
const QBYTES: u32 = 18u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 32u) * 18u;
    let j = c % 32u;
    let q = (wq_u8(base + 2u + (j & 15u)) >> ((j / 16u) * 4u)) & 0xfu;
    return f16_bits_to_f32(wq_u16(base)) * f32(i32(q) - 8);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 32u) * 18u;
    let j = c % 32u;
    let q = vec4<i32>(fields4(wq_u32(base + 2u + (j & 15u)), (j / 16u) * 4u, 0xfu));
    return f16_bits_to_f32(wq_u16(base)) * vec4<f32>(q - vec4<i32>(8));
}
