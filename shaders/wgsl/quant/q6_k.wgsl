// Q6_K (210 bytes / 256 values): ql[128] (low nibbles), qh[64] (2-bit high parts),
// scales[16]: i8, d: f16. Value e: h = e / 128, r = e % 128; low nibble of ql[h·64 + r % 64]
// shifted by 4 · (r / 64), high bits of qh[h·32 + r % 32] shifted by 2 · (r / 32);
// y = (d · sc) · (q − 32).
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 210u;

fn q6k_scale(base: u32, e: u32) -> f32 {
    let sc = bitcast<i32>(wq_u8(base + 192u + e / 16u) << 24u) >> 24u;
    return f16_bits_to_f32(wq_u16(base + 208u)) * f32(sc);
}

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 210u;
    let e = c % 256u;
    let h = e / 128u;
    let r = e % 128u;
    let lo = (wq_u8(base + h * 64u + r % 64u) >> (4u * (r / 64u))) & 0xfu;
    let hi = (wq_u8(base + 128u + h * 32u + r % 32u) >> (2u * (r / 32u))) & 3u;
    return q6k_scale(base, e) * f32(i32(lo | (hi << 4u)) - 32);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 210u;
    let e = c % 256u;
    let h = e / 128u;
    let r = e % 128u;
    let lo = fields4(wq_u32(base + h * 64u + r % 64u), 4u * (r / 64u), 0xfu);
    let hi = fields4(wq_u32(base + 128u + h * 32u + r % 32u), 2u * (r / 32u), 3u);
    return q6k_scale(base, e) * vec4<f32>(vec4<i32>(lo | (hi << vec4<u32>(4u))) - vec4<i32>(32));
}
