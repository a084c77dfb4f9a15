//! Plain float formats: F32, F16 and BF16, each element stored little-endian.

use half::f16;

/// F32: a bit-for-bit copy (gguf-py `data.view(np.float32)`).
pub(super) fn f32_le(src: &[u8], dst: &mut [f32]) -> Option<()> {
    let (words, rest) = src.as_chunks::<4>();
    if !rest.is_empty() || words.len() != dst.len() {
        return None;
    }
    for (w, y) in words.iter().zip(dst) {
        *y = f32::from_le_bytes(*w);
    }
    Some(())
}

/// F16: exact widening (gguf-py `view(np.float16).astype(np.float32)`).
pub(super) fn f16_le(src: &[u8], dst: &mut [f32]) -> Option<()> {
    let (halves, rest) = src.as_chunks::<2>();
    if !rest.is_empty() || halves.len() != dst.len() {
        return None;
    }
    for (h, y) in halves.iter().zip(dst) {
        *y = f16::from_bits(u16::from_le_bytes(*h)).to_f32();
    }
    Some(())
}

/// BF16: the 16 bits become the top half of an f32 (gguf-py `BF16.dequantize_blocks`).
pub(super) fn bf16_le(src: &[u8], dst: &mut [f32]) -> Option<()> {
    let (halves, rest) = src.as_chunks::<2>();
    if !rest.is_empty() || halves.len() != dst.len() {
        return None;
    }
    for (h, y) in halves.iter().zip(dst) {
        *y = f32::from_bits(u32::from(u16::from_le_bytes(*h)) << 16);
    }
    Some(())
}
