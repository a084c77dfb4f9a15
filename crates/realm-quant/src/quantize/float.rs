//! Plain float formats: F32, F16 and BF16, each element stored little-endian.

use half::f16;

/// F32: a bit-for-bit copy.
pub(super) fn f32_le(src: &[f32], dst: &mut [u8]) -> Option<()> {
    let (words, rest) = dst.as_chunks_mut::<4>();
    if !rest.is_empty() || words.len() != src.len() {
        return None;
    }
    for (w, &x) in words.iter_mut().zip(src) {
        *w = x.to_le_bytes();
    }
    Some(())
}

/// F16: round to nearest, ties to even (numpy `astype(np.float16)`, `GGML_FP32_TO_FP16`).
pub(super) fn f16_le(src: &[f32], dst: &mut [u8]) -> Option<()> {
    let (halves, rest) = dst.as_chunks_mut::<2>();
    if !rest.is_empty() || halves.len() != src.len() {
        return None;
    }
    for (h, &x) in halves.iter_mut().zip(src) {
        *h = f16::from_f32(x).to_bits().to_le_bytes();
    }
    Some(())
}

/// One f32 to bf16 bits, as `ggml_compute_fp32_to_bf16` (ggml-impl.h) and gguf-py
/// `BF16.quantize_blocks`: NaNs are forced quiet, everything else rounds to nearest even.
pub(crate) fn bf16_bits(x: f32) -> u16 {
    let n = x.to_bits();
    if n & 0x7fff_ffff > 0x7f80_0000 {
        return ((n >> 16) | 64) as u16;
    }
    ((u64::from(n) + u64::from(0x7fff + ((n >> 16) & 1))) >> 16) as u16
}

/// BF16: see [`bf16_bits`].
pub(super) fn bf16_le(src: &[f32], dst: &mut [u8]) -> Option<()> {
    let (halves, rest) = dst.as_chunks_mut::<2>();
    if !rest.is_empty() || halves.len() != src.len() {
        return None;
    }
    for (h, &x) in halves.iter_mut().zip(src) {
        *h = bf16_bits(x).to_le_bytes();
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::bf16_bits;

    #[test]
    fn bf16_rounding() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // Halfway between 0x3f80 and 0x3f81: ties to even stays.
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(bf16_bits(f32::INFINITY), 0x7f80);
        assert_eq!(bf16_bits(f32::MAX), 0x7f80);
        // A signalling NaN comes out quiet.
        assert_eq!(bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
    }
}
