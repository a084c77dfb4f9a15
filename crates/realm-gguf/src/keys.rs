//! Every metadata key string and tensor name Realm reads or writes, in one place.
//!
//! Names follow llama.cpp `src/llama-arch.cpp` (commit 0c1e570): `LLM_KV_NAMES` and
//! `LLM_TENSOR_NAMES`. Keys that start with `{arch}.` are built with [`arch_key`].

// general.*
pub const GENERAL_ARCHITECTURE: &str = "general.architecture";
pub const GENERAL_NAME: &str = "general.name";
pub const GENERAL_ALIGNMENT: &str = "general.alignment";
pub const GENERAL_FILE_TYPE: &str = "general.file_type";
pub const GENERAL_QUANTIZATION_VERSION: &str = "general.quantization_version";

// {arch}.* suffixes
pub const CONTEXT_LENGTH: &str = "context_length";
pub const EMBEDDING_LENGTH: &str = "embedding_length";
pub const BLOCK_COUNT: &str = "block_count";
pub const FEED_FORWARD_LENGTH: &str = "feed_forward_length";
pub const VOCAB_SIZE: &str = "vocab_size";
pub const HEAD_COUNT: &str = "attention.head_count";
pub const HEAD_COUNT_KV: &str = "attention.head_count_kv";
pub const KEY_LENGTH: &str = "attention.key_length";
pub const VALUE_LENGTH: &str = "attention.value_length";
pub const LAYERNORM_RMS_EPS: &str = "attention.layer_norm_rms_epsilon";
pub const SLIDING_WINDOW: &str = "attention.sliding_window";
pub const ROPE_DIMENSION_COUNT: &str = "rope.dimension_count";
pub const ROPE_FREQ_BASE: &str = "rope.freq_base";
pub const ROPE_SCALING_TYPE: &str = "rope.scaling.type";
pub const ROPE_SCALING_FACTOR: &str = "rope.scaling.factor";
pub const ROPE_SCALING_ORIG_CTX: &str = "rope.scaling.original_context_length";
pub const ATTN_LOGIT_SOFTCAPPING: &str = "attn_logit_softcapping";
pub const FINAL_LOGIT_SOFTCAPPING: &str = "final_logit_softcapping";
pub const EXPERT_COUNT: &str = "expert_count";

/// `"{arch}.{suffix}"`, e.g. `arch_key("llama", CONTEXT_LENGTH)` = `"llama.context_length"`.
pub fn arch_key(arch: &str, suffix: &str) -> String {
    format!("{arch}.{suffix}")
}

// tokenizer.*
pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
pub const TOKENIZER_PRE: &str = "tokenizer.ggml.pre";
pub const TOKENIZER_TOKENS: &str = "tokenizer.ggml.tokens";
pub const TOKENIZER_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub const TOKENIZER_SCORES: &str = "tokenizer.ggml.scores";
pub const TOKENIZER_MERGES: &str = "tokenizer.ggml.merges";
pub const TOKENIZER_BOS_ID: &str = "tokenizer.ggml.bos_token_id";
pub const TOKENIZER_EOS_ID: &str = "tokenizer.ggml.eos_token_id";
pub const TOKENIZER_EOT_ID: &str = "tokenizer.ggml.eot_token_id";
pub const TOKENIZER_EOM_ID: &str = "tokenizer.ggml.eom_token_id";
pub const TOKENIZER_UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
pub const TOKENIZER_SEP_ID: &str = "tokenizer.ggml.seperator_token_id";
pub const TOKENIZER_PAD_ID: &str = "tokenizer.ggml.padding_token_id";
pub const TOKENIZER_MASK_ID: &str = "tokenizer.ggml.mask_token_id";
pub const TOKENIZER_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
pub const TOKENIZER_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
pub const TOKENIZER_ADD_SEP: &str = "tokenizer.ggml.add_sep_token";
pub const TOKENIZER_ADD_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
pub const TOKENIZER_REMOVE_EXTRA_WS: &str = "tokenizer.ggml.remove_extra_whitespaces";
pub const TOKENIZER_CHAT_TEMPLATE: &str = "tokenizer.chat_template";
pub const TOKENIZER_FIM_PRE_ID: &str = "tokenizer.ggml.fim_pre_token_id";
pub const TOKENIZER_FIM_SUF_ID: &str = "tokenizer.ggml.fim_suf_token_id";
pub const TOKENIZER_FIM_MID_ID: &str = "tokenizer.ggml.fim_mid_token_id";
pub const TOKENIZER_FIM_PAD_ID: &str = "tokenizer.ggml.fim_pad_token_id";
pub const TOKENIZER_FIM_REP_ID: &str = "tokenizer.ggml.fim_rep_token_id";
pub const TOKENIZER_FIM_SEP_ID: &str = "tokenizer.ggml.fim_sep_token_id";
/// Older spellings of the FIM ids (read after the `fim_*` ones, as llama.cpp does).
pub const TOKENIZER_PREFIX_ID: &str = "tokenizer.ggml.prefix_token_id";
pub const TOKENIZER_SUFFIX_ID: &str = "tokenizer.ggml.suffix_token_id";
pub const TOKENIZER_MIDDLE_ID: &str = "tokenizer.ggml.middle_token_id";

/// Tokenizer metadata keys copied when a synthetic model borrows another model's vocabulary.
pub fn is_tokenizer_key(key: &str) -> bool {
    key.starts_with("tokenizer.")
}

/// Tensor names (llama family). Per-layer names take the block index.
pub mod tensor {
    pub const TOKEN_EMBD: &str = "token_embd.weight";
    pub const OUTPUT_NORM: &str = "output_norm.weight";
    pub const OUTPUT: &str = "output.weight";
    pub const ROPE_FREQS: &str = "rope_freqs.weight";

    /// Per-block tensor kinds; [`BlockTensor::name`] gives `blk.{i}.{kind}.weight`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BlockTensor {
        AttnNorm,
        AttnQ,
        AttnK,
        AttnV,
        AttnOutput,
        AttnQNorm,
        AttnKNorm,
        AttnPostNorm,
        FfnNorm,
        FfnGate,
        FfnUp,
        FfnDown,
        FfnPostNorm,
    }

    impl BlockTensor {
        pub fn stem(self) -> &'static str {
            use BlockTensor::*;
            match self {
                AttnNorm => "attn_norm",
                AttnQ => "attn_q",
                AttnK => "attn_k",
                AttnV => "attn_v",
                AttnOutput => "attn_output",
                AttnQNorm => "attn_q_norm",
                AttnKNorm => "attn_k_norm",
                AttnPostNorm => "post_attention_norm",
                FfnNorm => "ffn_norm",
                FfnGate => "ffn_gate",
                FfnUp => "ffn_up",
                FfnDown => "ffn_down",
                FfnPostNorm => "post_ffw_norm",
            }
        }

        pub fn name(self, block: u32) -> String {
            format!("blk.{block}.{}.weight", self.stem())
        }
    }
}
