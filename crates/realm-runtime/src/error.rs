use thiserror::Error;

/// Errors of loading and generation.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Gguf(#[from] realm_gguf::GgufError),
    #[error(transparent)]
    Model(#[from] realm_model::ModelError),
    #[error(transparent)]
    Backend(#[from] realm_core::CoreError),
    #[error(transparent)]
    Tokenizer(#[from] realm_tokenizer::TokenizerError),
    #[error(transparent)]
    Sampling(#[from] realm_sampling::SamplingError),
    #[error("the prompt has {prompt} tokens but the context holds {n_ctx}")]
    PromptTooLong { prompt: usize, n_ctx: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
