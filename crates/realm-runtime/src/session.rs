//! A session: one conversation's KV cache and the generation loop.

use std::sync::atomic::{AtomicBool, Ordering};

use realm_core::KvDtype;
use realm_model::Logits;
use realm_sampling::{Sampler, SamplingParams, StopScan, StopStrings};
use realm_tokenizer::StreamDecoder;

use crate::block_on::run_sync;
use crate::device::{DeviceState, PendingId};
use crate::engine::Engine;
use crate::error::{Result, RuntimeError};

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

/// A streaming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A sampled token and the text that became complete with it (may be empty: a partial
    /// UTF-8 character, or text held back because it may start a stop string).
    Token { id: u32, text: &'a str },
    /// Text released when generation ends without a stop string (held-back bytes).
    Flush { text: &'a str },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Render special tokens (e.g. `<|im_end|>`) in the text.
    pub special_text: bool,
    /// Keep generating past end-of-generation tokens (benchmarks; llama.cpp's `--ignore-eos`).
    pub ignore_eog: bool,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish: FinishReason,
    /// Prompt tokens whose KV entries were reused from the previous call.
    pub reused: usize,
    pub prompt_seconds: f64,
    pub decode_seconds: f64,
}

/// One conversation: a KV cache of `n_ctx` positions on the engine's backend.
pub struct Session<'e> {
    engine: &'e Engine,
    state: DeviceState,
    n_ctx: usize,
    /// Tokens whose keys/values are in the cache, in position order.
    cached: Vec<u32>,
    /// Largest prompt chunk evaluated at once.
    pub max_batch: usize,
}

impl<'e> Session<'e> {
    pub fn new(engine: &'e Engine, n_ctx: usize, kv_dtype: KvDtype) -> Result<Session<'e>> {
        if n_ctx == 0 {
            return Err(RuntimeError::Invalid("n_ctx must be positive".into()));
        }
        let state = engine.device.new_state(n_ctx, kv_dtype)?;
        Ok(Session { engine, state, n_ctx, cached: Vec::new(), max_batch: 512 })
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Detach the KV cache and the tokens in it from the engine's borrow, to keep them between
    /// requests where a `Session` cannot be held (a binding's handle).
    pub fn into_state(self) -> SessionState {
        SessionState {
            engine_id: self.engine.id,
            state: self.state,
            n_ctx: self.n_ctx,
            cached: self.cached,
            max_batch: self.max_batch,
        }
    }

    /// A session again over a state [`Session::into_state`] detached from this same engine
    /// (another engine's state is refused: its cache has another model's shapes).
    pub fn resume(engine: &'e Engine, s: SessionState) -> Result<Session<'e>> {
        if s.engine_id != engine.id {
            return Err(RuntimeError::Invalid(
                "the session state belongs to another engine".into(),
            ));
        }
        Ok(Session {
            engine,
            state: s.state,
            n_ctx: s.n_ctx,
            cached: s.cached,
            max_batch: s.max_batch,
        })
    }

    /// Forget the cached prefix.
    pub fn reset(&mut self) {
        self.cached.clear();
    }

    /// Evaluate `tokens` after the cached ones and return the logits of every position.
    pub fn eval_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        run_sync("eval_all", self.eval_all_async(tokens))
    }

    /// [`Session::eval_all`] on an event loop (see [`Engine::load_bytes_async`]).
    pub async fn eval_all_async(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let start = self.cached.len();
        self.check_fits(start + tokens.len())?;
        let d = &self.engine.device;
        let out = d.eval(&mut self.state, tokens, start, Logits::All, self.max_batch).await?;
        self.cached.extend_from_slice(tokens);
        Ok(out)
    }

    /// Evaluate the prompt, reusing the longest cached prefix, and return the last logits.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, usize)> {
        let (next, reuse) = run_sync("prefill", self.prefill_for(prompt, false))?;
        match next {
            Next::Logits(l) => Ok((l, reuse)),
            Next::Id(_) => Err(RuntimeError::Invalid("prefill returned an id".into())),
        }
    }

    /// As [`Session::prefill`], but only the argmax of the last logits (ties to the lowest
    /// id) comes back from the backend: greedy decoding reads 4 bytes per token.
    pub fn prefill_argmax(&mut self, prompt: &[u32]) -> Result<(u32, usize)> {
        let (next, reuse) = run_sync("prefill_argmax", self.prefill_for(prompt, true))?;
        match next {
            Next::Id(id) => Ok((id, reuse)),
            Next::Logits(_) => Err(RuntimeError::Invalid("prefill returned logits".into())),
        }
    }

    async fn prefill_for(&mut self, prompt: &[u32], argmax: bool) -> Result<(Next, usize)> {
        if prompt.is_empty() {
            return Err(RuntimeError::EmptyPrompt);
        }
        self.check_fits(prompt.len())?;
        let common = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        // At least the last prompt token is evaluated, to get its logits.
        let reuse = common.min(prompt.len() - 1);
        self.cached.truncate(reuse);
        let next = self.eval_next(&prompt[reuse..], reuse, argmax, self.max_batch).await?;
        self.cached.extend_from_slice(&prompt[reuse..]);
        Ok((next, reuse))
    }

    async fn eval_next(
        &mut self,
        tokens: &[u32],
        pos: usize,
        argmax: bool,
        max_batch: usize,
    ) -> Result<Next> {
        let d = &self.engine.device;
        Ok(if argmax {
            Next::Id(d.eval_argmax(&mut self.state, tokens, pos, max_batch).await?)
        } else {
            Next::Logits(d.eval(&mut self.state, tokens, pos, Logits::Last, max_batch).await?)
        })
    }

    fn check_fits(&self, n: usize) -> Result<()> {
        if n > self.n_ctx {
            return Err(RuntimeError::PromptTooLong { prompt: n, n_ctx: self.n_ctx });
        }
        Ok(())
    }

    /// Generate: prefill the prompt, then sample until a stop rule fires. `on_event` sees each
    /// token as it is produced; `cancel` stops the loop between tokens.
    pub fn generate(
        &mut self,
        req: &GenerateRequest,
        cancel: Option<&AtomicBool>,
        on_event: impl FnMut(Event<'_>),
    ) -> Result<Generation> {
        run_sync("generate", self.generate_async(req, cancel, on_event))
    }

    /// [`Session::generate`] on an event loop (see [`Engine::load_bytes_async`]).
    pub async fn generate_async(
        &mut self,
        req: &GenerateRequest,
        cancel: Option<&AtomicBool>,
        mut on_event: impl FnMut(Event<'_>),
    ) -> Result<Generation> {
        let tok = &self.engine.tokenizer;
        let n_vocab = self.engine.config().n_vocab;
        let mut sampler = Sampler::new(req.sampling, n_vocab)?;
        for &t in &req.prompt {
            sampler.accept(t);
        }
        let stops = StopStrings::new(req.stop.clone());
        let mut decoder = StreamDecoder::new(req.special_text);
        // Plain greedy decoding needs only the argmax: the backend computes it and reads back
        // one id (penalties need every logit, so they take the sampler's path).
        let argmax = req.sampling.is_greedy() && !req.sampling.has_penalties();
        let t0 = now();
        let (mut next, reused) = self.prefill_for(&req.prompt, argmax).await?;
        let prompt_seconds = now() - t0;
        let t1 = now();
        let mut tokens = Vec::new();
        let mut text = String::new();
        let mut emitted = 0;
        // Greedy decoding on a backend that queues its work (a GPU) runs one step ahead: the
        // step that feeds token t back is recorded and submitted, taking t from the device,
        // before t is read and checked, so the host's recording overlaps the device's work. When
        // t ends the answer, that step is dropped unread: its KV entry lies past `cached`.
        let chain = argmax && self.engine.device.chains();
        let mut ahead: Option<PendingId> = None;
        let finish = loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                break FinishReason::Cancelled;
            }
            if tokens.len() >= req.max_tokens {
                break FinishReason::Length;
            }
            let id = match &next {
                Next::Id(id) => *id,
                Next::Logits(logits) => sampler.sample(logits)?,
            };
            sampler.accept(id);
            tokens.push(id);
            let pos = self.cached.len();
            if chain && tokens.len() < req.max_tokens && pos < self.n_ctx {
                ahead = Some(self.engine.device.decode_chained(&mut self.state, pos)?);
            }
            if !req.ignore_eog && tok.is_eog(id) {
                break FinishReason::Eog;
            }
            text.push_str(&decoder.push(tok, id));
            match stops.scan(&text, emitted) {
                StopScan::Stop { at, .. } => {
                    text.truncate(at);
                    on_event(Event::Token { id, text: text.get(emitted..).unwrap_or("") });
                    break FinishReason::Stop;
                }
                StopScan::Continue { safe_len } => {
                    on_event(Event::Token { id, text: text.get(emitted..safe_len).unwrap_or("") });
                    emitted = safe_len.max(emitted);
                }
            }
            if pos >= self.n_ctx {
                break FinishReason::ContextFull;
            }
            next = match ahead.take() {
                Some(step) => Next::Id(step.await?),
                None => self.eval_next(&[id], pos, argmax, 1).await?,
            };
            self.cached.push(id);
        };
        if finish != FinishReason::Stop {
            // Text held back (an incomplete character, a possible stop-string prefix) is final now.
            text.push_str(&decoder.finish());
            if let Some(rest) = text.get(emitted..).filter(|r| !r.is_empty()) {
                on_event(Event::Flush { text: rest });
            }
        }
        Ok(Generation { tokens, text, finish, reused, prompt_seconds, decode_seconds: now() - t1 })
    }
}

/// A [`Session`] without its engine borrow: the KV cache and the tokens whose entries it holds.
pub struct SessionState {
    engine_id: u64,
    state: DeviceState,
    n_ctx: usize,
    cached: Vec<u32>,
    max_batch: usize,
}

impl SessionState {
    /// Positions the KV cache holds.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }
}

/// What an evaluation hands the sampler: every logit of the last position, or its argmax.
enum Next {
    Logits(Vec<f32>),
    Id(u32),
}

/// Seconds on a monotonic clock (0 where none exists: bare wasm).
fn now() -> f64 {
    #[cfg(not(target_family = "wasm"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_family = "wasm")]
    {
        0.0
    }
}
