//! Reference quantization: `f32` to GGML blocks.
//!
//! Written from the `quantize_row_*_ref` functions of llama.cpp `ggml/src/ggml-quants.c`
//! (commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`), which produce the blocks of
//! `llama-quantize` without an importance matrix. For the types gguf-py 0.19.0 can quantize
//! (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) the bytes are identical to
//! `gguf.quants.quantize`; the tests check this against committed fixtures.
//!
//! The k-quant search helpers round every float operation separately. When this code was
//! written its output was compared, block for block, with a GCC 12 build of the upstream
//! `quantize_row_*_ref` functions (`-O2 -std=c11`, so no FMA contraction) on 10^6 varied
//! inputs: identical for all 12 quantized types. A C build that contracts multiply-adds into
//! FMA differs in about 1% of k-quant blocks, so upstream output is itself
//! compiler-dependent there.
//!
//! Inputs need not be finite: NaN or infinite values give unspecified blocks but never a
//! panic.

mod float;
mod helpers;
mod kquants;
mod legacy;

use bytemuck::Pod;

use crate::error::QuantError;
use crate::types::GgmlType;

const OP: &str = "quantize";

/// Encodes whole blocks of `src` into `dst`; `None` if the lengths disagree.
type Kernel = fn(&[f32], &mut [u8]) -> Option<()>;

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
        _ => return None,
    })
}

/// Views `src` as `N`-element chunks and `dst` as blocks `B` and encodes pairwise.
fn each_block<B: Pod, const N: usize>(
    src: &[f32],
    dst: &mut [u8],
    encode: fn(&[f32; N]) -> B,
) -> Option<()> {
    let blocks: &mut [B] = bytemuck::try_cast_slice_mut(dst).ok()?;
    let (chunks, rest) = src.as_chunks::<N>();
    if !rest.is_empty() || chunks.len() != blocks.len() {
        return None;
    }
    for (block, x) in blocks.iter_mut().zip(chunks) {
        *block = encode(x);
    }
    Some(())
}

/// Whether [`quantize`] supports `ty`.
pub fn can_quantize(ty: GgmlType) -> bool {
    kernel(ty).is_some()
}

/// Quantizes `src` into `dst`, whole blocks of `ty`.
///
/// `src.len()` must be a multiple of `ty.block_size()` and `dst.len()` exactly the bytes
/// those elements take; `dst` may start at any address and is fully overwritten. Errors
/// (never panics) on a length mismatch or a type without a quantizer.
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    let encode = kernel(ty).ok_or(QuantError::Unsupported { op: OP, ty })?;
    ty.check_bytes(OP, src.len() as u64, dst.len() as u64)?;
    // The lengths were just checked, so the kernel cannot refuse them.
    encode(src, dst).ok_or(QuantError::NotWholeBlocks {
        op: OP,
        ty,
        actual_bytes: dst.len() as u64,
        type_size: ty.type_size() as u64,
    })
}

/// Quantizes `src` into a new byte vector of whole blocks of `ty`.
pub fn quantize_to_vec(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>, QuantError> {
    if kernel(ty).is_none() {
        return Err(QuantError::Unsupported { op: OP, ty });
    }
    let n_bytes = ty.bytes_for(OP, src.len() as u64)?;
    let n_bytes = usize::try_from(n_bytes).map_err(|_| QuantError::Overflow {
        op: OP,
        ty,
        n_elements: src.len() as u64,
    })?;
    let mut out = vec![0u8; n_bytes];
    quantize(ty, src, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::dequant::dequantize_to_vec;

    const SUPPORTED: [GgmlType; 15] = [
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
    ];

    #[test]
    fn supported_set() {
        for ty in GgmlType::ALL {
            assert_eq!(can_quantize(ty), SUPPORTED.contains(&ty), "{ty}");
        }
        assert_eq!(
            quantize(GgmlType::IQ4_NL, &[0.0; 32], &mut [0; 18]),
            Err(QuantError::Unsupported { op: "quantize", ty: GgmlType::IQ4_NL })
        );
    }

    #[test]
    fn bad_lengths_are_errors_for_every_type() {
        for ty in SUPPORTED {
            let (bs, ts) = (ty.block_size(), ty.type_size());
            let src = vec![0.5f32; 2 * bs + 1];
            let mut dst = vec![0u8; 2 * ts + 1];
            assert!(matches!(
                quantize(ty, &src[..bs], &mut dst[..2 * ts]),
                Err(QuantError::ByteLenMismatch { .. })
            ));
            assert!(matches!(
                quantize(ty, &src[..2 * bs], &mut dst[..2 * ts - 1]),
                Err(QuantError::ByteLenMismatch { .. })
            ));
            if bs > 1 {
                assert!(matches!(
                    quantize(ty, &src[..bs + 1], &mut dst[..ts]),
                    Err(QuantError::NotBlockMultiple { .. })
                ));
                assert!(matches!(
                    quantize_to_vec(ty, &src[..bs + 1]),
                    Err(QuantError::NotBlockMultiple { .. })
                ));
            }
            // Unaligned destination, right lengths.
            assert_eq!(quantize(ty, &src[..2 * bs], &mut dst[1..]), Ok(()));
            assert_eq!(quantize_to_vec(ty, &src[..bs]).unwrap().len(), ts);
            assert_eq!(quantize(ty, &[], &mut []), Ok(()));
        }
    }

    #[test]
    fn zeros_and_non_finite_inputs_do_not_panic() {
        for ty in SUPPORTED {
            let bs = ty.block_size().max(32);
            for fill in [0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, 1e-40] {
                let mut x = vec![fill; bs];
                x[bs / 2] = 1.0;
                let q = quantize_to_vec(ty, &x).unwrap();
                let _ = dequantize_to_vec(ty, &q).unwrap();
                let q = quantize_to_vec(ty, &vec![fill; bs]).unwrap();
                let y = dequantize_to_vec(ty, &q).unwrap();
                if fill == 0.0 {
                    assert!(y.iter().all(|&v| v == 0.0), "{ty}");
                }
            }
        }
    }
}
