//! The serving engine: continuous batching over the paged KV pool, with an automatic prefix
//! cache. One engine thread owns the [`Engine`] (its backend, model and KV pool); callers
//! [`Scheduler::submit`] requests from any thread and read each one's events from its
//! [`RequestHandle`]. Each step of the engine thread runs one pass over the weights for the
//! rows of every active sequence: the decode rows of the running sequences, then chunks of
//! the prompts being prefilled, under a token budget per step, so a long prompt never stalls
//! the others' streams (vLLM's, TGI's and llama-server's iteration-level batching).
//!
//! - `core.rs`: the engine thread's loop (admission, the step's rows, preemption, events).
//! - `events.rs`: what a request sees, and its handle.
//! - [`crate::kv_blocks`]: the block allocator and prefix cache.
//! - [`crate::sequence`]: the token loop each sequence runs (shared with [`crate::Session`]).
//!
//! Limits, each with a name and a default ([`SchedulerConfig`]): the KV pool's memory, the
//! block size, the sequences running at once, the requests waiting, the tokens per step and
//! the positions one sequence may hold. A full queue is [`RuntimeError::QueueFull`]; a
//! request the pool could never hold is [`RuntimeError::PromptTooLong`] at submit.

mod core;
mod events;
mod lookup;

pub use events::{Completion, NextEvent, RequestError, RequestHandle, SeqEvent, Timings};
pub use lookup::LookupConfig;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use realm_core::KvDtype;
use realm_tokenizer::{ChatTemplate, Tokenizer};

use crate::engine::Engine;
use crate::error::{Result, RuntimeError};
use crate::kv_blocks::PoolStats;
use crate::request::GenerateRequest;

/// The scheduler's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Memory of the KV pool, every layer's keys and values together. The pool holds
    /// `kv_budget_bytes / (block_size × bytes per position)` blocks; memory is committed as
    /// blocks are first used (on the CPU), so it follows the tokens in use.
    pub kv_budget_bytes: u64,
    /// Positions per KV block (the prefix cache's granularity).
    pub block_size: usize,
    pub kv_dtype: KvDtype,
    /// Sequences running (holding KV blocks) at once (vLLM's `max_num_seqs`).
    pub max_running: usize,
    /// Requests waiting to start; a submit past it is [`RuntimeError::QueueFull`].
    pub max_waiting: usize,
    /// Rows (tokens) per step: every decode row plus prompt chunks (vLLM's
    /// `max_num_batched_tokens`). At least `max_running`.
    pub max_batch_tokens: usize,
    /// Positions one sequence may hold (prompt and answer); 0 = the model's trained context.
    /// Always within the pool.
    pub max_seq_len: usize,
    /// Reuse cached blocks of earlier prompts.
    pub prefix_cache: bool,
    /// Speculative decoding by prompt lookup (drafts from the sequence's own tokens, verified
    /// in the same forward pass; the output is the same as without, greedy or sampled);
    /// `None`: off.
    pub lookup: Option<LookupConfig>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            kv_budget_bytes: 256 << 20,
            block_size: 32,
            kv_dtype: KvDtype::F16,
            max_running: 16,
            max_waiting: 256,
            max_batch_tokens: 512,
            max_seq_len: 0,
            prefix_cache: true,
            lookup: Some(LookupConfig::default()),
        }
    }
}

/// What the scheduler is doing, for metrics (vLLM's meanings).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SchedulerStats {
    pub running: usize,
    pub waiting: usize,
    /// The KV pool: blocks in use and cached, prefix-cache lookups and hits (in tokens).
    pub kv: PoolStats,
    pub steps: u64,
    /// Sequences in each step, summed (÷ `steps`: the average batch).
    pub step_sequences: u64,
    /// Rows computed: prompt rows (after the cache) and decode rows.
    pub prompt_rows: u64,
    pub decode_rows: u64,
    pub generated_tokens: u64,
    pub preemptions: u64,
    /// Prompt lookup: draft tokens proposed, and those the model's own picks confirmed.
    pub draft_tokens: u64,
    pub draft_accepted: u64,
    /// Constrained decoding: token masks computed beside the steps, their total time, and
    /// the time steps waited for masks after their forward pass had ended (what the masks
    /// added to the steps), in seconds.
    pub masks: u64,
    pub mask_seconds: f64,
    pub mask_wait_seconds: f64,
    /// Greedy picks under a constraint that refused the model's best token: their logit
    /// rows were read after the step to find the best allowed one.
    pub refused: u64,
    pub finished: u64,
    pub cancelled: u64,
    pub failed: u64,
    /// Positions one sequence may hold, and the pool's size in positions.
    pub max_seq_len: usize,
    pub pool_positions: usize,
}

/// Messages to the engine thread.
pub(crate) enum Command {
    Submit(Box<core::Seq>),
    /// Look at the cancel flags now.
    Wake,
    Shutdown,
}

/// What the submitting side shares with the engine thread.
pub(crate) struct Shared {
    stats: Mutex<SchedulerStats>,
    /// Requests submitted and not yet admitted (bounded by `max_waiting`).
    waiting: AtomicUsize,
    closed: AtomicBool,
}

/// The serving engine (see the module docs).
pub struct Scheduler {
    tx: Sender<Command>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicU64,
    config: SchedulerConfig,
    tokenizer: Arc<Tokenizer>,
    template: Arc<ChatTemplate>,
    /// Constrained decoding's tables, built on the first constrained request (on the
    /// submitting thread, as each request's constraint is compiled).
    grammars: crate::grammar::GrammarCell,
    n_vocab: usize,
    max_seq_len: usize,
}

impl Scheduler {
    /// Starts the engine thread, which takes over `engine` and allocates the KV pool.
    pub fn start(engine: Engine, config: SchedulerConfig) -> Result<Scheduler> {
        let sizes = core::Sizes::of(&engine, &config)?;
        let tokenizer = Arc::new(engine.tokenizer().clone());
        let template = Arc::new(engine.chat_template().clone());
        let n_vocab = engine.config().n_vocab;
        let shared = Arc::new(Shared {
            stats: Mutex::new(SchedulerStats {
                max_seq_len: sizes.max_seq_len,
                pool_positions: sizes.n_blocks * config.block_size,
                ..SchedulerStats::default()
            }),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let (tx, rx) = channel();
        let (ready_tx, ready_rx) = channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("realm-engine".into())
            .spawn(move || core::run(engine, config, sizes, rx, thread_shared, ready_tx))
            .map_err(|e| {
                RuntimeError::Invalid(format!("could not start the engine thread: {e}"))
            })?;
        // The pool is allocated on the engine thread; its error is the caller's.
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(RuntimeError::Invalid("the engine thread stopped".into()));
            }
        }
        Ok(Scheduler {
            tx,
            shared,
            thread: Mutex::new(Some(thread)),
            next_id: AtomicU64::new(0),
            config,
            tokenizer,
            template,
            grammars: Default::default(),
            n_vocab,
            max_seq_len: sizes.max_seq_len,
        })
    }

    /// Queues a request. Refused at once, with a typed error, when it is invalid (an empty
    /// prompt, a token outside the vocabulary, a sampling value out of range), longer than one
    /// sequence may ever be (`max_seq_len`), when `max_waiting` requests are waiting, or after
    /// shutdown. A request for `max_tokens: Some(0)` ends at once with finish `Length`.
    pub fn submit(&self, req: GenerateRequest) -> Result<RequestHandle> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(RuntimeError::ShutDown);
        }
        let n = req.prompt.len();
        if n == 0 {
            return Err(RuntimeError::EmptyPrompt);
        }
        if n >= self.max_seq_len {
            // At least one position must remain for the answer's first token.
            return Err(RuntimeError::PromptTooLong { prompt: n, n_ctx: self.max_seq_len });
        }
        if let Some(&id) = req.prompt.iter().find(|&&t| t as usize >= self.n_vocab) {
            return Err(realm_model::ModelError::BadToken { id, n_vocab: self.n_vocab }.into());
        }
        let prev = self.shared.waiting.fetch_add(1, Ordering::AcqRel);
        if prev >= self.config.max_waiting {
            self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(RuntimeError::QueueFull { waiting: prev });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let grammars = || Ok(self.grammars.get(&self.tokenizer)?);
        let seq = match core::Seq::new(id, req, self.n_vocab, &grammars) {
            Ok(s) => s,
            Err(e) => {
                self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        let handle = RequestHandle {
            id,
            events: seq.events.clone(),
            cancel: seq.cancel.clone(),
            wake: self.tx.clone(),
        };
        if self.tx.send(Command::Submit(Box::new(seq))).is_err() {
            self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(RuntimeError::ShutDown);
        }
        Ok(handle)
    }

    /// Constrained decoding's tables (built on the first call), to check a constraint before
    /// submitting: [`realm_grammar::Grammars::compile`] says what is wrong with it.
    pub fn grammars(&self) -> Result<Arc<realm_grammar::Grammars>> {
        Ok(self.grammars.get(&self.tokenizer)?)
    }

    /// A snapshot of the counts.
    pub fn stats(&self) -> SchedulerStats {
        let mut s = *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        // The engine thread counts preempted requests waiting again; new ones are counted here.
        s.waiting += self.shared.waiting.load(Ordering::Acquire);
        s
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Positions one sequence may hold (prompt and answer).
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The model's tokenizer (a copy, usable on any thread).
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// The model's chat template.
    pub fn chat_template(&self) -> &Arc<ChatTemplate> {
        &self.template
    }

    /// Stops taking requests (a submit from now on is [`RuntimeError::ShutDown`]), cancels
    /// those still running or waiting (each ends with `Done`, finish `Cancelled`), and waits
    /// for the engine thread to stop. Dropping the scheduler does the same.
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.tx.send(Command::Shutdown);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shutdown();
    }
}
