// F16: little-endian halves, widened exactly.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 1u;
const QBYTES: u32 = 2u;

fn dq1(rb: u32, c: u32) -> f32 {
    return f16_bits_to_f32(wq_u16(rb + 2u * c));
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let a = wq_u32(rb + 2u * c);
    let b = wq_u32(rb + 2u * c + 4u);
    return vec4<f32>(f16_bits_to_f32(a & 0xffffu), f16_bits_to_f32(a >> 16u), f16_bits_to_f32(b & 0xffffu), f16_bits_to_f32(b >> 16u));
}
