// IQ4_XS (136 bytes / 256 values): d: f16, scales_h: u16, scales_l[4], qs[128]. Group
// g = e / 32 has the six-bit scale (low nibble of scales_l[g / 2] at 4 · (g % 2), two bits of
// scales_h at 2g) − 32; within the group, value j is the low (j < 16) or high nibble of
// qs[16g + j % 16]; y = (d · sc) · codebook[q].
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
#include "common/iq4_codebook.wgsl"
const QK: u32 = 256u;
const QBYTES: u32 = 136u;

fn iq4xs_scale(base: u32, g: u32) -> f32 {
    let lo = (wq_u8(base + 4u + g / 2u) >> (4u * (g % 2u))) & 0xfu;
    let hi = (wq_u16(base + 2u) >> (2u * g)) & 3u;
    return f16_bits_to_f32(wq_u16(base)) * f32(i32(lo | (hi << 4u)) - 32);
}

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 256u) * 136u;
    let e = c % 256u;
    let g = e / 32u;
    let j = e % 32u;
    let q = (wq_u8(base + 8u + g * 16u + j % 16u) >> (4u * (j / 16u))) & 0xfu;
    return iq4xs_scale(base, g) * iq4_value(q);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 256u) * 136u;
    let e = c % 256u;
    let g = e / 32u;
    let j = e % 32u;
    let q = fields4(wq_u32(base + 8u + g * 16u + j % 16u), 4u * (j / 16u), 0xfu);
    return iq4xs_scale(base, g) * vec4<f32>(iq4_value(q.x), iq4_value(q.y), iq4_value(q.z), iq4_value(q.w));
}
