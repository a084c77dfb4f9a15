//! GGML block formats for Realm: type ids, block geometry, `#[repr(C)]` block structs, and
//! the scalar reference dequantizers and quantizers every fast path is tested against.
//!
//! Layouts and algorithms follow llama.cpp (`ggml/include/ggml.h`, `ggml/src/ggml-common.h`,
//! `ggml/src/ggml-quants.c`, the `type_traits` table of `ggml/src/ggml.c`) at commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`; the code is written independently. The
//! dequantizers are bit-identical to the Python `gguf` package (gguf-py 0.19.0) for every
//! format both implement, which committed fixtures check (`tests/fixtures/quant/`).
//!
//! ```
//! use realm_quant::{GgmlType, dequantize_to_vec, quantize_to_vec};
//!
//! let ty = GgmlType::from_u32(12).unwrap(); // as read from a GGUF tensor table
//! assert_eq!((ty.name(), ty.block_size(), ty.type_size()), ("q4_K", 256, 144));
//! assert_eq!(ty.row_bytes(4096)?, 16 * 144);
//!
//! let x: Vec<f32> = (0..256).map(|i| (i as f32 * 0.1).sin()).collect();
//! let blocks = quantize_to_vec(ty, &x)?;
//! assert_eq!(blocks.len(), 144);
//! let y = dequantize_to_vec(ty, &blocks)?;
//! // 4 bits over a group spanning [-1, 1]: within half a step of 2/15.
//! assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 0.07));
//! # Ok::<(), realm_quant::QuantError>(())
//! ```
//!
//! Nothing here panics on input-derived values: sizes are overflow-checked and lengths are
//! validated, so the type table and the dequantizers are safe on hostile GGUF files.

#![warn(missing_docs)]

pub mod blocks;
mod dequant;
mod error;
mod quantize;
mod types;

pub use dequant::{can_dequantize, dequantize, dequantize_to_vec};
pub use error::QuantError;
pub use quantize::{can_quantize, quantize, quantize_to_vec};
pub use types::{GgmlType, QK_K};
