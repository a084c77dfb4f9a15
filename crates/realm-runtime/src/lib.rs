//! realm-runtime: the [`Engine`] (a model loaded onto a backend, with its tokenizer and chat
//! template), the [`Session`] (one conversation's KV cache and the generation loop: prefill,
//! decode, sampling, streaming events with UTF-8-safe text, stop rules, cancellation, KV prefix
//! reuse) and the [`Scheduler`] (the serving engine: many requests at once by continuous
//! batching over a paged KV pool with an automatic prefix cache, on one engine thread).
//!
//! - `device/` is the only place that names backends; everything else is generic.
//! - `loaded.rs`: the one step every evaluation runs (a batch of rows → logits / argmax).
//! - `sequence.rs`: the token loop (sample → end-of-generation → text → stop strings → event).
//! - `kv_blocks.rs`: the KV block allocator and prefix cache; `scheduler/`: the serving loop.
//! - `request.rs`: the request options, one serde type for every caller.

mod block_on;
mod clock;
mod device;
mod engine;
mod error;
mod grammar;
#[cfg(not(target_family = "wasm"))]
mod kv_blocks;
mod loaded;
mod request;
// Native only for now: it runs on a thread of its own, and the browser's wgpu objects cannot
// move between threads (a browser version would run the same loop on the Worker's event loop).
#[cfg(not(target_family = "wasm"))]
mod scheduler;
mod sequence;
mod session;

pub use block_on::block_on;
pub use device::{
    AdapterInfo, BackendKind, DeviceOptions, Profile, gpu_adapters, set_cpu_thread_spawner,
};
pub use engine::{Engine, EngineOptions};
pub use error::{Result, RuntimeError};
#[cfg(not(target_family = "wasm"))]
pub use kv_blocks::PoolStats;
pub use realm_backend_cpu::CpuIsa;
pub use realm_core::{BackendInfo, HostStat, KvDtype, OpStat};
pub use realm_grammar::{GrammarError, Grammars, Spec as ConstraintSpec};
pub use realm_sampling::SamplingParams;
pub use realm_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
pub use request::{
    GenerateRequest, MAX_LOGPROBS, MAX_STOP_BYTES, MAX_STOP_STRINGS, RequestOptions,
};
#[cfg(not(target_family = "wasm"))]
pub use scheduler::{
    Completion, LookupConfig, NextEvent, RequestError, RequestHandle, Scheduler, SchedulerConfig,
    SchedulerStats, SeqEvent, Timings,
};
pub use sequence::{Event, FinishReason, TokenLogprobs};
pub use session::{Generation, Session, SessionState};
