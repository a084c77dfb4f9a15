// Q8_K (292 bytes / 256 values): d: f32, qs[256]: i8, bsums[16]: i16 (not needed); y = d · q.
#include "common/bytes.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 292u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 292u;
    let q = bitcast<i32>(wq_u8(base + 4u + c % 256u) << 24u) >> 24u;
    return bitcast<f32>(wq_u32(base)) * f32(q);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 292u;
    return bitcast<f32>(wq_u32(base)) * i8x4(wq_u32(base + 4u + c % 256u));
}
