//! Per-architecture model configuration, derived from [`HParams`] and llama.cpp's conventions
//! (`src/llama-model.cpp` load_hparams and `src/models/*.cpp`, commit 0c1e570).

use realm_core::{Activation, RopeStyle};
use realm_gguf::{Arch, Gguf, HParams};

use crate::error::Result;

/// Everything the forward pass needs to know about a model's shape and numerics.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub hparams: HParams,
    pub n_vocab: usize,
    pub rope_style: RopeStyle,
    pub activation: Activation,
    /// Multiplier of the token embeddings (gemma: `sqrt(n_embd)`).
    pub embed_scale: Option<f32>,
    /// Multiplier of `q·k`.
    pub attn_scale: f32,
    /// Per layer: the sliding window, if the layer is a local-attention layer.
    pub layer_window: Vec<Option<usize>>,
    /// Per layer: rope base frequency.
    pub layer_rope_base: Vec<f32>,
    /// Gemma: RMSNorm after the attention and FFN blocks (before the residual add).
    pub post_norms: bool,
    /// Qwen3/Gemma3: per-head RMSNorm of q and k.
    pub qk_norm: bool,
    pub final_softcap: Option<f32>,
}

/// The FFN activation of an architecture.
pub fn ffn_activation(arch: Arch) -> Activation {
    match arch {
        Arch::Gemma3 => Activation::GeluTanh,
        _ => Activation::Silu,
    }
}

impl ModelConfig {
    pub fn from_gguf(g: &Gguf<'_>, n_vocab: usize) -> Result<ModelConfig> {
        let h = HParams::from_gguf(g)?;
        let n_layer = h.n_layer as usize;
        let gemma = h.arch == Arch::Gemma3;
        let rope_style = match h.arch {
            Arch::Llama | Arch::Mistral => RopeStyle::Normal,
            Arch::Qwen2 | Arch::Qwen3 | Arch::Gemma3 => RopeStyle::Neox,
        };
        // Gemma 3: 5 sliding-window layers then 1 global layer, repeating (pattern 6); local
        // layers use rope base 10000 (llama.cpp hardcodes rope_freq_base_train_swa).
        let local = |il: usize| gemma && h.sliding_window.is_some_and(|w| w > 0) && il % 6 < 5;
        let layer_window = (0..n_layer)
            .map(|il| if local(il) { h.sliding_window.map(|w| w as usize) } else { None })
            .collect();
        let layer_rope_base =
            (0..n_layer).map(|il| if local(il) { 10_000.0 } else { h.rope_freq_base }).collect();
        let attn_scale = if gemma && h.n_layer == 62 {
            // Gemma 3 27B scales by the model width per head, not the head size.
            1.0 / ((h.n_embd / h.n_head) as f32).sqrt()
        } else {
            1.0 / (h.head_dim_k as f32).sqrt()
        };
        Ok(ModelConfig {
            n_vocab,
            rope_style,
            activation: ffn_activation(h.arch),
            embed_scale: gemma.then(|| (h.n_embd as f32).sqrt()),
            attn_scale,
            layer_window,
            layer_rope_base,
            post_norms: gemma,
            qk_norm: matches!(h.arch, Arch::Qwen3 | Arch::Gemma3),
            // Gemma 3 with sliding windows (every released size) applies no final soft-cap.
            final_softcap: if gemma && h.sliding_window.is_some() { None } else { h.final_softcap },
            hparams: h,
        })
    }

    pub fn n_layer(&self) -> usize {
        self.hparams.n_layer as usize
    }

    pub fn n_embd(&self) -> usize {
        self.hparams.n_embd as usize
    }

    pub fn q_dim(&self) -> usize {
        (self.hparams.n_head * self.hparams.head_dim_k) as usize
    }

    pub fn kv_dim(&self) -> usize {
        (self.hparams.n_head_kv * self.hparams.head_dim_k) as usize
    }

    pub fn v_dim(&self) -> usize {
        (self.hparams.n_head_kv * self.hparams.head_dim_v) as usize
    }

    pub fn attn_out_dim(&self) -> usize {
        (self.hparams.n_head * self.hparams.head_dim_v) as usize
    }
}
