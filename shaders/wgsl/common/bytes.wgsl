// Byte access to GGUF blocks kept exactly as stored, in a storage buffer of u32 words named `wq`
// (declared by the op that includes this file). GGUF is little-endian, as is every WebGPU
// buffer, so byte `b` of the file is bits 8·(b % 4) .. of word b / 4. Blocks are not
// word-aligned (Q4_0 is 18 bytes), so every read takes a byte offset.

// The byte at offset `b`.
fn wq_u8(b: u32) -> u32 {
    return (wq[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// The 16 bits at an even offset `b` (every 2-byte field of every block is 2-aligned).
fn wq_u16(b: u32) -> u32 {
    return (wq[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu;
}

// The 32 bits at any offset `b` (the upload pads buffers to whole words, so the second word
// read for an unaligned offset exists).
fn wq_u32(b: u32) -> u32 {
    let s = (b & 3u) * 8u;
    let lo = wq[b >> 2u];
    if s == 0u {
        return lo;
    }
    return (lo >> s) | (wq[(b >> 2u) + 1u] << (32u - s));
}

// The four bytes of `w` as signed 8-bit values.
fn i8x4(w: u32) -> vec4<f32> {
    let v = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w)) >> vec4<u32>(24u);
    return vec4<f32>(v);
}

// Bits `shift .. shift + width` of each byte of `w` (width ≤ 8 bits, as `mask`).
fn fields4(w: u32, shift: u32, mask: u32) -> vec4<u32> {
    return (vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) >> vec4<u32>(shift)) & vec4<u32>(mask);
}
