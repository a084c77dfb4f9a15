//! The token loop of one sequence, shared by [`crate::Session`] and the serving engine's
//! scheduler: pick the next token (argmax or the sampler), record it, then end-of-generation
//! → detokenize (UTF-8-safe) → stop strings (text held back while it may start one) → event.

use std::sync::Arc;

use realm_grammar::{Constraint, GrammarError, Grammars};
use realm_sampling::{Sampler, StopScan, StopStrings};
use realm_tokenizer::{StreamDecoder, Tokenizer};

use crate::error::Result;
use crate::request::RequestOptions;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token.
    Eog,
    /// A stop string matched (it is not part of the text).
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The context window is full.
    ContextFull,
    /// Cancelled by the caller.
    Cancelled,
}

impl FinishReason {
    /// OpenAI's `finish_reason` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Eog | FinishReason::Stop => "stop",
            FinishReason::Length | FinishReason::ContextFull => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// A generated token's log-probability and the most likely alternatives, best first (ties
/// to the lower id), from the log-softmax of the model's logits.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprobs {
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

impl TokenLogprobs {
    /// Of token `id` and the `n` best of `logits`.
    pub(crate) fn of(logits: &[f32], id: u32, n: usize) -> TokenLogprobs {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = logits.iter().map(|&v| f64::from(v - max).exp()).sum::<f64>().ln() as f32 + max;
        let lp = |i: usize| logits.get(i).map_or(f32::NEG_INFINITY, |&v| v - lse);
        let mut top: Vec<u32> = Vec::with_capacity(n + 1);
        for (i, &v) in logits.iter().enumerate() {
            if top.len() == n && top.last().is_none_or(|&t| logits[t as usize] >= v) {
                continue;
            }
            let at = top.partition_point(|&t| logits[t as usize] >= v);
            top.insert(at, i as u32);
            top.truncate(n);
        }
        TokenLogprobs {
            logprob: lp(id as usize),
            top: top.into_iter().map(|t| (t, lp(t as usize))).collect(),
        }
    }
}

/// A streaming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A sampled token and the text that became complete with it (may be empty: a partial
    /// UTF-8 character, or text held back because it may start a stop string), with its
    /// log-probabilities when they were asked for.
    Token { id: u32, text: &'a str, logprobs: Option<&'a TokenLogprobs> },
    /// Text released when generation ends without a stop string (held-back bytes).
    Flush { text: &'a str },
}

/// What an evaluation hands the loop: every logit of the row, or its argmax, or both.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Next<'a> {
    Logits(&'a [f32]),
    Id(u32),
    /// The row's logits and their argmax, known already (not scanned for again).
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    Scored {
        logits: &'a [f32],
        argmax: u32,
    },
}

/// What a loop needs of its row after a step.
#[cfg(not(target_family = "wasm"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// The argmax alone.
    Argmax,
    /// The argmax, and the logits only when the constraint refuses it (greedy decoding under
    /// a constraint: [`TokenLoop::allows_best`], then [`Next::Scored`] if refused).
    Checked,
    /// Every logit.
    Logits,
}

/// One sequence's generation state.
pub(crate) struct TokenLoop {
    sampler: Sampler,
    stops: StopStrings,
    decoder: StreamDecoder,
    /// The answer's text so far; `text[..emitted]` has been sent in events.
    text: String,
    emitted: usize,
    /// Generated tokens, the end-of-generation token included.
    tokens: Vec<u32>,
    max_tokens: usize,
    ignore_eog: bool,
    argmax_only: bool,
    /// Alternatives to report per token, when asked.
    logprobs: Option<usize>,
    /// The last picked token's log-probabilities.
    last_logprobs: Option<TokenLogprobs>,
    /// What the answer must match, and the logits with its mask applied (scratch).
    constraint: Option<Constraint>,
    masked: Vec<f32>,
}

impl TokenLoop {
    /// A loop for `opts` after `prompt` (whose tokens the penalties see). A constraint is
    /// compiled here (an invalid one is an error before any work), with `grammars` (the
    /// model's tables, built on first use).
    pub(crate) fn new(
        opts: &RequestOptions,
        prompt: &[u32],
        n_vocab: usize,
        grammars: &dyn Fn() -> Result<Arc<Grammars>>,
    ) -> Result<TokenLoop> {
        opts.validate()?;
        let constraint = match &opts.constraint {
            Some(spec) => Some(grammars()?.compile(spec)?),
            None => None,
        };
        let mut sampler = Sampler::new(opts.sampling(), n_vocab)?;
        for &t in prompt {
            sampler.accept(t);
        }
        Ok(TokenLoop {
            sampler,
            stops: StopStrings::new(opts.stop.clone()),
            decoder: StreamDecoder::new(opts.special_text),
            text: String::new(),
            emitted: 0,
            tokens: Vec::new(),
            max_tokens: opts.max_tokens.unwrap_or(usize::MAX),
            ignore_eog: opts.ignore_eog,
            argmax_only: opts.argmax_only(),
            logprobs: opts.logprobs,
            last_logprobs: None,
            constraint,
            masked: Vec::new(),
        })
    }

    /// Whether this loop can take drafted tokens: no log-probabilities and no constraint.
    /// Each draft position is picked as without a draft (the argmax, or the sampler's draw
    /// in the same order, so with the same random numbers), and the draft kept while the
    /// picks equal it: the output is the same with drafts as without, greedy or sampled.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn can_draft(&self) -> bool {
        self.logprobs.is_none() && self.constraint.is_none()
    }

    /// Tokens it may still generate.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn remaining(&self) -> usize {
        self.max_tokens.saturating_sub(self.tokens.len())
    }

    /// Greedy decoding without penalties: the pick is the best token (the best allowed one).
    fn plain_greedy(&self) -> bool {
        let p = self.sampler.params();
        p.is_greedy() && !p.has_penalties()
    }

    /// Takes the constraint out to compute its next mask on another thread while the step
    /// runs ([`TokenLoop::put_constraint`] gives it back), when the pick will need the whole
    /// mask: sampling does; plain greedy decoding mostly checks its one best token instead.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn take_constraint(&mut self) -> Option<Constraint> {
        if self.plain_greedy() {
            return None;
        }
        self.constraint.take()
    }

    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn put_constraint(&mut self, c: Option<Constraint>) {
        if c.is_some() {
            self.constraint = c;
        }
    }

    /// Whether the argmax of the logits is all this loop needs (greedy, no penalties).
    pub(crate) fn argmax_only(&self) -> bool {
        self.argmax_only
    }

    /// What this loop needs of its row after a step.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn needs(&self) -> Needs {
        // (A greedy loop's constraint is never taken out for a step: `take_constraint`.)
        if self.argmax_only {
            Needs::Argmax
        } else if self.constraint.is_some() && self.plain_greedy() && self.logprobs.is_none() {
            Needs::Checked
        } else {
            Needs::Logits
        }
    }

    /// Whether the constraint allows `id`, the model's best token, next (checked alone,
    /// without the whole mask): then [`Next::Id`] is this loop's pick. Without a constraint,
    /// anything is allowed.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn allows_best(&mut self, id: u32) -> Result<bool> {
        match &mut self.constraint {
            Some(c) => Ok(c.check(id)?),
            None => Ok(true),
        }
    }

    /// Whether `max_tokens` have been generated.
    pub(crate) fn at_limit(&self) -> bool {
        self.tokens.len() >= self.max_tokens
    }

    pub(crate) fn into_output(self) -> (Vec<u32>, String) {
        (self.tokens, self.text)
    }

    /// The next token from an evaluation of the last position (and its log-probabilities,
    /// when asked: they need the logits, which [`TokenLoop::argmax_only`] says).
    /// With a constraint, the sampler sees the logits of allowed tokens only, and the token
    /// advances the constraint.
    pub(crate) fn pick(&mut self, next: Next<'_>) -> Result<u32> {
        let id = match next {
            Next::Id(id) => id,
            Next::Logits(logits) => self.pick_from(logits, None)?,
            Next::Scored { logits, argmax } => self.pick_from(logits, Some(argmax))?,
        };
        if let Some(c) = &mut self.constraint {
            c.commit(id)?;
        }
        Ok(id)
    }

    /// The pick from a row's logits, whose argmax may be `known` already.
    fn pick_from(&mut self, logits: &[f32], known: Option<u32>) -> Result<u32> {
        let plain_greedy = self.plain_greedy();
        let id = match &mut self.constraint {
            // Greedy: the best allowed token. Usually the best token of all is allowed
            // (checked alone, without the whole mask), else the allowed ones are scanned; the
            // logits are not copied.
            Some(c) if plain_greedy => match known.or_else(|| argmax(logits)) {
                Some(b) if c.check(b)? => b,
                _ => c
                    .masked_argmax(logits)?
                    .ok_or_else(|| GrammarError::Failed("no token is allowed next".into()))?,
            },
            Some(c) => {
                self.masked.clear();
                self.masked.extend_from_slice(logits);
                if c.apply(&mut self.masked)? == 0 {
                    return Err(GrammarError::Failed("no token is allowed next".into()).into());
                }
                self.sampler.sample(&self.masked)?
            }
            None => self.sampler.sample(logits)?,
        };
        self.last_logprobs = self.logprobs.map(|n| TokenLogprobs::of(logits, id, n));
        Ok(id)
    }

    /// Records `id` as generated (the penalties see it).
    pub(crate) fn record(&mut self, id: u32) {
        self.sampler.accept(id);
        self.tokens.push(id);
    }

    /// After [`TokenLoop::record`]: end-of-generation, then the token's text through the
    /// stop strings into an event. Returns why the answer ends with this token, if it does.
    pub(crate) fn emit(
        &mut self,
        tok: &Tokenizer,
        id: u32,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Option<FinishReason> {
        let complete = self.constraint.as_ref().is_some_and(Constraint::is_complete);
        if (!self.ignore_eog || complete) && tok.is_eog(id) {
            return Some(FinishReason::Eog);
        }
        self.text.push_str(&self.decoder.push(tok, id));
        match self.stops.scan(&self.text, self.emitted) {
            StopScan::Stop { at, .. } => {
                self.text.truncate(at);
                let text = self.text.get(self.emitted..).unwrap_or("");
                on_event(Event::Token { id, text, logprobs: self.last_logprobs.as_ref() });
                self.emitted = self.text.len();
                Some(FinishReason::Stop)
            }
            StopScan::Continue { safe_len } => {
                let text = self.text.get(self.emitted..safe_len).unwrap_or("");
                on_event(Event::Token { id, text, logprobs: self.last_logprobs.as_ref() });
                self.emitted = safe_len.max(self.emitted);
                // A constrained answer ends when it is complete: nothing may follow but the
                // end-of-generation token, so it is not sampled.
                complete.then_some(FinishReason::Eog)
            }
        }
    }

    /// The answer ended for `reason`: text held back (an incomplete character, a possible
    /// stop-string prefix) is final now, unless a stop string ended it.
    pub(crate) fn finish(&mut self, reason: FinishReason, on_event: &mut dyn FnMut(Event<'_>)) {
        if reason == FinishReason::Stop {
            return;
        }
        self.text.push_str(&self.decoder.finish());
        if let Some(rest) = self.text.get(self.emitted..).filter(|r| !r.is_empty()) {
            on_event(Event::Flush { text: rest });
        }
        self.emitted = self.text.len();
    }
}

/// The index of the largest value (the lowest among equals), as the sampler's greedy pick.
fn argmax(v: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i as u32)
}
