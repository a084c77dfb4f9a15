// F32: little-endian floats.
#include "common/bytes.wgsl"
const QK: u32 = 1u;
const QBYTES: u32 = 4u;

fn dq1(rb: u32, c: u32) -> f32 {
    return bitcast<f32>(wq[(rb >> 2u) + c]);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let i = (rb >> 2u) + c;
    return vec4<f32>(bitcast<f32>(wq[i]), bitcast<f32>(wq[i + 1u]), bitcast<f32>(wq[i + 2u]), bitcast<f32>(wq[i + 3u]));
}
