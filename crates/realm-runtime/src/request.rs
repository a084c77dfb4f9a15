//! What a caller asks of one generation, in one serde type: the CLI, the browser binding and
//! the serving engine all read their options into [`RequestOptions`].

use serde::{Deserialize, Serialize};

use realm_grammar::Spec;
use realm_sampling::SamplingParams;

use crate::error::{Result, RuntimeError};

/// Most stop strings one request may give.
pub const MAX_STOP_STRINGS: usize = 16;
/// Longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 256;
/// Most alternatives [`RequestOptions::logprobs`] may ask for (OpenAI's limit).
pub const MAX_LOGPROBS: usize = 20;

/// How to generate. Every field is optional; `None` keeps the default (llama.cpp's sampling
/// defaults, generation until the context is full). Serializes with these names; an unknown
/// field is an error, so a typo does not pass silently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestOptions {
    /// Most tokens to generate; `Some(0)` generates none (the prompt is still evaluated).
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_k: Option<u32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub penalty_last_n: Option<usize>,
    /// The sampler's seed ([`realm_sampling::DEFAULT_SEED`] when `None`).
    pub seed: Option<u64>,
    /// Text that ends the answer when generated (not part of the answer).
    pub stop: Vec<String>,
    /// Render special tokens (e.g. `<|im_end|>`) in the text.
    pub special_text: bool,
    /// Keep generating past end-of-generation tokens (benchmarks; llama.cpp's `--ignore-eos`).
    pub ignore_eog: bool,
    /// Report each generated token's log-probability and the `n` most likely alternatives
    /// (`Some(0)`: the token's alone), from the model's logits before sampling filters (as
    /// vLLM reports them). At most [`MAX_LOGPROBS`].
    pub logprobs: Option<usize>,
    /// What the answer must match (a JSON schema, a regular expression, a grammar): tokens
    /// that would break it are masked out before sampling, and the answer ends once it is
    /// complete.
    pub constraint: Option<Spec>,
}

impl RequestOptions {
    /// Greedy decoding, every other option at its default.
    pub fn greedy() -> RequestOptions {
        RequestOptions { temperature: Some(0.0), ..RequestOptions::default() }
    }

    /// The sampling parameters these options give.
    pub fn sampling(&self) -> SamplingParams {
        let d = SamplingParams::default();
        SamplingParams {
            temperature: self.temperature.unwrap_or(d.temperature),
            top_k: self.top_k.unwrap_or(d.top_k),
            top_p: self.top_p.unwrap_or(d.top_p),
            min_p: self.min_p.unwrap_or(d.min_p),
            repeat_penalty: self.repeat_penalty.unwrap_or(d.repeat_penalty),
            presence_penalty: self.presence_penalty.unwrap_or(d.presence_penalty),
            frequency_penalty: self.frequency_penalty.unwrap_or(d.frequency_penalty),
            penalty_last_n: self.penalty_last_n.unwrap_or(d.penalty_last_n),
            seed: self.seed.unwrap_or(d.seed),
        }
    }

    /// Whether only the argmax of the logits is needed (greedy, no penalties, no logprobs,
    /// no constraint).
    pub fn argmax_only(&self) -> bool {
        let s = self.sampling();
        s.is_greedy() && !s.has_penalties() && self.logprobs.is_none() && self.constraint.is_none()
    }

    /// Checks every value: sampling parameters in range, stop strings non-empty and within
    /// [`MAX_STOP_STRINGS`] × [`MAX_STOP_BYTES`], at most [`MAX_LOGPROBS`] alternatives.
    pub fn validate(&self) -> Result<()> {
        self.sampling().validate()?;
        if let Some(n) = self.logprobs.filter(|&n| n > MAX_LOGPROBS) {
            return Err(RuntimeError::Invalid(format!("logprobs {n} (at most {MAX_LOGPROBS})")));
        }
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(RuntimeError::Invalid(format!(
                "{} stop strings (at most {MAX_STOP_STRINGS})",
                self.stop.len()
            )));
        }
        if let Some(s) = self.stop.iter().find(|s| s.is_empty() || s.len() > MAX_STOP_BYTES) {
            return Err(RuntimeError::Invalid(format!(
                "a stop string of {} bytes (1 to {MAX_STOP_BYTES})",
                s.len()
            )));
        }
        Ok(())
    }
}

/// What to generate: the prompt's token ids and the options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub options: RequestOptions,
}

impl GenerateRequest {
    pub fn new(prompt: Vec<u32>, options: RequestOptions) -> GenerateRequest {
        GenerateRequest { prompt, options }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_llama_cpps_and_fields_are_named() {
        let o = RequestOptions::default();
        assert_eq!(o.sampling(), SamplingParams::default());
        let o: RequestOptions = serde_json::from_str(
            r#"{"max_tokens": 8, "temperature": 0, "seed": 7, "stop": ["\n"]}"#,
        )
        .unwrap();
        assert_eq!(o.max_tokens, Some(8));
        assert!(o.sampling().is_greedy() && o.argmax_only());
        assert_eq!(o.sampling().seed, 7);
        assert!(serde_json::from_str::<RequestOptions>(r#"{"topK": 3}"#).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = [
            RequestOptions { temperature: Some(f32::NAN), ..Default::default() },
            RequestOptions { top_p: Some(0.0), ..Default::default() },
            RequestOptions { min_p: Some(2.0), ..Default::default() },
            RequestOptions { repeat_penalty: Some(-1.0), ..Default::default() },
            RequestOptions { stop: vec![String::new()], ..Default::default() },
            RequestOptions { stop: vec!["x".repeat(MAX_STOP_BYTES + 1)], ..Default::default() },
            RequestOptions { stop: vec!["x".into(); MAX_STOP_STRINGS + 1], ..Default::default() },
            RequestOptions { logprobs: Some(MAX_LOGPROBS + 1), ..Default::default() },
        ];
        for o in bad {
            assert!(o.validate().is_err(), "{o:?}");
        }
        assert!(RequestOptions::greedy().validate().is_ok());
    }
}
