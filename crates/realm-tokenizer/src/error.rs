//! The crate's one error type.

use realm_gguf::GgufError;

/// Everything that can go wrong building a tokenizer or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Reading a metadata key failed (wrong type, bad value, ...).
    #[error(transparent)]
    Gguf(#[from] GgufError),

    /// A key llama.cpp requires is absent.
    #[error("tokenizer metadata key '{key}' is missing")]
    MissingKey { key: &'static str },

    /// A metadata value has a shape llama.cpp rejects.
    #[error("tokenizer metadata key '{key}' is invalid: {reason}")]
    BadMetadata { key: &'static str, reason: String },

    /// `tokenizer.ggml.model` names a tokenizer llama.cpp does not know.
    #[error("unknown tokenizer model '{model}'")]
    UnknownModel { model: String },

    /// `tokenizer.ggml.model` names a tokenizer llama.cpp knows but Realm does not implement.
    #[error(
        "tokenizer model '{model}' is not supported by Realm (only 'llama' SPM and 'gpt2' BPE)"
    )]
    UnsupportedModel { model: String },

    /// `tokenizer.ggml.pre` names a pre-tokenizer llama.cpp does not know (llama.cpp refuses too).
    #[error("unknown pre-tokenizer type '{pre}'")]
    UnknownPreTokenizer { pre: String },

    /// `tokenizer.ggml.pre` names a pre-tokenizer llama.cpp knows but Realm does not implement.
    #[error("pre-tokenizer type '{pre}' is not supported by Realm yet")]
    UnsupportedPreTokenizer { pre: String },

    /// Two vocabulary entries have the same text.
    #[error("duplicate token in vocabulary: '{text}' has ids {first} and {second}")]
    DuplicateToken { text: String, first: u32, second: u32 },

    /// `add_bos`/`add_eos`/`add_sep` is set but the matching token id is not.
    #[error("{flag} is true, but {id_key} is not set")]
    MissingSpecialToken { flag: &'static str, id_key: &'static str },

    /// A built-in pre-tokenizer regex failed to compile (a bug in this crate).
    #[error("pre-tokenizer regex {pattern:?} is invalid: {reason}")]
    Regex { pattern: String, reason: String },

    /// A chat template failed to parse or render.
    #[error("chat template {operation} failed: {reason}")]
    ChatTemplate { operation: &'static str, reason: String },

    /// A chat template called `raise_exception(message)`.
    #[error("chat template raised an exception: {message}")]
    TemplateException { message: String },
}

/// `Result` with [`TokenizerError`].
pub type Result<T, E = TokenizerError> = std::result::Result<T, E>;
