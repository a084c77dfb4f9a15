//! The device context: the error slot fed by wgpu's callbacks (`error`), the buffer pool
//! (`pool`), the staging arena (`arena`), the pipeline (`kernel`) and bind group (`bind`)
//! caches and the command recorder (`record`).
//!
//! Host cost matters as much as kernel time for small models: a decode step is hundreds of
//! dispatches. So a step's dispatches share one compute pass (wgpu places the barriers between
//! them), its parameters reach the GPU in one queue write per arena buffer at submit, and bind
//! groups are reused: a decode step stages its parameters at the same arena offsets and binds
//! the same pooled buffers as the step before, so its bind groups repeat.

mod arena;
mod bind;
mod error;
mod kernel;
mod pool;
mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use realm_core::{CoreError, Result};
use realm_shaders::{Target, Tier, Variant};

use crate::profile::Profiler;

pub(crate) use pool::Pooled;

/// Locks `m`, turning a poisoned lock (a panic elsewhere) into an error.
pub(crate) fn lock<'a, T>(m: &'a Mutex<T>, op: &'static str) -> Result<MutexGuard<'a, T>> {
    m.lock().map_err(|_| CoreError::Backend { op, detail: "a lock was poisoned".into() })
}

/// The shader target of this build.
pub(crate) const TARGET: Target =
    if cfg!(target_arch = "wasm32") { Target::Browser } else { Target::Native };

/// One storage binding of a dispatch: a whole buffer, or a slice of one.
pub(crate) enum Bind<'a> {
    Whole(&'a wgpu::Buffer),
    Slice(&'a wgpu::Buffer, u64, u64),
}

pub(crate) struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) tier: Tier,
    pub(crate) name: String,
    pub(crate) details: Vec<String>,
    /// Largest buffer of a split weight.
    pub(crate) weight_chunk: u64,
    /// Largest activation ([`Gpu::storage`]), at most the largest binding.
    pub(crate) tensor_cap: u64,
    /// Weight rows from which decode matvecs take the wide variant ([`crate::WgpuConfig`]).
    pub(crate) matvec_wide_from: usize,
    errors: Arc<Mutex<error::ErrorSlot>>,
    pool: Arc<Mutex<pool::Pool>>,
    kernels: Mutex<HashMap<Variant, Arc<kernel::Kernel>>>,
    groups: Mutex<bind::BindCache>,
    recorder: Mutex<record::Recorder>,
    arena: Mutex<arena::Arena>,
    host: record::HostCounters,
    /// Per-op timestamps (`REALM_PROFILE=1` on an adapter with `timestamp-query`).
    pub(crate) profiler: Option<Profiler>,
}

impl Gpu {
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        tier: Tier,
        name: String,
        details: Vec<String>,
    ) -> Self {
        let errors = error::install(&device);
        let limits = device.limits();
        let weight_chunk = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        Self {
            weight_chunk,
            tensor_cap: u64::MAX,
            matvec_wide_from: 0,
            device,
            queue,
            limits,
            tier,
            name,
            details,
            errors,
            pool: Arc::default(),
            kernels: Mutex::default(),
            groups: Mutex::default(),
            recorder: Mutex::default(),
            arena: Mutex::default(),
            host: record::HostCounters::default(),
            profiler: None,
        }
    }

    /// The error wgpu reported since the last check, if any (a lost device stays reported).
    pub(crate) fn check(&self, op: &'static str) -> Result<()> {
        error::take_error(&self.errors, op)
    }

    /// [`Gpu::check`] for later, detached from `self` (an awaited readback).
    pub(crate) fn checker(&self, op: &'static str) -> impl Fn() -> Result<()> + use<> {
        let errors = self.errors.clone();
        move || error::take_error(&errors, op)
    }

    /// Largest storage binding, in bytes.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Largest activation buffer, in bytes.
    pub(crate) fn max_tensor(&self) -> u64 {
        self.max_binding().min(self.tensor_cap)
    }
}

/// `n` workgroups laid out for a kernel that reads them with `flat_group` (x first, then y).
pub(crate) fn flat(n: usize) -> Result<[u32; 3]> {
    const MAX: usize = 65_535;
    let x = n.min(MAX);
    let y = if x == 0 { 0 } else { n.div_ceil(x) };
    let too_big = || CoreError::Unsupported {
        op: "dispatch",
        what: format!("{n} workgroups"),
        backend: "wgpu",
    };
    Ok([u32::try_from(x).map_err(|_| too_big())?, u32::try_from(y).map_err(|_| too_big())?, 1])
}
