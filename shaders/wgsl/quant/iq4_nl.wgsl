// IQ4_NL (18 bytes / 32 values): d: f16, qs[16] nibbles as Q4_0 indexing a 16-entry codebook;
// y = d · codebook[q].
#include "common/bytes.wgsl"
#include "common/f16.wgsl"
#include "common/iq4_codebook.wgsl"
const QK: u32 = 32u;
const QBYTES: u32 = 18u;

fn dq1(rb: u32, c: u32) -> f32 {
    let base = rb + (c / 32u) * 18u;
    let j = c % 32u;
    let q = (wq_u8(base + 2u + (j & 15u)) >> ((j / 16u) * 4u)) & 0xfu;
    return f16_bits_to_f32(wq_u16(base)) * iq4_value(q);
}

fn dq4(rb: u32, c: u32) -> vec4<f32> {
    let base = rb + (c / 32u) * 18u;
    let j = c % 32u;
    let q = fields4(wq_u32(base + 2u + (j & 15u)), (j / 16u) * 4u, 0xfu);
    return f16_bits_to_f32(wq_u16(base)) * vec4<f32>(iq4_value(q.x), iq4_value(q.y), iq4_value(q.z), iq4_value(q.w));
}
