//! The engine: a model file loaded onto a backend, with its tokenizer and chat template.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use realm_core::{BackendInfo, SharedBytes};
use realm_gguf::Gguf;
use realm_model::ModelConfig;
use realm_tokenizer::{ChatTemplate, Tokenizer};

use crate::device::{Device, DeviceOptions, Profile};
use crate::error::Result;
use crate::grammar::GrammarCell;

/// Engine options.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    pub device: DeviceOptions,
}

/// A loaded model. Weights stay in the memory-mapped file (CPU) or on the device; nothing is
/// copied twice. Sessions borrow the engine.
pub struct Engine {
    /// Unique per engine in this process: a detached [`crate::SessionState`] names its engine.
    pub(crate) id: u64,
    pub(crate) device: Device,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) template: ChatTemplate,
    /// Constrained decoding's tables, built on first use.
    pub(crate) grammars: GrammarCell,
}

impl Engine {
    /// Load from a path (memory-mapped).
    #[cfg(not(target_family = "wasm"))]
    pub fn load_path(path: impl AsRef<std::path::Path>, opts: EngineOptions) -> Result<Engine> {
        let map = Arc::new(realm_gguf::MappedFile::open(path)?);
        // Each weight's pages are released once the backend has it: a backend that copied
        // (repacked) it never holds both copies; what is still read in place (embedding rows,
        // weights kept in GGUF layout) faults back in on use.
        let release = |offset: usize, len: usize| map.release_range(offset, len);
        let engine = Engine::load_with(map.clone(), opts, &release)?;
        // Embedding rows are read one token at a time from the file: no readahead there, or
        // random tokens would bring the whole table (Gemma 3's is 179 MB) back in.
        let gguf = map.gguf()?;
        if let Some(t) = gguf.tensor(realm_gguf::keys::tensor::TOKEN_EMBD) {
            let at = gguf.data_offset().saturating_add(t.offset);
            map.advise_random(at as usize, t.size as usize);
        }
        Ok(engine)
    }

    /// Load from bytes in memory.
    pub fn load_bytes(bytes: Vec<u8>, opts: EngineOptions) -> Result<Engine> {
        Engine::load_shared(Arc::new(bytes), opts)
    }

    /// Load from shared bytes (a mapped file or a buffer).
    pub fn load_shared(bytes: SharedBytes, opts: EngineOptions) -> Result<Engine> {
        Engine::load_with(bytes, opts, &|_, _| {})
    }

    /// [`Engine::load_bytes`] for callers on an event loop (the browser): opening a GPU device
    /// is awaited there, never blocked on. `uploaded(offset, len)` is called after each weight
    /// is on the backend (progress).
    pub async fn load_bytes_async(
        bytes: Vec<u8>,
        opts: EngineOptions,
        uploaded: &dyn Fn(usize, usize),
    ) -> Result<Engine> {
        Engine::load_inner(Arc::new(bytes), opts, uploaded).await
    }

    fn load_with(
        bytes: SharedBytes,
        opts: EngineOptions,
        uploaded: &dyn Fn(usize, usize),
    ) -> Result<Engine> {
        crate::block_on::run_sync("load", Engine::load_inner(bytes, opts, uploaded))
    }

    async fn load_inner(
        bytes: SharedBytes,
        opts: EngineOptions,
        uploaded: &dyn Fn(usize, usize),
    ) -> Result<Engine> {
        let gguf = Gguf::parse((*bytes).as_ref())?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        let template = ChatTemplate::from_gguf(&gguf, &tokenizer)?;
        let device = Device::load(opts.device, &gguf, bytes.clone(), uploaded).await?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Engine { id, device, tokenizer, template, grammars: GrammarCell::default() })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Constrained decoding's tables for this model (built on the first call: a token trie of
    /// the vocabulary, ~0.1 s for a 262k vocabulary).
    pub fn grammars(&self) -> Result<Arc<realm_grammar::Grammars>> {
        Ok(self.grammars.get(&self.tokenizer)?)
    }

    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    pub fn config(&self) -> &ModelConfig {
        self.device.config()
    }

    pub fn backend_info(&self) -> BackendInfo {
        self.device.info()
    }

    /// The CPU backend's instruction-set level (x86_64's levels; `Portable` in the scalar mode
    /// and on other targets), or `None` on a GPU backend.
    pub fn cpu_isa(&self) -> Option<crate::CpuIsa> {
        self.device.cpu_isa()
    }

    /// Per-op GPU time so far (`DeviceOptions::profile` on a GPU backend), or why there is none.
    pub fn profile(&self) -> Profile {
        self.device.profile()
    }

    /// What recording GPU work has cost the host so far (the CPU side of a GPU backend:
    /// dispatches, bind groups, submits), or `None` on the CPU backend.
    pub fn host_stats(&self) -> Option<realm_core::HostStat> {
        self.device.host_stats()
    }

    /// Bytes the keys and values of one position take over every layer: a KV pool of `n`
    /// positions takes `n` times this.
    pub fn kv_bytes_per_token(&self, dtype: realm_core::KvDtype) -> u64 {
        self.device.kv_bytes_per_slot(dtype)
    }

    /// The model's trained context length.
    pub fn n_ctx_train(&self) -> usize {
        self.config().hparams.context_length as usize
    }
}
