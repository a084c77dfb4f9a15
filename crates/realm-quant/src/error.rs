//! The one error type of this crate.

use crate::types::GgmlType;

/// What went wrong in a size computation, a dequantize or a quantize call.
///
/// Every variant names the operation and the GGML type involved, so a message
/// read far from the call site (a GGUF loader, a CLI) still says what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// An element count that is not a whole number of blocks.
    #[error("{op} {ty}: {n_elements} elements is not a multiple of the block size {block_size}")]
    NotBlockMultiple {
        /// The operation that was asked for (`"row_bytes"`, `"dequantize"`, ...).
        op: &'static str,
        /// The type whose block size was violated.
        ty: GgmlType,
        /// The element count that was given.
        n_elements: u64,
        /// Elements per block of `ty`.
        block_size: u64,
    },

    /// A byte count, element count or shape product that does not fit the integer type.
    #[error("{op} {ty}: size of {n_elements} elements overflows")]
    Overflow {
        /// The operation that was asked for.
        op: &'static str,
        /// The type being sized.
        ty: GgmlType,
        /// The element count (or the part of it computed before the overflow).
        n_elements: u64,
    },

    /// A byte buffer whose length disagrees with the element count.
    #[error("{op} {ty}: {n_elements} elements need {expected_bytes} bytes, got {actual_bytes}")]
    ByteLenMismatch {
        /// The operation that was asked for.
        op: &'static str,
        /// The type of the blocks.
        ty: GgmlType,
        /// Elements on the `f32` side.
        n_elements: u64,
        /// Bytes those elements occupy in `ty`.
        expected_bytes: u64,
        /// Bytes that were provided.
        actual_bytes: u64,
    },

    /// A byte buffer that is not a whole number of blocks.
    #[error(
        "{op} {ty}: {actual_bytes} bytes is not a multiple of the block size {type_size} bytes"
    )]
    NotWholeBlocks {
        /// The operation that was asked for.
        op: &'static str,
        /// The type of the blocks.
        ty: GgmlType,
        /// Bytes that were provided.
        actual_bytes: u64,
        /// Bytes per block of `ty`.
        type_size: u64,
    },

    /// The type is known, but this crate has no implementation of the operation for it.
    #[error("{op} is not implemented for {ty}")]
    Unsupported {
        /// The operation that was asked for.
        op: &'static str,
        /// The type that lacks it.
        ty: GgmlType,
    },
}
