// Q2_K (84 bytes / 256 values): scales[16] (low nibble scale, high nibble min, per 16
// values), qs[64] (2-bit planes), d, dmin: f16. Value e sits in half h = e / 128, plane
// s = (e % 128) / 32, byte l = e % 32 of that half; y = (d · sc) · q − dmin · m.
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 84u;

fn q2k_scale(base: u32, e: u32) -> vec2<f32> {
    let sc = wq_u8(base + e / 16u);
    let d = f16_bits_to_f32(wq_u16(base + 80u));
    let dmin = f16_bits_to_f32(wq_u16(base + 82u));
    return vec2<f32>(d * f32(sc & 0xfu), dmin * f32(sc >> 4u));
}

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 84u;
    let e = c % 256u;
    let q = (wq_u8(base + 16u + (e / 128u) * 32u + e % 32u) >> (2u * ((e % 128u) / 32u))) & 3u;
    let s = q2k_scale(base, e);
    return s.x * f32(q) - s.y;
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 84u;
    let e = c % 256u;
    let q = fields4(wq_u32(base + 16u + (e / 128u) * 32u + e % 32u), 2u * ((e % 128u) / 32u), 3u);
    let s = q2k_scale(base, e);
    return s.x * vec4<f32>(q) - vec4<f32>(s.y);
}
