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
    /// A constraint (JSON schema, regex, grammar) that is invalid, or failed while generating.
    #[error(transparent)]
    Grammar(#[from] realm_grammar::GrammarError),
    #[error("the prompt has {prompt} tokens but the context holds {n_ctx}")]
    PromptTooLong { prompt: usize, n_ctx: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("{waiting} requests are waiting already (the queue's limit); try again later")]
    QueueFull { waiting: usize },
    #[error("the engine is shut down")]
    ShutDown,
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    /// A stable, machine-readable category for bindings and wire protocols (the browser SDK's
    /// `RealmError.code`): `invalid-model`, `unsupported-model`, `out-of-memory`,
    /// `webgpu-unavailable` (no GPU adapter or device), `device-lost`, `context-length`,
    /// `invalid-argument`, `template`, `internal`, `queue-full`, `shut-down`.
    pub fn code(&self) -> &'static str {
        use realm_core::CoreError as C;
        use realm_gguf::GgufError as G;
        use realm_model::ModelError as M;
        use realm_tokenizer::TokenizerError as T;
        let core = |e: &C| match e {
            C::OutOfMemory { .. } => "out-of-memory",
            C::Unsupported { .. } => "unsupported-model",
            C::BadWeight { .. } => "invalid-model",
            C::NoAdapter { .. } => "webgpu-unavailable",
            C::DeviceLost { .. } => "device-lost",
            C::ContextOverflow { .. } => "context-length",
            C::Shape { .. } | C::Backend { .. } => "internal",
        };
        let gguf = |e: &G| match e {
            G::UnsupportedVersion { .. } => "unsupported-model",
            _ => "invalid-model",
        };
        match self {
            RuntimeError::Gguf(e) => gguf(e),
            RuntimeError::Model(M::Gguf(e)) => gguf(e),
            RuntimeError::Model(M::Backend(e)) | RuntimeError::Backend(e) => core(e),
            RuntimeError::Model(M::UnsupportedArch(_)) => "unsupported-model",
            RuntimeError::Model(M::ContextExceeded { .. }) => "context-length",
            RuntimeError::Model(M::BadToken { .. }) => "invalid-argument",
            RuntimeError::Model(_) => "invalid-model",
            RuntimeError::Tokenizer(T::ChatTemplate { .. } | T::TemplateException { .. }) => {
                "template"
            }
            RuntimeError::Tokenizer(
                T::UnsupportedModel { .. } | T::UnsupportedPreTokenizer { .. },
            ) => "unsupported-model",
            RuntimeError::Tokenizer(T::Regex { .. }) => "internal",
            RuntimeError::Tokenizer(_) => "invalid-model",
            RuntimeError::Sampling(_) | RuntimeError::EmptyPrompt | RuntimeError::Invalid(_) => {
                "invalid-argument"
            }
            RuntimeError::Grammar(realm_grammar::GrammarError::Invalid { .. }) => {
                "invalid-argument"
            }
            RuntimeError::Grammar(realm_grammar::GrammarError::Vocabulary(_)) => {
                "unsupported-model"
            }
            RuntimeError::Grammar(realm_grammar::GrammarError::Failed(_)) => "internal",
            RuntimeError::PromptTooLong { .. } => "context-length",
            RuntimeError::QueueFull { .. } => "queue-full",
            RuntimeError::ShutDown => "shut-down",
        }
    }
}
