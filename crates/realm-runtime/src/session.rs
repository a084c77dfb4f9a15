//! A session: one conversation's KV cache and the generation loop. It is the batch of one of
//! the engine's step ([`crate::loaded`]): one sequence whose cache is a pool of one block of
//! `n_ctx` positions, evaluated through the same code as the serving scheduler's batches.

use std::sync::atomic::{AtomicBool, Ordering};

use realm_core::{KvDtype, RowsDesc};
use realm_model::Logits;

use crate::block_on::run_sync;
use crate::clock::now;
use crate::device::DeviceState;
use crate::engine::Engine;
use crate::error::{Result, RuntimeError};
use crate::loaded::{PendingId, StepRows, Want};
use crate::request::GenerateRequest;
use crate::sequence::{Event, FinishReason, Next, TokenLoop};

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
        let state = engine.device.new_state(1, n_ctx, kv_dtype)?;
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
        let out = self.eval(tokens, start, true, false).await?;
        self.cached.extend_from_slice(tokens);
        Ok(out.logits)
    }

    /// Evaluate the prompt, reusing the longest cached prefix, and return the last logits.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, usize)> {
        let (next, reuse) = run_sync("prefill", self.prefill_for(prompt, false))?;
        match next {
            Owned::Logits(l) => Ok((l, reuse)),
            Owned::Id(_) => Err(RuntimeError::Invalid("prefill returned an id".into())),
        }
    }

    /// As [`Session::prefill`], but only the argmax of the last logits (ties to the lowest
    /// id) comes back from the backend: greedy decoding reads 4 bytes per token.
    pub fn prefill_argmax(&mut self, prompt: &[u32]) -> Result<(u32, usize)> {
        let (next, reuse) = run_sync("prefill_argmax", self.prefill_for(prompt, true))?;
        match next {
            Owned::Id(id) => Ok((id, reuse)),
            Owned::Logits(_) => Err(RuntimeError::Invalid("prefill returned logits".into())),
        }
    }

    async fn prefill_for(&mut self, prompt: &[u32], argmax: bool) -> Result<(Owned, usize)> {
        if prompt.is_empty() {
            return Err(RuntimeError::EmptyPrompt);
        }
        self.check_fits(prompt.len())?;
        let common = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        // At least the last prompt token is evaluated, to get its logits.
        let reuse = common.min(prompt.len() - 1);
        self.cached.truncate(reuse);
        let next = self.eval_next(&prompt[reuse..], reuse, argmax).await?;
        self.cached.extend_from_slice(&prompt[reuse..]);
        Ok((next, reuse))
    }

    async fn eval_next(&mut self, tokens: &[u32], pos: usize, argmax: bool) -> Result<Owned> {
        let out = self.eval(tokens, pos, false, argmax).await?;
        Ok(match out.ids.first() {
            Some(&id) if argmax => Owned::Id(id),
            _ => Owned::Logits(out.logits),
        })
    }

    /// `tokens` at positions `start ..`, in chunks of at most `max_batch` rows: the logits of
    /// every row (`all`), else of the last row only — all of them, or only their argmax.
    async fn eval(
        &mut self,
        tokens: &[u32],
        start: usize,
        all: bool,
        argmax: bool,
    ) -> Result<crate::loaded::StepOut> {
        if tokens.is_empty() {
            return Err(RuntimeError::EmptyPrompt);
        }
        let max_batch = self.max_batch.max(1);
        let n_chunks = tokens.len().div_ceil(max_batch);
        let mut out = crate::loaded::StepOut::default();
        let table = [0u32];
        for (i, chunk) in tokens.chunks(max_batch).enumerate() {
            let first = start + i * max_batch;
            let pos: Vec<u32> = (first as u32..(first + chunk.len()) as u32).collect();
            let seq = vec![0u32; chunk.len()];
            let rows = RowsDesc { pos: &pos, seq: &seq, tables: &[&table], block_size: self.n_ctx };
            // Chunks before the last only fill the cache, unless every row's logits are wanted.
            let last = i + 1 == n_chunks;
            let want = match (all, last) {
                (true, _) => Want { rows: Logits::All, logits: true, argmax: false },
                (false, true) => Want { rows: Logits::Last, logits: !argmax, argmax },
                (false, false) => Want::NOTHING,
            };
            let step = StepRows { tokens: chunk, rows };
            let o = self.engine.device.step(&mut self.state, &step, &want).await?;
            out.logits.extend(o.logits);
            out.ids.extend(o.ids);
        }
        Ok(out)
    }

    /// The placement of one row at `pos`.
    fn one_row(&self, pos: usize) -> ([u32; 1], [u32; 1], [u32; 1]) {
        ([pos as u32], [0], [0])
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
        let engine = self.engine;
        let mut lp = TokenLoop::new(&req.options, &req.prompt, n_vocab, &|| engine.grammars())?;
        // Plain greedy decoding needs only the argmax: the backend computes it and reads back
        // one id (penalties need every logit, so they take the sampler's path).
        let argmax = lp.argmax_only();
        let t0 = now();
        let (mut next, reused) = self.prefill_for(&req.prompt, argmax).await?;
        let prompt_seconds = now() - t0;
        let t1 = now();
        // Greedy decoding on a backend that queues its work (a GPU) runs one step ahead: the
        // step that feeds token t back is recorded and submitted, taking t from the device,
        // before t is read and checked, so the host's recording overlaps the device's work. When
        // t ends the answer, that step is dropped unread: its KV entry lies past `cached`.
        let chain = argmax && self.engine.device.chains();
        let mut ahead: Option<PendingId> = None;
        let emit = &mut on_event;
        let finish = loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                break FinishReason::Cancelled;
            }
            if lp.at_limit() {
                break FinishReason::Length;
            }
            let id = lp.pick(match &next {
                Owned::Id(id) => Next::Id(*id),
                Owned::Logits(l) => Next::Logits(l),
            })?;
            lp.record(id);
            let pos = self.cached.len();
            if chain && !lp.at_limit() && pos < self.n_ctx {
                let (p, q, t) = self.one_row(pos);
                let rows = RowsDesc { pos: &p, seq: &q, tables: &[&t], block_size: self.n_ctx };
                ahead = Some(self.engine.device.decode_chained(&mut self.state, &rows)?);
            }
            if let Some(reason) = lp.emit(tok, id, emit) {
                break reason;
            }
            if pos >= self.n_ctx {
                break FinishReason::ContextFull;
            }
            next = match ahead.take() {
                Some(step) => Owned::Id(step.await?),
                None => self.eval_next(&[id], pos, argmax).await?,
            };
            self.cached.push(id);
        };
        lp.finish(finish, emit);
        let (tokens, text) = lp.into_output();
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

/// What an evaluation hands the token loop, owned: every logit of the last position, or its
/// argmax.
enum Owned {
    Logits(Vec<f32>),
    Id(u32),
}
