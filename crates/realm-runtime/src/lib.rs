//! realm-runtime: the [`Engine`] (a model loaded onto a backend, with its tokenizer and chat
//! template) and the [`Session`] (a KV cache and the generation loop: prefill, decode, sampling,
//! streaming events with UTF-8-safe text, stop rules, cancellation, KV prefix reuse).
//!
//! `device.rs` is the only place that names backends; everything else is generic.

mod block_on;
mod device;
mod engine;
mod error;
mod session;

pub use block_on::block_on;
pub use device::{
    AdapterInfo, BackendKind, DeviceOptions, Profile, gpu_adapters, set_cpu_thread_spawner,
};
pub use engine::{Engine, EngineOptions};
pub use error::{Result, RuntimeError};
pub use realm_core::{HostStat, KvDtype, OpStat};
pub use realm_sampling::SamplingParams;
pub use realm_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
pub use session::{Event, FinishReason, GenerateRequest, Generation, Session, SessionState};
