//! Typed hyperparameters of llama-family models, read per `general.architecture`.
//!
//! Defaults follow llama.cpp `src/llama-model.cpp` `load_hparams` (commit 0c1e570).

use crate::error::{GgufError, Result};
use crate::keys::{self, arch_key};
use crate::reader::Gguf;

/// Architectures Realm knows the hyperparameters of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Arch> {
        Some(match name {
            "llama" => Arch::Llama,
            "mistral" => Arch::Mistral,
            "qwen2" => Arch::Qwen2,
            "qwen3" => Arch::Qwen3,
            "gemma3" => Arch::Gemma3,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Mistral => "mistral",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }

    pub const ALL: [Arch; 5] = [Arch::Llama, Arch::Mistral, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3];
}

/// Model shape and numerics, as the GGUF metadata states them.
#[derive(Debug, Clone, PartialEq)]
pub struct HParams {
    pub arch: Arch,
    pub context_length: u32,
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_ff: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    /// Per-head dimension of keys/queries (`attention.key_length`, default `n_embd / n_head`).
    pub head_dim_k: u32,
    /// Per-head dimension of values (`attention.value_length`, default `head_dim_k`).
    pub head_dim_v: u32,
    pub rope_dim: u32,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
    /// Sliding attention window (Gemma 3 local layers), if any.
    pub sliding_window: Option<u32>,
    pub attn_softcap: Option<f32>,
    pub final_softcap: Option<f32>,
    /// Vocabulary size from `{arch}.vocab_size` or the token list, if present.
    pub n_vocab: Option<u32>,
}

impl HParams {
    /// Read the hyperparameters; an unknown architecture or a missing key is a typed error.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<HParams> {
        let name = g.architecture()?;
        let arch = Arch::from_name(name).ok_or_else(|| GgufError::BadValue {
            key: keys::GENERAL_ARCHITECTURE.into(),
            reason: format!(
                "architecture '{name}' is not supported (supported: {})",
                Arch::ALL.map(Arch::name).join(", ")
            ),
        })?;
        let key = |suffix: &str| arch_key(name, suffix);
        let req = |suffix: &str| g.require_u32(&key(suffix));
        let n_embd = req(keys::EMBEDDING_LENGTH)?;
        let n_head = req(keys::HEAD_COUNT)?;
        let n_layer = req(keys::BLOCK_COUNT)?;
        let positive = |k: &str, v: u32| {
            if v == 0 {
                Err(GgufError::BadValue { key: key(k), reason: "must be positive".into() })
            } else {
                Ok(v)
            }
        };
        positive(keys::EMBEDDING_LENGTH, n_embd)?;
        positive(keys::HEAD_COUNT, n_head)?;
        positive(keys::BLOCK_COUNT, n_layer)?;
        let n_head_kv =
            positive(keys::HEAD_COUNT_KV, g.get_u32(&key(keys::HEAD_COUNT_KV))?.unwrap_or(n_head))?;
        if n_head % n_head_kv != 0 {
            return Err(GgufError::BadValue {
                key: key(keys::HEAD_COUNT_KV),
                reason: format!("{n_head_kv} does not divide the head count {n_head}"),
            });
        }
        let head_dim_k = positive(
            keys::KEY_LENGTH,
            g.get_u32(&key(keys::KEY_LENGTH))?.unwrap_or(n_embd / n_head),
        )?;
        let head_dim_v = g.get_u32(&key(keys::VALUE_LENGTH))?.unwrap_or(head_dim_k);
        let rope_dim = g.get_u32(&key(keys::ROPE_DIMENSION_COUNT))?.unwrap_or(head_dim_k);
        if rope_dim > head_dim_k || rope_dim % 2 != 0 {
            return Err(GgufError::BadValue {
                key: key(keys::ROPE_DIMENSION_COUNT),
                reason: format!("{rope_dim} must be even and at most the head size {head_dim_k}"),
            });
        }
        let default_base = if arch == Arch::Gemma3 { 1_000_000.0 } else { 10_000.0 };
        let n_vocab = match g.get_u32(&key(keys::VOCAB_SIZE))? {
            Some(v) => Some(v),
            None => match g.get_array(keys::TOKENIZER_TOKENS)? {
                Some(a) => u32::try_from(a.len()).ok(),
                None => None,
            },
        };
        Ok(HParams {
            arch,
            context_length: req(keys::CONTEXT_LENGTH)?,
            n_embd,
            n_layer,
            n_ff: req(keys::FEED_FORWARD_LENGTH)?,
            n_head,
            n_head_kv,
            head_dim_k,
            head_dim_v,
            rope_dim,
            rope_freq_base: g.get_f32(&key(keys::ROPE_FREQ_BASE))?.unwrap_or(default_base),
            rms_eps: g.get_f32(&key(keys::LAYERNORM_RMS_EPS))?.unwrap_or(1e-5),
            sliding_window: g.get_u32(&key(keys::SLIDING_WINDOW))?,
            attn_softcap: g.get_f32(&key(keys::ATTN_LOGIT_SOFTCAPPING))?,
            final_softcap: g.get_f32(&key(keys::FINAL_LOGIT_SOFTCAPPING))?,
            n_vocab,
        })
    }
}
