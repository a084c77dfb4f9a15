// Q4_K (144 bytes / 256 values): d, dmin: f16, scales[12] (8 six-bit scale/min pairs),
// qs[128]: group g = e / 32 is the low (even g) or high (odd g) nibbles of bytes
// (g / 2) · 32 ..; y = (d · sc) · q − dmin · m.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
#include "common/kscale.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 144u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 144u;
    let e = c % 256u;
    let g = e / 32u;
    let q = (wq_u8(base + 16u + (g / 2u) * 32u + e % 32u) >> (4u * (g % 2u))) & 0xfu;
    let s = k4_scale(base, g);
    return s.x * f32(q) - s.y;
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 144u;
    let e = c % 256u;
    let g = e / 32u;
    let q = fields4(wq_u32(base + 16u + (g / 2u) * 32u + e % 32u), 4u * (g % 2u), 0xfu);
    let s = k4_scale(base, g);
    return s.x * vec4<f32>(q) - vec4<f32>(s.y);
}
