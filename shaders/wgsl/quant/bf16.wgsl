// BF16: the 16 bits are the top half of an f32.
#include "common/bytes.wgsl"
const QK: u32 = 1u;
const QBYTES: u32 = 2u;

fn dq1(rb: u32, c: u32) -> f32 {
    return bitcast<f32>(wq_u16(rb + 2u * c) << 16u);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let a = wq_u32(rb + 2u * c);
    let b = wq_u32(rb + 2u * c + 4u);
    return vec4<f32>(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xffff0000u), bitcast<f32>(b << 16u), bitcast<f32>(b & 0xffff0000u));
}
