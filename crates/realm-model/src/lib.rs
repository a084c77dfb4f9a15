//! realm-model: llama-family models over any [`realm_core::Backend`].
//!
//! [`ModelConfig`] is read once from GGUF metadata (typed, per architecture); [`Model::load`]
//! uploads every weight once; [`Model::forward`] runs a batch of rows — each a token at its
//! position in its sequence, the sequences' keys and values in a paged KV pool — through the
//! network and returns the logits of the rows asked for. The model never names a
//! backend: it calls the fused ops of the contract.

mod config;
mod error;
mod forward;
mod weights;

pub use config::{ModelConfig, ffn_activation};
pub use error::{ModelError, Result};
pub use forward::{Batch, Logits, Scratch};
pub use weights::{LayerWeights, Model};
