// Q8_1 (36 bytes / 32 values): d, s: f16 (s, the sum, is not needed), qs[32]: i8; y = d · q.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 32u;
const QBYTES: u32 = 36u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 32u) * 36u;
    let q = bitcast<i32>(wq_u8(base + 4u + c % 32u) << 24u) >> 24u;
    return f16_bits_to_f32(wq_u16(base)) * f32(q);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 32u) * 36u;
    return f16_bits_to_f32(wq_u16(base)) * i8x4(wq_u32(base + 4u + c % 32u));
}
