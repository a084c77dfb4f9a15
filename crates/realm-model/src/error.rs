use thiserror::Error;

/// Errors of model loading and the forward pass.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] realm_gguf::GgufError),
    #[error(transparent)]
    Backend(#[from] realm_core::CoreError),
    #[error("architecture '{0}' is not supported")]
    UnsupportedArch(String),
    #[error("tensor '{name}' is missing")]
    MissingTensor { name: String },
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    BadShape { name: String, found: Vec<u64>, expected: Vec<u64> },
    #[error("prompt needs positions up to {needed}, but the context holds {n_ctx}")]
    ContextExceeded { needed: usize, n_ctx: usize },
    #[error("token id {id} is outside the vocabulary of {n_vocab}")]
    BadToken { id: u32, n_vocab: usize },
    #[error("empty batch")]
    EmptyBatch,
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
