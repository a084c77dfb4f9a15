//! The ONLY place that names backends (this folder): the run-time choice of backend is an
//! enum over the backends compiled in, and each method here dispatches to the generic code in
//! [`crate::loaded`]. `adapters.rs` lists GPUs and opens the wgpu backend.

mod adapters;

pub use adapters::{AdapterInfo, gpu_adapters, set_cpu_thread_spawner};

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
#[cfg(feature = "wgpu")]
use realm_backend_wgpu::WgpuBackend;
use realm_core::{BackendInfo, HostStat, KvDtype, OpStat, RowsDesc, SharedBytes};
use realm_gguf::Gguf;
use realm_model::Model;

use crate::error::{Result, RuntimeError};
use crate::loaded::{Loaded, PendingId, State, StepOut, StepRows, Want};

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
    /// The CPU backend's instruction-set level: `None` = `REALM_CPU_ISA` where set, else the
    /// best this CPU has. A level the CPU lacks is an error at load.
    pub cpu_isa: Option<realm_backend_cpu::CpuIsa>,
}

/// Per-op GPU time, when profiling was asked for and the backend can measure it.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// Totals per op, slowest first, and the passes that ran untimed (query set full).
    Ops { ops: Vec<OpStat>, untimed: u64 },
    /// Why there are no per-op times.
    Unavailable(String),
}

/// A model on whichever backend was chosen.
pub(crate) enum Device {
    Cpu(Box<Loaded<CpuBackend>>),
    #[cfg(feature = "wgpu")]
    Wgpu(Box<Loaded<WgpuBackend>>),
}

/// A KV pool and activation buffers on the same backend as the engine's [`Device`].
pub(crate) enum DeviceState {
    Cpu(Box<State<CpuBackend>>),
    #[cfg(feature = "wgpu")]
    Wgpu(Box<State<WgpuBackend>>),
}

/// `$body` with `$l` bound to the [`Loaded`] of whichever backend `$dev` is.
macro_rules! each {
    ($dev:expr, $l:ident => $body:expr) => {
        match $dev {
            Device::Cpu($l) => $body,
            #[cfg(feature = "wgpu")]
            Device::Wgpu($l) => $body,
        }
    };
}

/// `$body` with `$l` and `$s` bound to a [`Loaded`] and a [`State`] of the same backend; a
/// state of another backend is an error.
macro_rules! pair {
    ($dev:expr, $st:expr, $l:ident, $s:ident => $body:expr) => {
        match ($dev, $st) {
            (Device::Cpu($l), DeviceState::Cpu($s)) => $body,
            #[cfg(feature = "wgpu")]
            (Device::Wgpu($l), DeviceState::Wgpu($s)) => $body,
            // Unreachable when only the CPU backend is compiled in (the Memory64 build).
            #[allow(unreachable_patterns)]
            _ => Err(RuntimeError::Invalid("a KV pool from another backend".into())),
        }
    };
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
            BackendKind::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    let backend = adapters::open_wgpu(opts).await?;
                    let model = Model::load_with(&backend, gguf, bytes, uploaded)?;
                    return Ok(Device::Wgpu(Box::new(Loaded { backend, model })));
                }
                #[cfg(not(feature = "wgpu"))]
                return Err(adapters::no_wgpu());
            }
        };
        let backend =
            CpuBackend::try_new(CpuConfig { threads: opts.threads, mode, isa: opts.cpu_isa })?;
        let model = Model::load_with(&backend, gguf, bytes, uploaded)?;
        Ok(Device::Cpu(Box::new(Loaded { backend, model })))
    }

    pub fn info(&self) -> BackendInfo {
        each!(self, l => l.info())
    }

    /// The CPU backend's instruction-set level; `None` on a GPU backend.
    pub fn cpu_isa(&self) -> Option<realm_backend_cpu::CpuIsa> {
        match self {
            Device::Cpu(l) => Some(l.backend.isa()),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(_) => None,
        }
    }

    pub fn config(&self) -> &realm_model::ModelConfig {
        each!(self, l => &l.model.config)
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

    /// Bytes one KV slot (one position of one sequence) takes over every layer.
    pub fn kv_bytes_per_slot(&self, dtype: KvDtype) -> u64 {
        each!(self, l => l.model.kv_desc(1, 1, dtype).bytes_per_slot())
    }

    /// A KV pool of `n_blocks` blocks of `block_size` positions.
    pub fn new_state(
        &self,
        n_blocks: usize,
        block_size: usize,
        dtype: KvDtype,
    ) -> Result<DeviceState> {
        Ok(match self {
            Device::Cpu(l) => DeviceState::Cpu(Box::new(l.new_state(n_blocks, block_size, dtype)?)),
            #[cfg(feature = "wgpu")]
            Device::Wgpu(l) => {
                DeviceState::Wgpu(Box::new(l.new_state(n_blocks, block_size, dtype)?))
            }
        })
    }

    /// One step: the rows' tokens through the model, their keys and values into the pool,
    /// and what `want` asks of the logit rows read back.
    pub async fn step(
        &self,
        st: &mut DeviceState,
        rows: &StepRows<'_>,
        want: &Want<'_>,
    ) -> Result<StepOut> {
        pair!(self, st, l, s => l.step(s, rows, want).await)
    }

    /// Logit row `k` of the last step read back afterwards (see [`Loaded::read_logit_row`]).
    #[cfg(not(target_family = "wasm"))]
    pub async fn read_logit_row(&self, st: &DeviceState, k: usize) -> Result<Vec<f32>> {
        pair!(self, st, l, s => l.read_logit_row(s, k).await)
    }

    /// Whether [`Device::decode_chained`] overlaps steps: the backend queues its work (a GPU),
    /// so the next step can be recorded while this one runs.
    pub fn chains(&self) -> bool {
        each!(self, l => l.chains())
    }

    /// Records and submits a one-row greedy step placed by `rows` whose token is the argmax of
    /// the last single-row evaluation (or chained step), still on the device, and starts
    /// reading this step's argmax. The caller records the step after this one while the
    /// device runs it, and reads the id it was fed from the previous step's read.
    pub fn decode_chained(&self, st: &mut DeviceState, rows: &RowsDesc<'_>) -> Result<PendingId> {
        pair!(self, st, l, s => l.decode_chained(s, rows))
    }
}
