//! Scalar reference dequantization: GGML blocks to `f32`.
//!
//! This is the oracle every fast path (SIMD, WGSL, CUDA) is tested against, so it is
//! written for exactness, not speed. For every format that the Python `gguf` package
//! (gguf-py 0.19.0, `gguf.quants.dequantize`) implements, the result is bit-identical to it:
//! each element is computed with the same `f32` operations in the same order (numpy rounds
//! every multiply and add separately; nothing here is fused). Those orders also agree with
//! ggml's `dequantize_row_*` in `ggml/src/ggml-quants.c` (commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`), which is followed for Q8_K and Q8_1, types
//! gguf-py does not decode. (An f16 scale has 11 significant bits, so most scale × level
//! products are exact in f32 and only the last multiply or add rounds; keeping the order
//! still matters for a fast path that, say, folds the min into an FMA.)
//!
//! Blocks are read from `&[u8]` at any alignment: the block structs have alignment 1
//! (see [`crate::blocks`]), so viewing the bytes as blocks is always sound.

mod float;
mod iq;
mod kquants;
mod legacy;

use bytemuck::Pod;

use crate::error::QuantError;
use crate::types::GgmlType;

const OP: &str = "dequantize";

/// Decodes whole blocks of `src` into `dst`; `None` if the lengths disagree.
type Kernel = fn(&[u8], &mut [f32]) -> Option<()>;

/// The kernel for `ty`, or `None` where this crate has no dequantizer.
fn kernel(ty: GgmlType) -> Option<Kernel> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => float::f32_le,
        T::F16 => float::f16_le,
        T::BF16 => float::bf16_le,
        T::Q4_0 => |s, d| each_block(s, d, legacy::q4_0),
        T::Q4_1 => |s, d| each_block(s, d, legacy::q4_1),
        T::Q5_0 => |s, d| each_block(s, d, legacy::q5_0),
        T::Q5_1 => |s, d| each_block(s, d, legacy::q5_1),
        T::Q8_0 => |s, d| each_block(s, d, legacy::q8_0),
        T::Q8_1 => |s, d| each_block(s, d, legacy::q8_1),
        T::Q2_K => |s, d| each_block(s, d, kquants::q2_k),
        T::Q3_K => |s, d| each_block(s, d, kquants::q3_k),
        T::Q4_K => |s, d| each_block(s, d, kquants::q4_k),
        T::Q5_K => |s, d| each_block(s, d, kquants::q5_k),
        T::Q6_K => |s, d| each_block(s, d, kquants::q6_k),
        T::Q8_K => |s, d| each_block(s, d, kquants::q8_k),
        T::IQ4_NL => |s, d| each_block(s, d, iq::iq4_nl),
        T::IQ4_XS => |s, d| each_block(s, d, iq::iq4_xs),
        _ => return None,
    })
}

/// Views `src` as blocks `B` and `dst` as `N`-element chunks and decodes pairwise.
fn each_block<B: Pod, const N: usize>(
    src: &[u8],
    dst: &mut [f32],
    decode: fn(&B, &mut [f32; N]),
) -> Option<()> {
    let blocks: &[B] = bytemuck::try_cast_slice(src).ok()?;
    let (chunks, rest) = dst.as_chunks_mut::<N>();
    if !rest.is_empty() || chunks.len() != blocks.len() {
        return None;
    }
    for (block, out) in blocks.iter().zip(chunks) {
        decode(block, out);
    }
    Some(())
}

/// Whether [`dequantize`] supports `ty`.
pub fn can_dequantize(ty: GgmlType) -> bool {
    kernel(ty).is_some()
}

/// Dequantizes `src`, whole blocks of `ty`, into `dst`.
///
/// `dst.len()` is the element count: it must be a multiple of `ty.block_size()`, and
/// `src.len()` must be exactly the bytes those elements take. `src` may start at any
/// address. Errors (never panics) on a length mismatch or a type without a dequantizer.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let decode = kernel(ty).ok_or(QuantError::Unsupported { op: OP, ty })?;
    ty.check_bytes(OP, dst.len() as u64, src.len() as u64)?;
    // The lengths were just checked, so the kernel cannot refuse them.
    decode(src, dst).ok_or(QuantError::NotWholeBlocks {
        op: OP,
        ty,
        actual_bytes: src.len() as u64,
        type_size: ty.type_size() as u64,
    })
}

/// Dequantizes `src`, whole blocks of `ty`, into a new vector.
///
/// The element count comes from `src.len()`, which must be a multiple of
/// `ty.type_size()`. The vector holds `src.len() / type_size * block_size` floats (up to
/// ~28 × `src.len()` bytes for the densest formats).
pub fn dequantize_to_vec(ty: GgmlType, src: &[u8]) -> Result<Vec<f32>, QuantError> {
    if kernel(ty).is_none() {
        return Err(QuantError::Unsupported { op: OP, ty });
    }
    let type_size = ty.type_size();
    if !src.len().is_multiple_of(type_size) {
        return Err(QuantError::NotWholeBlocks {
            op: OP,
            ty,
            actual_bytes: src.len() as u64,
            type_size: type_size as u64,
        });
    }
    let n_blocks = src.len() / type_size;
    let n_elements = n_blocks.checked_mul(ty.block_size()).ok_or(QuantError::Overflow {
        op: OP,
        ty,
        n_elements: n_blocks as u64,
    })?;
    let mut out = vec![0.0f32; n_elements];
    dequantize(ty, src, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const SUPPORTED: [GgmlType; 17] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
    ];

    #[test]
    fn supported_set() {
        for ty in GgmlType::ALL {
            assert_eq!(can_dequantize(ty), SUPPORTED.contains(&ty), "{ty}");
        }
    }

    #[test]
    fn unsupported_type_is_an_error() {
        let err = dequantize(GgmlType::IQ2_XXS, &[0; 66], &mut [0.0; 256]).unwrap_err();
        assert_eq!(err, QuantError::Unsupported { op: "dequantize", ty: GgmlType::IQ2_XXS });
        assert!(dequantize_to_vec(GgmlType::I32, &[0; 4]).is_err());
    }

    #[test]
    fn bad_lengths_are_errors_for_every_type() {
        for ty in SUPPORTED {
            let (bs, ts) = (ty.block_size(), ty.type_size());
            let src = vec![0u8; 3 * ts + 1];
            let mut dst = vec![0.0f32; 3 * bs + 1];
            // One block too many bytes.
            assert!(matches!(
                dequantize(ty, &src[..ts * 3], &mut dst[..bs * 2]),
                Err(QuantError::ByteLenMismatch { .. })
            ));
            // One byte short.
            assert!(matches!(
                dequantize(ty, &src[..ts * 2 - 1], &mut dst[..bs * 2]),
                Err(QuantError::ByteLenMismatch { .. })
            ));
            // A partial block on the f32 side.
            if bs > 1 {
                assert!(matches!(
                    dequantize(ty, &src[..ts], &mut dst[..bs + 1]),
                    Err(QuantError::NotBlockMultiple { .. })
                ));
            }
            assert!(matches!(
                dequantize_to_vec(ty, &src[..3 * ts + 1]),
                Err(QuantError::NotWholeBlocks { .. })
            ));
            // Unaligned source, right lengths.
            assert_eq!(dequantize(ty, &src[1..=ts * 3], &mut dst[..bs * 3]), Ok(()));
            assert_eq!(dequantize_to_vec(ty, &src[1..=ts * 2]).unwrap().len(), bs * 2);
            assert_eq!(dequantize(ty, &[], &mut []), Ok(()));
        }
    }

    #[test]
    fn simple_values() {
        // Q4_0 with d = 1: element j is (nibble - 8).
        let mut block = [0u8; 18];
        block[..2].copy_from_slice(&[0x00, 0x3c]);
        block[2] = 0xf0; // element 0 -> 0 - 8, element 16 -> 15 - 8
        let out = dequantize_to_vec(GgmlType::Q4_0, &block).unwrap();
        assert_eq!(out[0], -8.0);
        assert_eq!(out[16], 7.0);
        // BF16 0x3f80 is 1.0.
        assert_eq!(dequantize_to_vec(GgmlType::BF16, &[0x80, 0x3f]).unwrap(), [1.0]);
    }
}
