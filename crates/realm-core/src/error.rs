//! The error type every backend returns.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    #[error("{op}: shape mismatch: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("{op}: {what} is not supported by the {backend} backend")]
    Unsupported { op: &'static str, what: String, backend: &'static str },
    #[error("weight '{name}': {detail}")]
    BadWeight { name: String, detail: String },
    #[error("out of memory allocating {bytes} bytes for {what}")]
    OutOfMemory { what: String, bytes: u64 },
    #[error("no usable GPU: {detail}")]
    NoAdapter { detail: String },
    #[error("device lost: {reason}")]
    DeviceLost { reason: String },
    #[error("{op}: position {pos} is outside the KV cache of {n_ctx} positions")]
    ContextOverflow { op: &'static str, pos: usize, n_ctx: usize },
    #[error("backend error in {op}: {detail}")]
    Backend { op: &'static str, detail: String },
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Shorthand for a shape error.
pub fn shape_err(op: &'static str, detail: impl Into<String>) -> CoreError {
    CoreError::Shape { op, detail: detail.into() }
}
