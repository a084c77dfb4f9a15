//! realm-gguf: read and write GGUF model files.
//!
//! The reader is zero-copy over `&[u8]` (memory-mapped natively, see [`MappedFile`]) and can
//! parse the header from a growing prefix for streaming downloads ([`Gguf::parse_prefix`]). Model
//! files are hostile input: see `reader.rs` for the checks.

mod access;
mod cursor;
pub mod error;
pub mod hparams;
pub mod keys;
#[cfg(not(target_family = "wasm"))]
mod mmap;
mod reader;
pub mod synth;
mod tensor;
mod value;
pub mod writer;

pub use cursor::MAX_STRING_LEN;
pub use error::{GgufError, Result};
pub use hparams::{Arch, HParams};
#[cfg(not(target_family = "wasm"))]
pub use mmap::MappedFile;
pub use reader::{DEFAULT_ALIGNMENT, Gguf, MAX_KV, MAX_TENSORS, Parsed};
pub use realm_quant::GgmlType;
pub use tensor::{MAX_DIMS, MAX_NAME_LEN, TensorInfo};
pub use value::{Array, ArrayIter, Value, ValueType};
pub use writer::{GgufWriter, OwnedValue, TensorSpec};
