//! [`Sampler`]: the chain state (history, RNG, scratch) and its entry points.

use std::collections::VecDeque;

use crate::filters::{Candidate, CandidateSet};
use crate::math::ln;
use crate::rng::Xoshiro256StarStar;
use crate::{SamplingError, SamplingParams};

/// History and window buffers are reserved up front up to this many tokens; a larger
/// `penalty_last_n` grows them as tokens arrive instead of trusting the number.
const MAX_HISTORY_PREALLOC: usize = 1 << 16;

/// Turns one logits vector at a time into a token, with llama.cpp's default chain:
/// penalties → top-k → top-p → min-p → temperature → softmax → draw.
///
/// One `Sampler` per sequence: it owns the penalty history (fed by [`Sampler::accept`]),
/// the seeded RNG and a scratch buffer of `n_vocab` candidates, reserved by `new` and reused
/// by every call, so `sample` does not allocate. (Only a `penalty_last_n` above 65,536
/// grows the history buffers, while the history fills up.) `Clone` forks a sequence: the
/// copy has the same history and RNG state.
///
/// Determinism: the same params, seed, logits and accepted tokens give the same tokens on
/// every target (wasm32 included). The RNG is xoshiro256**, softmax uses a portable `exp`,
/// sums are `f64` in a fixed order, and ties rank by the lower token id.
///
/// Logits: `-inf` bans a token. NaN or `+inf` is [`SamplingError::NonFiniteLogit`]; if
/// every logit is `-inf` the call fails with [`SamplingError::NoCandidates`].
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    n_vocab: usize,
    /// ln(min_p), computed once (`-inf` when min-p is off).
    ln_min_p: f64,
    rng: Xoshiro256StarStar,
    /// The last `penalty_last_n` accepted tokens, oldest first.
    history: VecDeque<u32>,
    /// Scratch: `history` sorted, to count occurrences without a map.
    window: Vec<u32>,
    set: CandidateSet,
}

impl Sampler {
    /// Validates `params` and reserves the scratch for `n_vocab` candidates.
    pub fn new(params: SamplingParams, n_vocab: usize) -> Result<Self, SamplingError> {
        const OP: &str = "Sampler::new";
        params.validate()?;
        if n_vocab == 0 || u32::try_from(n_vocab).is_err() {
            return Err(SamplingError::InvalidVocabSize { op: OP, n_vocab });
        }
        // The candidates' scratch (`n_vocab` entries: 2 MB for a 262k vocabulary) is reserved
        // at the first `sample`, so a sampler that waits (a queued request) costs nothing.
        let set = CandidateSet::default();
        let keep = params.penalty_last_n.min(MAX_HISTORY_PREALLOC);
        let ln_min_p =
            if params.min_p > 0.0 { ln(f64::from(params.min_p)) } else { f64::NEG_INFINITY };
        Ok(Self {
            params,
            n_vocab,
            ln_min_p,
            rng: Xoshiro256StarStar::new(params.seed),
            history: VecDeque::with_capacity(keep),
            window: Vec::with_capacity(keep),
            set,
        })
    }

    /// The parameters this sampler was built with.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The vocabulary size every logits slice must have.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// Picks the next token from `logits` (`[n_vocab]`, one row of the model's output).
    ///
    /// Greedy (`temperature <= 0`): the argmax of the penalized logits, ties to the lowest
    /// id; the RNG is not advanced. Otherwise the filters run, then one uniform draw from
    /// softmax(logit / temperature) over what is left; no draw is spent when one candidate
    /// is left. Does not record the token: call [`Sampler::accept`] with the token that is
    /// actually appended (it may differ, e.g. under a grammar or a forced token).
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, SamplingError> {
        const OP: &str = "sample";
        self.prepare(OP, logits)?;
        let picked = if self.params.is_greedy() {
            self.set.argmax()
        } else {
            self.filter();
            let u = if self.set.items.len() > 1 { self.rng.next_f64() } else { 0.0 };
            self.set.draw(self.params.temperature, u)
        };
        picked.ok_or(SamplingError::NoCandidates { op: OP })
    }

    /// The candidates that survive penalties, top-k, top-p and min-p (whatever the
    /// temperature), best first: logit descending, ties to the lower id. Logits are
    /// penalized, not divided by the temperature. Does not advance the RNG.
    ///
    /// Useful for log-probabilities and for checking the filters; `sample` does not need it.
    pub fn candidates(&mut self, logits: &[f32]) -> Result<&[Candidate], SamplingError> {
        self.prepare("candidates", logits)?;
        self.filter();
        self.set.sort();
        Ok(&self.set.items)
    }

    /// Records `token` as generated, for the penalties. Keeps the last `penalty_last_n`
    /// tokens; does nothing when `penalty_last_n == 0`. Ids `>= n_vocab` are kept in the
    /// window but penalize nothing.
    pub fn accept(&mut self, token: u32) {
        let n = self.params.penalty_last_n;
        if n == 0 {
            return;
        }
        if self.history.len() >= n {
            self.history.pop_front();
        }
        self.history.push_back(token);
    }

    /// Forgets the history and restarts the RNG from the seed: the sampler then behaves
    /// exactly as a new one with the same params.
    pub fn reset(&mut self) {
        self.history.clear();
        self.rng = Xoshiro256StarStar::new(self.params.seed);
    }

    /// Checks `logits` and loads them penalized, without banned tokens.
    fn prepare(&mut self, op: &'static str, logits: &[f32]) -> Result<(), SamplingError> {
        if logits.is_empty() {
            return Err(SamplingError::EmptyLogits { op });
        }
        if logits.len() != self.n_vocab {
            return Err(SamplingError::LogitsLenMismatch {
                op,
                expected: self.n_vocab,
                actual: logits.len(),
            });
        }
        if self.set.items.capacity() < self.n_vocab {
            let n_vocab = self.n_vocab;
            let more = n_vocab - self.set.items.len();
            self.set
                .items
                .try_reserve_exact(more)
                .map_err(|_| SamplingError::ScratchAlloc { op, n_vocab })?;
        }
        self.window.clear();
        if self.params.has_penalties() {
            self.window.extend(self.history.iter().copied());
            self.window.sort_unstable();
        }
        self.set.load(op, logits, &self.window, &self.params)
    }

    /// top-k → top-p → min-p, in llama.cpp's default order.
    fn filter(&mut self) {
        self.set.top_k(self.params.top_k);
        self.set.top_p(self.params.top_p);
        self.set.min_p(self.ln_min_p);
    }
}
