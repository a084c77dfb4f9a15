// Q5_K (176 bytes / 256 values): d, dmin: f16, scales[12] as Q4_K, qh[32] (bit g of byte
// e % 32 is the fifth bit), qs[128] as Q4_K; y = (d · sc) · q − dmin · m.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
#include "common/kscale.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 176u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 176u;
    let e = c % 256u;
    let g = e / 32u;
    let lo = (wq_u8(base + 48u + (g / 2u) * 32u + e % 32u) >> (4u * (g % 2u))) & 0xfu;
    let hi = (wq_u8(base + 16u + e % 32u) >> g) & 1u;
    let s = k4_scale(base, g);
    return s.x * f32(lo | (hi << 4u)) - s.y;
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 176u;
    let e = c % 256u;
    let g = e / 32u;
    let lo = fields4(wq_u32(base + 48u + (g / 2u) * 32u + e % 32u), 4u * (g % 2u), 0xfu);
    let hi = fields4(wq_u32(base + 16u + e % 32u), g, 1u);
    let s = k4_scale(base, g);
    return s.x * vec4<f32>(lo | (hi << vec4<u32>(4u))) - vec4<f32>(s.y);
}
