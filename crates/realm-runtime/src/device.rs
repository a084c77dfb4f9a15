//! The ONLY place that names backends: the run-time choice of backend is an enum over the
//! backends compiled in; everything else is generic over `realm_core::Backend`.

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
use realm_core::{Backend, BackendInfo, KvDtype, SharedBytes};
use realm_gguf::Gguf;
use realm_model::{Batch, Logits, Model, Scratch};

use crate::error::{Result, RuntimeError};

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The CPU: SIMD paths chosen at run time, a thread pool.
    #[default]
    Cpu,
    /// The CPU's scalar reference path (slow; the oracle for tests).
    CpuScalar,
}

impl BackendKind {
    pub fn from_name(name: &str) -> Option<BackendKind> {
        match name {
            "cpu" => Some(BackendKind::Cpu),
            "cpu-scalar" => Some(BackendKind::CpuScalar),
            _ => None,
        }
    }
}

/// Backend options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceOptions {
    pub backend: BackendKind,
    /// CPU threads, 0 = all available.
    pub threads: usize,
}

/// A backend and a model loaded on it.
pub(crate) struct Loaded<B: Backend> {
    pub backend: B,
    pub model: Model<B>,
}

/// A model on whichever backend was chosen.
pub(crate) enum Device {
    Cpu(Box<Loaded<CpuBackend>>),
}

/// Per-session state on the same backend as the engine's [`Device`].
pub(crate) enum DeviceState {
    Cpu(Box<State<CpuBackend>>),
}

/// A KV cache and activation buffers.
pub(crate) struct State<B: Backend> {
    kv: B::Kv,
    n_ctx: usize,
    /// Buffers for the last batch size used (prefill chunks share a size; decode uses 1).
    scratch: Vec<Scratch<B>>,
}

impl Device {
    /// Load the model; `uploaded(offset, len)` is called after each weight is on the backend.
    pub fn load(
        opts: DeviceOptions,
        gguf: &Gguf<'_>,
        bytes: SharedBytes,
        uploaded: &dyn Fn(usize, usize),
    ) -> Result<Device> {
        let mode = match opts.backend {
            BackendKind::Cpu => CpuMode::Auto,
            BackendKind::CpuScalar => CpuMode::Scalar,
        };
        let backend = CpuBackend::new(CpuConfig { threads: opts.threads, mode });
        let model = Model::load_with(&backend, gguf, bytes, uploaded)?;
        Ok(Device::Cpu(Box::new(Loaded { backend, model })))
    }

    pub fn info(&self) -> BackendInfo {
        match self {
            Device::Cpu(l) => l.backend.info(),
        }
    }

    pub fn config(&self) -> &realm_model::ModelConfig {
        match self {
            Device::Cpu(l) => &l.model.config,
        }
    }

    pub fn new_state(&self, n_ctx: usize, kv_dtype: KvDtype) -> Result<DeviceState> {
        match self {
            Device::Cpu(l) => Ok(DeviceState::Cpu(Box::new(l.new_state(n_ctx, kv_dtype)?))),
        }
    }

    /// Run `tokens` at `start_pos..` and return the logits asked for (row-major).
    pub fn eval(
        &self,
        st: &mut DeviceState,
        tokens: &[u32],
        start_pos: usize,
        which: Logits,
        max_batch: usize,
    ) -> Result<Vec<f32>> {
        match (self, st) {
            (Device::Cpu(l), DeviceState::Cpu(s)) => l.eval(s, tokens, start_pos, which, max_batch),
        }
    }
}

impl<B: Backend> Loaded<B> {
    fn new_state(&self, n_ctx: usize, kv_dtype: KvDtype) -> Result<State<B>> {
        let kv = self.backend.kv_cache(self.model.kv_desc(n_ctx, kv_dtype))?;
        Ok(State { kv, n_ctx, scratch: Vec::new() })
    }

    fn eval(
        &self,
        st: &mut State<B>,
        tokens: &[u32],
        start_pos: usize,
        which: Logits,
        max_batch: usize,
    ) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(RuntimeError::EmptyPrompt);
        }
        let max_batch = max_batch.max(1);
        let mut out = Vec::new();
        let n_chunks = tokens.len().div_ceil(max_batch);
        for (i, chunk) in tokens.chunks(max_batch).enumerate() {
            let last = i + 1 == n_chunks;
            // Intermediate chunks only fill the KV cache, unless every position's logits are wanted.
            let want = if which == Logits::All || last { Some(which) } else { None };
            let pos = start_pos + i * max_batch;
            let n = chunk.len();
            if !st.scratch.iter().any(|s| s.len() == n) {
                if st.scratch.len() >= 2 {
                    st.scratch.remove(0);
                }
                st.scratch.push(self.model.scratch(&self.backend, n)?);
            }
            let s = st
                .scratch
                .iter_mut()
                .find(|s| s.len() == n)
                .ok_or_else(|| RuntimeError::Invalid("scratch buffer missing".into()))?;
            let batch =
                Batch { tokens: chunk, start_pos: pos, logits: want.unwrap_or(Logits::Last) };
            let logits = self.model.forward(&self.backend, &mut st.kv, st.n_ctx, &batch, s)?;
            self.backend.submit()?;
            if want.is_some() {
                out.extend(crate::block_on(self.backend.read(logits))?);
            }
        }
        Ok(out)
    }
}
