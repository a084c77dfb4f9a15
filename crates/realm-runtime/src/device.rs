//! The ONLY place that names backends: the run-time choice of backend is an enum over the
//! backends compiled in; everything else is generic over `realm_core::Backend`.

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
#[cfg(feature = "wgpu")]
use realm_backend_wgpu::{WgpuBackend, WgpuConfig};
use realm_core::{Backend, BackendInfo, HostStat, KvDtype, OpStat, SharedBytes};
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
    /// WebGPU through wgpu (Vulkan, Metal or DX12 natively).
    Wgpu,
}

impl BackendKind {
    /// Every name [`BackendKind::from_name`] accepts, for help and error messages.
    pub const NAMES: &'static str = "cpu, cpu-scalar, wgpu";

    pub fn from_name(name: &str) -> Option<BackendKind> {
        match name {
            "cpu" => Some(BackendKind::Cpu),
            "cpu-scalar" => Some(BackendKind::CpuScalar),
            "wgpu" => Some(BackendKind::Wgpu),
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
    /// Time every GPU op (wgpu: timestamp queries); see [`crate::Engine::profile`].
    pub profile: bool,
}

/// What a GPU adapter offers and the tier the wgpu backend would choose on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    /// The native API (Vulkan, Metal, Dx12, ...) or the browser's WebGPU.
    pub api: String,
    pub device_type: String,
    pub driver: String,
    /// The features Realm can use and whether the adapter has each.
    pub features: Vec<(&'static str, bool)>,
    /// Key limits as `(name, value)`.
    pub limits: Vec<(&'static str, u64)>,
    /// The tier the backend would choose, e.g. "f16 + subgroups", and why (a line per choice).
    pub tier: String,
    pub reasons: Vec<String>,
}

/// The GPU adapters the wgpu backend can see (empty when there is none).
pub async fn gpu_adapters() -> Vec<AdapterInfo> {
    #[cfg(not(feature = "wgpu"))]
    return Vec::new();
    #[cfg(feature = "wgpu")]
    realm_backend_wgpu::adapters()
        .await
        .into_iter()
        .map(|a| AdapterInfo {
            name: a.name,
            api: a.backend,
            device_type: a.device_type,
            driver: a.driver,
            features: a.features,
            limits: a.limits,
            tier: match (a.tier.f16, a.tier.subgroups) {
                (true, true) => "f16 + subgroups",
                (true, false) => "f16, no subgroups",
                (false, true) => "f32 + subgroups",
                (false, false) => "f32, no subgroups (baseline)",
            }
            .to_string(),
            reasons: a.reasons,
        })
        .collect()
}

/// Lets the CPU backend's thread pool start threads where `std::thread` cannot: the browser's
/// threads build, whose threads are Web Workers the embedder starts. Once per process.
pub fn set_cpu_thread_spawner(spawn: realm_backend_cpu::pool::Spawn) -> bool {
    realm_backend_cpu::pool::set_thread_spawner(spawn)
}

/// Per-op GPU time, when profiling was asked for and the backend can measure it.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// Totals per op, slowest first, and the passes that ran untimed (query set full).
    Ops { ops: Vec<OpStat>, untimed: u64 },
    /// Why there are no per-op times.
    Unavailable(String),
}

/// A backend and a model loaded on it.
pub(crate) struct Loaded<B: Backend> {
    pub backend: B,
    pub model: Model<B>,
}

/// A model on whichever backend was chosen.
pub(crate) enum Device {
    Cpu(Box<Loaded<CpuBackend>>),
    #[cfg(feature = "wgpu")]
    Wgpu(Box<Loaded<WgpuBackend>>),
}

/// Per-session state on the same backend as the engine's [`Device`].
pub(crate) enum DeviceState {
    Cpu(Box<State<CpuBackend>>),
    #[cfg(feature = "wgpu")]
    Wgpu(Box<State<WgpuBackend>>),
}

/// A KV cache and activation buffers.
pub(crate) struct State<B: Backend> {
    kv: B::Kv,
    n_ctx: usize,
    /// Buffers for the last batch size used (prefill chunks share a size; decode uses 1).
    scratch: Vec<Scratch<B>>,
    /// `[1, 1]` tensors: the argmax of the last logits (greedy decoding reads back only this)
    /// is in slot `argmax_last`; a chained step reads it and writes the other slot.
    argmax: [Option<B::Tensor>; 2],
    argmax_last: usize,
}

/// The argmax read of a step already submitted: the next token id, once the device has it.
pub type PendingId = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32>>>>;

fn to_id(v: &[f32]) -> Result<u32> {
    match v {
        // Indices below 2^24 are exact in f32; vocabularies are far smaller.
        [id] if *id >= 0.0 && *id < 16_777_216.0 => Ok(*id as u32),
        other => Err(RuntimeError::Invalid(format!("argmax returned {other:?}"))),
    }
}

/// What an evaluation returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Logits(Logits),
    /// The argmax of the last position's logits only.
    Argmax,
}

impl Device {
    /// Load the model; `uploaded(offset, len)` is called after each weight is on the backend.
    pub async fn load(
        opts: DeviceOptions,
        gguf: &Gguf<'_>,
        bytes: SharedBytes,
        uploaded: &dyn Fn(usize, usize),
    ) -> Result<Device> {
        let mode = match opts.backend {
            BackendKind::Cpu => CpuMode::Auto,
            BackendKind::CpuScalar => CpuMode::Scalar,
            #[cfg(not(feature = "wgpu"))]
            BackendKind::Wgpu => {
                return Err(realm_core::CoreError::NoAdapter {
                    detail: "this build has no WebGPU backend (the Memory64 build is CPU-only)"
                        .into(),
                }
                .into());
            }
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => {
                let backend = open_wgpu(opts).await?;
                let model = Model::load_with(&backend, gguf, bytes, uploaded)?;
                return Ok(Device::Wgpu(Box::new(Loaded { backend, model })));
            }
        };
        let backend = CpuBackend::new(CpuConfig { threads: opts.threads, mode });
        let model = Model::load_with(&backend, gguf, bytes, uploaded)?;
        Ok(Device::Cpu(Box::new(Loaded { backend, model })))
    }

    pub fn info(&self) -> BackendInfo {
        match self {
            Device::Cpu(l) => l.backend.info(),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => l.backend.info(),
        }
    }

    pub fn config(&self) -> &realm_model::ModelConfig {
        match self {
            Device::Cpu(l) => &l.model.config,
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => &l.model.config,
        }
    }

    /// Per-op GPU times so far.
    pub fn profile(&self) -> Profile {
        match self {
            Device::Cpu(_) => {
                Profile::Unavailable("per-op times are measured on GPU backends only".into())
            }
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => match l.backend.profile() {
                Ok((ops, untimed)) => Profile::Ops { ops, untimed },
                Err(why) => Profile::Unavailable(why),
            },
        }
    }

    /// What recording GPU work has cost the host so far (GPU backends only).
    pub fn host_stats(&self) -> Option<HostStat> {
        match self {
            Device::Cpu(_) => None,
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => Some(l.backend.host_stats()),
        }
    }

    pub fn new_state(&self, n_ctx: usize, kv_dtype: KvDtype) -> Result<DeviceState> {
        match self {
            Device::Cpu(l) => Ok(DeviceState::Cpu(Box::new(l.new_state(n_ctx, kv_dtype)?))),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => Ok(DeviceState::Wgpu(Box::new(l.new_state(n_ctx, kv_dtype)?))),
        }
    }

    /// Run `tokens` at `start_pos..` and return the logits asked for (row-major).
    pub async fn eval(
        &self,
        st: &mut DeviceState,
        tokens: &[u32],
        start_pos: usize,
        which: Logits,
        max_batch: usize,
    ) -> Result<Vec<f32>> {
        self.run(st, tokens, start_pos, Want::Logits(which), max_batch).await
    }

    /// Run `tokens` at `start_pos..` and return the argmax of the last position's logits
    /// (ties to the lowest id): only that id is read back.
    pub async fn eval_argmax(
        &self,
        st: &mut DeviceState,
        tokens: &[u32],
        start_pos: usize,
        max_batch: usize,
    ) -> Result<u32> {
        let v = self.run(st, tokens, start_pos, Want::Argmax, max_batch).await?;
        to_id(&v)
    }

    /// Whether [`Device::decode_chained`] overlaps steps: the backend queues its work (a GPU),
    /// so the next step can be recorded while this one runs.
    pub fn chains(&self) -> bool {
        match self {
            Device::Cpu(l) => l.backend.queues_work(),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => l.backend.queues_work(),
        }
    }

    /// Records and submits a one-token greedy step at `pos` whose token is the argmax of the
    /// last evaluation ([`Device::eval_argmax`] or a chained step), still on the device, and
    /// starts reading this step's argmax. The caller records the step after this one while the
    /// device runs it, and reads the id it was fed from the previous step's read.
    pub fn decode_chained(&self, st: &mut DeviceState, pos: usize) -> Result<PendingId> {
        match (self, st) {
            (Device::Cpu(l), DeviceState::Cpu(s)) => l.decode_chained(s, pos),
            #[cfg(feature = "wgpu")]
            (Device::Wgpu(l), DeviceState::Wgpu(s)) => l.decode_chained(s, pos),
            #[allow(unreachable_patterns)]
            _ => Err(RuntimeError::Invalid("session state from another backend".into())),
        }
    }

    async fn run(
        &self,
        st: &mut DeviceState,
        tokens: &[u32],
        start_pos: usize,
        want: Want,
        max_batch: usize,
    ) -> Result<Vec<f32>> {
        match (self, st) {
            (Device::Cpu(l), DeviceState::Cpu(s)) => {
                l.eval(s, tokens, start_pos, want, max_batch).await
            }
            #[cfg(feature = "wgpu")]
            (Device::Wgpu(l), DeviceState::Wgpu(s)) => {
                l.eval(s, tokens, start_pos, want, max_batch).await
            }
            // Unreachable when only the CPU backend is compiled in (the Memory64 build).
            #[allow(unreachable_patterns)]
            _ => Err(RuntimeError::Invalid("session state from another backend".into())),
        }
    }
}

#[cfg(feature = "wgpu")]
/// Opens the wgpu backend (in the browser: the page's WebGPU device, awaited on its event loop).
async fn open_wgpu(opts: DeviceOptions) -> Result<WgpuBackend> {
    // Cooperative matrices are opt-in while they are unverified on hardware (see WgpuConfig).
    let allow_coop = std::env::var("REALM_WGPU_COOP").is_ok_and(|v| v == "1");
    let config = WgpuConfig { profile: opts.profile, allow_coop, ..WgpuConfig::default() };
    Ok(WgpuBackend::new(config).await?)
}

impl<B: Backend> Loaded<B> {
    fn new_state(&self, n_ctx: usize, kv_dtype: KvDtype) -> Result<State<B>> {
        let kv = self.backend.kv_cache(self.model.kv_desc(n_ctx, kv_dtype))?;
        Ok(State { kv, n_ctx, scratch: Vec::new(), argmax: [None, None], argmax_last: 0 })
    }

    /// The scratch buffers for batches of `n` (made on first use; two sizes are kept).
    fn scratch_for<'s>(&self, st: &'s mut State<B>, n: usize) -> Result<&'s mut Scratch<B>> {
        if !st.scratch.iter().any(|s| s.len() == n) {
            if st.scratch.len() >= 2 {
                st.scratch.remove(0);
            }
            st.scratch.push(self.model.scratch(&self.backend, n)?);
        }
        st.scratch
            .iter_mut()
            .find(|s| s.len() == n)
            .ok_or_else(|| RuntimeError::Invalid("scratch buffer missing".into()))
    }

    /// Argmax slot `i`, made on first use.
    fn argmax_slot(&self, st: &mut State<B>, i: usize) -> Result<()> {
        if st.argmax[i].is_none() {
            st.argmax[i] = Some(self.backend.tensor(1, 1)?);
        }
        Ok(())
    }

    fn decode_chained(&self, st: &mut State<B>, pos: usize) -> Result<PendingId>
    where
        B: 'static,
    {
        let (src, dst) = (st.argmax_last, 1 - st.argmax_last);
        self.argmax_slot(st, dst)?;
        let n_ctx = st.n_ctx;
        // The scratch is taken out while the forward borrows it with the KV cache.
        let mut s = match st.scratch.iter().position(|s| s.len() == 1) {
            Some(i) => st.scratch.remove(i),
            None => self.model.scratch(&self.backend, 1)?,
        };
        let result = (|| {
            let [a, b] = &mut st.argmax;
            let (ids, out) = match (src, a, b) {
                (0, Some(a), Some(b)) => (&*a, b),
                (1, Some(a), Some(b)) => (&*b, a),
                _ => return Err(RuntimeError::Invalid("no argmax to chain from".into())),
            };
            let logits = self.model.forward_device_token(
                &self.backend,
                &mut st.kv,
                n_ctx,
                ids,
                pos,
                &mut s,
            )?;
            let last = logits
                .last()
                .ok_or_else(|| RuntimeError::Invalid("forward returned no logits".into()))?;
            self.backend.argmax(last, out)?;
            self.backend.submit()?;
            Ok(self.backend.read(out))
        })();
        st.scratch.push(s);
        if st.scratch.len() > 2 {
            st.scratch.remove(0);
        }
        let read = result?;
        st.argmax_last = dst;
        Ok(Box::pin(async move { to_id(&read.await?) }))
    }

    async fn eval(
        &self,
        st: &mut State<B>,
        tokens: &[u32],
        start_pos: usize,
        want: Want,
        max_batch: usize,
    ) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(RuntimeError::EmptyPrompt);
        }
        let all = want == Want::Logits(Logits::All);
        let max_batch = max_batch.max(1);
        let mut out = Vec::new();
        let n_chunks = tokens.len().div_ceil(max_batch);
        for (i, chunk) in tokens.chunks(max_batch).enumerate() {
            let last = i + 1 == n_chunks;
            // Intermediate chunks only fill the KV cache, unless every position's logits are wanted.
            let read = all || last;
            let pos = start_pos + i * max_batch;
            let n = chunk.len();
            let n_ctx = st.n_ctx;
            // Disjoint borrows of the state: the scratch and the KV cache.
            self.scratch_for(st, n)?;
            let s = st
                .scratch
                .iter_mut()
                .find(|s| s.len() == n)
                .ok_or_else(|| RuntimeError::Invalid("scratch buffer missing".into()))?;
            let logits = if all { Logits::All } else { Logits::Last };
            let batch = Batch { tokens: chunk, start_pos: pos, logits };
            let logits = self.model.forward(&self.backend, &mut st.kv, n_ctx, &batch, s)?;
            if !read {
                self.backend.submit()?;
                continue;
            }
            if want == Want::Argmax {
                let slot = st.argmax_last;
                let am = match &mut st.argmax[slot] {
                    Some(t) => t,
                    None => st.argmax[slot].insert(self.backend.tensor(1, 1)?),
                };
                let last_logits = logits
                    .last()
                    .ok_or_else(|| RuntimeError::Invalid("forward returned no logits".into()))?;
                self.backend.argmax(last_logits, am)?;
                self.backend.submit()?;
                out.extend(self.backend.read(am).await?);
                continue;
            }
            self.backend.submit()?;
            for t in logits {
                out.extend(self.backend.read(t).await?);
            }
        }
        Ok(out)
    }
}
