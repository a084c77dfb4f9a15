// The six-bit (scale, min) pair of group j of the 12 scale bytes at byte `at` of a Q4_K or
// Q5_K block (ggml `get_scale_min_k4`).
fn scale_min_k4(at: u32, j: u32) -> vec2<u32> {
    if j < 4u {
        return vec2<u32>(wq_u8(at + j) & 63u, wq_u8(at + j + 4u) & 63u);
    }
    let sc = (wq_u8(at + j + 4u) & 0xfu) | ((wq_u8(at + j - 4u) >> 6u) << 4u);
    let m = (wq_u8(at + j + 4u) >> 4u) | ((wq_u8(at + j) >> 6u) << 4u);
    return vec2<u32>(sc, m);
}

// (d · sc, dmin · m) of group j of a Q4_K / Q5_K block at `base` (d, dmin, scales at 0, 2, 4).
fn k4_scale(base: u32, j: u32) -> vec2<f32> {
    let sm = scale_min_k4(base + 4u, j);
    let d = f16_bits_to_f32(wq_u16(base));
    let dmin = f16_bits_to_f32(wq_u16(base + 2u));
    return vec2<f32>(d * f32(sm.x), dmin * f32(sm.y));
}
