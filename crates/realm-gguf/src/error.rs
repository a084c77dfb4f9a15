//! Typed errors of the GGUF reader and writer. Every variant names what failed and where.

use thiserror::Error;

/// Anything that can go wrong reading or writing a GGUF file.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GgufError {
    #[error("not a GGUF file: magic bytes are {found:02x?}, expected \"GGUF\"")]
    NotGguf { found: Vec<u8> },
    #[error("file is empty (0 bytes), not a GGUF model")]
    Empty,
    #[error("GGUF version {version} is not supported (only versions 2 and 3 are)")]
    UnsupportedVersion { version: u32 },
    #[error(
        "file truncated: {what} at offset {offset} needs {needed} bytes, only {available} remain"
    )]
    Truncated { what: &'static str, offset: u64, needed: u64, available: u64 },
    #[error("{what} count {count} at offset {offset} exceeds the limit of {limit}")]
    TooMany { what: &'static str, count: u64, limit: u64, offset: u64 },
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str, offset: u64 },
    #[error("metadata key '{key}' at offset {offset} has unknown value type {type_id}")]
    UnknownValueType { key: String, type_id: u32, offset: u64 },
    #[error("metadata key '{key}' at offset {offset}: bool byte is {value}, expected 0 or 1")]
    InvalidBool { key: String, value: u8, offset: u64 },
    #[error("metadata key '{key}' at offset {offset}: arrays nested deeper than {limit} levels")]
    NestingTooDeep { key: String, offset: u64, limit: u32 },
    #[error("duplicate metadata key '{key}' at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    #[error("duplicate tensor name '{name}' at offset {offset}")]
    DuplicateTensor { name: String, offset: u64 },
    #[error("general.alignment is {value}: must be a non-zero power of two no larger than {max}")]
    BadAlignment { value: u64, max: u64 },
    #[error(
        "tensor '{tensor}' at offset {offset} has unknown or unsupported ggml type id {type_id}"
    )]
    UnknownTensorType { tensor: String, type_id: u32, offset: u64 },
    #[error("tensor '{tensor}' at offset {offset} has {n_dims} dimensions (1 to {max} allowed)")]
    BadDimCount { tensor: String, n_dims: u32, max: u32, offset: u64 },
    #[error("tensor '{tensor}' has invalid shape {dims:?}: {reason}")]
    BadShape { tensor: String, dims: Vec<u64>, reason: String },
    #[error(
        "tensor '{tensor}' data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Misaligned { tensor: String, offset: u64, alignment: u64 },
    #[error(
        "tensor '{tensor}' needs {size} bytes at data offset {offset}, \
         but the data section holds only {data_size} bytes"
    )]
    TensorOutOfBounds { tensor: String, offset: u64, size: u64, data_size: u64 },
    #[error("tensors '{first}' and '{second}' overlap in the data section")]
    TensorOverlap { first: String, second: String },
    #[error(
        "tensor '{tensor}' data is not loaded yet: need {needed} bytes of the file, have {have}"
    )]
    DataNotLoaded { tensor: String, needed: u64, have: u64 },
    #[error("metadata key '{key}' is missing")]
    MissingKey { key: String },
    #[error("metadata key '{key}' has type {found}, expected {expected}")]
    WrongType { key: String, expected: &'static str, found: &'static str },
    #[error("metadata key '{key}': {reason}")]
    BadValue { key: String, reason: String },
    #[error("tensor '{name}' is missing")]
    MissingTensor { name: String },
    #[error("I/O error on {path}: {message}")]
    Io { path: String, message: String },
    #[error("cannot write GGUF: {reason}")]
    Write { reason: String },
}

pub type Result<T, E = GgufError> = std::result::Result<T, E>;
