//! The one error type of this crate.

/// What went wrong when building a [`crate::Sampler`] or sampling from logits.
///
/// Every variant names the operation (`"SamplingParams::validate"`, `"Sampler::new"`,
/// `"sample"`, `"candidates"`), so a message read far from the call site still says what failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplingError {
    /// A sampling parameter outside its domain (NaN, infinite, negative temperature, ...).
    #[error("{op}: {name} = {value} is invalid, expected {expected}")]
    InvalidParam {
        /// The operation that checked it.
        op: &'static str,
        /// The field of [`crate::SamplingParams`].
        name: &'static str,
        /// The value that was given.
        value: f32,
        /// The accepted domain, in words.
        expected: &'static str,
    },

    /// A vocabulary size of zero, or one whose token ids do not fit `u32`.
    #[error("{op}: n_vocab = {n_vocab} is invalid, expected 1..=4294967295")]
    InvalidVocabSize {
        /// The operation that was asked for.
        op: &'static str,
        /// The size that was given.
        n_vocab: usize,
    },

    /// The scratch buffer for `n_vocab` candidates could not be reserved.
    #[error("{op}: cannot reserve scratch memory for {n_vocab} candidates")]
    ScratchAlloc {
        /// The operation that was asked for.
        op: &'static str,
        /// The vocabulary size that was asked for.
        n_vocab: usize,
    },

    /// An empty logits slice.
    #[error("{op}: the logits slice is empty")]
    EmptyLogits {
        /// The operation that was asked for.
        op: &'static str,
    },

    /// A logits slice whose length is not the sampler's vocabulary size.
    #[error("{op}: got {actual} logits, but the sampler was built for n_vocab = {expected}")]
    LogitsLenMismatch {
        /// The operation that was asked for.
        op: &'static str,
        /// The sampler's `n_vocab`.
        expected: usize,
        /// The length of the slice that was passed.
        actual: usize,
    },

    /// A NaN or `+inf` logit. (`-inf` is allowed: it bans the token.)
    #[error("{op}: the logit of token {token} is {value}; logits must be finite or -inf")]
    NonFiniteLogit {
        /// The operation that was asked for.
        op: &'static str,
        /// The token whose logit it is.
        token: u32,
        /// The offending value.
        value: f32,
    },

    /// The repetition, frequency or presence penalty turned a logit into NaN or `+inf`.
    #[error("{op}: the penalties turned the logit of token {token} into {value}")]
    PenaltyOverflow {
        /// The operation that was asked for.
        op: &'static str,
        /// The penalized token.
        token: u32,
        /// The value after the penalties.
        value: f32,
    },

    /// Every logit is `-inf` (before or after the penalties): no token can be drawn.
    #[error("{op}: every logit is -inf, so there is no token to choose")]
    NoCandidates {
        /// The operation that was asked for.
        op: &'static str,
    },
}
