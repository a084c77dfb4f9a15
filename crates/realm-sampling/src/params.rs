//! Sampling parameters, their llama.cpp defaults and their validation.

use serde::{Deserialize, Serialize};

use crate::SamplingError;

/// The default seed: llama.cpp's `LLAMA_DEFAULT_SEED` (`0xFFFFFFFF`).
///
/// llama.cpp reads that value as "pick a random seed"; Realm does not. It is an ordinary,
/// fixed seed here, so a default sampler is reproducible. A runtime that wants fresh
/// randomness per request chooses the seed itself.
pub const DEFAULT_SEED: u64 = 0xFFFF_FFFF;

/// How to turn logits into a token.
///
/// Stages run in llama.cpp's default chain order (`common/sampling.cpp`):
/// penalties → top-k → top-p → min-p → temperature → softmax → draw. Each stage has an
/// "off" value, listed per field. `Default` is llama.cpp's `common_params_sampling`.
///
/// Serializes with these field names; a missing field takes its default and an unknown one
/// is an error (so a typo such as `topK` does not pass silently). Deserializing does not
/// validate: [`crate::Sampler::new`] does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    /// Softmax temperature, `>= 0`. `0` (or any value `<= 0` in llama.cpp) means greedy:
    /// the argmax of the penalized logits, ties to the lowest token id. Default `0.8`.
    pub temperature: f32,
    /// Keep the `top_k` highest logits; `0` = off. Default `40`.
    pub top_k: u32,
    /// Keep the smallest set of most probable tokens whose probability mass reaches
    /// `top_p`, in `(0, 1]`; `1` = off. Default `0.95`.
    pub top_p: f32,
    /// Keep tokens whose probability is at least `min_p` times the top token's, in `[0, 1]`;
    /// `0` = off. Default `0.05`.
    pub min_p: f32,
    /// Repetition penalty, `> 0`: a recent token's logit is divided by it when positive and
    /// multiplied by it when `<= 0`; `1` = off. Default `1`.
    pub repeat_penalty: f32,
    /// Subtracted once from the logit of every token seen in the window; `0` = off.
    /// Default `0`.
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per occurrence in the window; `0` = off.
    /// Default `0`.
    pub frequency_penalty: f32,
    /// How many of the most recently accepted tokens the penalties look at; `0` disables
    /// the penalties. Default `64`.
    pub penalty_last_n: usize,
    /// Seed of the sampler's random number generator. Default [`DEFAULT_SEED`].
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            seed: DEFAULT_SEED,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding: temperature `0`, every filter off, no penalties.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, ..Self::default() }
    }

    /// Whether these parameters pick the argmax instead of drawing (`temperature <= 0`).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// Whether any of the penalties would change a logit.
    pub fn has_penalties(&self) -> bool {
        self.penalty_last_n > 0
            && (self.repeat_penalty != 1.0
                || self.frequency_penalty != 0.0
                || self.presence_penalty != 0.0)
    }

    /// Checks every field against its domain; the first violation is returned.
    pub fn validate(&self) -> Result<(), SamplingError> {
        check("temperature", self.temperature, "a finite value >= 0", |v| v >= 0.0)?;
        check("top_p", self.top_p, "a value in (0, 1]", |v| v > 0.0 && v <= 1.0)?;
        check("min_p", self.min_p, "a value in [0, 1]", |v| (0.0..=1.0).contains(&v))?;
        check("repeat_penalty", self.repeat_penalty, "a finite value > 0", |v| v > 0.0)?;
        check("presence_penalty", self.presence_penalty, "a finite value", |_| true)?;
        check("frequency_penalty", self.frequency_penalty, "a finite value", |_| true)?;
        Ok(())
    }
}

/// Rejects NaN and infinities, then applies the field's own rule.
fn check(
    name: &'static str,
    value: f32,
    expected: &'static str,
    ok: impl Fn(f32) -> bool,
) -> Result<(), SamplingError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(SamplingError::InvalidParam { op: "SamplingParams::validate", name, value, expected })
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_llama_cpp_defaults_and_valid() {
        let p = SamplingParams::default();
        assert_eq!((p.top_k, p.penalty_last_n, p.seed), (40, 64, 0xFFFF_FFFF));
        assert_eq!((p.temperature, p.top_p, p.min_p), (0.8, 0.95, 0.05));
        assert_eq!((p.repeat_penalty, p.presence_penalty, p.frequency_penalty), (1.0, 0.0, 0.0));
        assert!(p.validate().is_ok() && !p.is_greedy() && !p.has_penalties());
        let g = SamplingParams::greedy();
        assert!(g.validate().is_ok() && g.is_greedy());
    }

    #[test]
    fn invalid_values_name_the_field() {
        let base = SamplingParams::default();
        let cases: [(&str, SamplingParams); 10] = [
            ("temperature", SamplingParams { temperature: -0.1, ..base }),
            ("temperature", SamplingParams { temperature: f32::NAN, ..base }),
            ("temperature", SamplingParams { temperature: f32::INFINITY, ..base }),
            ("top_p", SamplingParams { top_p: 0.0, ..base }),
            ("top_p", SamplingParams { top_p: 1.5, ..base }),
            ("min_p", SamplingParams { min_p: -0.01, ..base }),
            ("min_p", SamplingParams { min_p: 1.01, ..base }),
            ("repeat_penalty", SamplingParams { repeat_penalty: 0.0, ..base }),
            ("presence_penalty", SamplingParams { presence_penalty: f32::NAN, ..base }),
            ("frequency_penalty", SamplingParams { frequency_penalty: f32::NEG_INFINITY, ..base }),
        ];
        for (field, p) in cases {
            match p.validate() {
                Err(SamplingError::InvalidParam { name, .. }) => assert_eq!(name, field),
                other => panic!("{field}: expected InvalidParam, got {other:?}"),
            }
        }
        // Edges that are allowed.
        let ok = SamplingParams { temperature: 0.0, top_p: 1.0, min_p: 1.0, ..base };
        assert!(ok.validate().is_ok());
        let neg = SamplingParams { presence_penalty: -1.0, frequency_penalty: -0.5, ..base };
        assert!(neg.validate().is_ok());
    }
}
