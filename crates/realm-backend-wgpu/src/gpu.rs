//! The device context: adapter probe and tier choice, the error slot fed by wgpu's callbacks,
//! the buffer pool, the uniform arena, the pipeline and bind group caches and the command
//! recorder.
//!
//! Host cost matters as much as kernel time for small models: a decode step is hundreds of
//! dispatches. So a step's dispatches share one compute pass (wgpu places the barriers between
//! them), its parameters reach the GPU in one queue write per arena buffer at submit, and bind
//! groups are reused: a decode step stages its parameters at the same arena offsets and binds
//! the same pooled buffers as the step before, so its bind groups repeat.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use realm_core::{CoreError, HostStat, Result};
use realm_shaders::{Target, Tier, Variant};

use crate::profile::Profiler;

/// Bytes of one uniform/small-data arena buffer.
const ARENA_BYTES: u64 = 64 * 1024;
/// Data larger than this gets a buffer of its own instead of an arena slice.
const ARENA_MAX_ITEM: u64 = ARENA_BYTES / 4;
/// Most bytes the pool keeps in freed buffers before it lets them go.
const POOL_MAX_FREE: u64 = 1 << 30;

/// Locks `m`, turning a poisoned lock (a panic elsewhere) into an error.
pub(crate) fn lock<'a, T>(m: &'a Mutex<T>, op: &'static str) -> Result<MutexGuard<'a, T>> {
    m.lock().map_err(|_| CoreError::Backend { op, detail: "a lock was poisoned".into() })
}

/// The shader target of this build.
pub(crate) const TARGET: Target =
    if cfg!(target_arch = "wasm32") { Target::Browser } else { Target::Native };

/// An error reported by wgpu's callbacks, kept until an op can return it.
#[derive(Default)]
pub(crate) struct ErrorSlot {
    error: Option<CoreError>,
}

fn from_wgpu(e: wgpu::Error) -> CoreError {
    match e {
        wgpu::Error::OutOfMemory { .. } => {
            CoreError::OutOfMemory { what: "a GPU allocation".into(), bytes: 0 }
        }
        wgpu::Error::Validation { description, .. } => {
            CoreError::Backend { op: "wgpu validation", detail: description }
        }
        wgpu::Error::Internal { description, .. } => {
            CoreError::Backend { op: "wgpu", detail: description }
        }
    }
}

/// A buffer from the pool: it goes back to the pool when dropped. Commands recorded before the
/// drop run before any command recorded after the buffer is handed out again (one queue, in
/// order), so reuse within a step is safe.
pub(crate) struct Pooled {
    pub(crate) buffer: wgpu::Buffer,
    size: u64,
    pool: Arc<Mutex<Pool>>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.lock() {
            p.give(self.size, self.buffer.clone());
        }
    }
}

#[derive(Default)]
pub(crate) struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    free_bytes: u64,
}

impl Pool {
    fn give(&mut self, size: u64, buffer: wgpu::Buffer) {
        if self.free_bytes + size > POOL_MAX_FREE {
            buffer.destroy();
            return;
        }
        self.free_bytes += size;
        self.free.entry(size).or_default().push(buffer);
    }

    fn take(&mut self, size: u64) -> Option<wgpu::Buffer> {
        let b = self.free.get_mut(&size)?.pop()?;
        self.free_bytes -= size;
        Some(b)
    }
}

/// Small per-op data (uniform parameters, token lists) at distinct offsets of a few arena
/// buffers: every op of one step needs its own slice, since all of them run after the writes.
/// Data is gathered in a host copy of each buffer and written once per buffer at submit. The
/// cursor returns to the start after each submit, so a step that stages the same sizes in the
/// same order as the last one uses the same offsets.
#[derive(Default)]
struct Arena {
    buffers: Vec<wgpu::Buffer>,
    /// Host copy of each buffer and how many leading bytes of it this step wrote.
    host: Vec<(Vec<u8>, usize)>,
    current: usize,
    offset: u64,
}

/// What a bind group binds: the kernel and each binding's buffer, offset and size (0: whole).
#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    variant: Variant,
    entries: Vec<(wgpu::Buffer, u64, u64)>,
}

/// Bind groups of the last two dispatching submits: a group used in one step and then in the
/// next moves forward; the rest are dropped (with their references to buffers) a step later.
#[derive(Default)]
struct BindCache {
    current: HashMap<BindKey, wgpu::BindGroup>,
    previous: HashMap<BindKey, wgpu::BindGroup>,
}

/// The command encoder being recorded and, between copies, the compute pass its dispatches
/// share (dropped, so ended, before the encoder is used for anything else).
#[derive(Default)]
struct Recorder {
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: u64,
}

impl Recorder {
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }
}

/// [`HostStat`] as counters (nanoseconds for the times).
#[derive(Default)]
struct HostCounters {
    dispatches: AtomicU64,
    submits: AtomicU64,
    record_ns: AtomicU64,
    submit_ns: AtomicU64,
    made: AtomicU64,
    reused: AtomicU64,
}

/// A host clock where there is one (not on wasm32-unknown-unknown, where `Instant` panics).
struct Clock(#[cfg(not(target_family = "wasm"))] std::time::Instant);

impl Clock {
    fn start() -> Self {
        Self(
            #[cfg(not(target_family = "wasm"))]
            std::time::Instant::now(),
        )
    }

    fn add_to(&self, counter: &AtomicU64) {
        #[cfg(not(target_family = "wasm"))]
        counter.fetch_add(
            u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        #[cfg(target_family = "wasm")]
        let _ = counter;
    }
}

/// A compiled kernel and its bind group layout.
pub(crate) struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

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
    errors: Arc<Mutex<ErrorSlot>>,
    pool: Arc<Mutex<Pool>>,
    kernels: Mutex<HashMap<Variant, Arc<Kernel>>>,
    groups: Mutex<BindCache>,
    recorder: Mutex<Recorder>,
    arena: Mutex<Arena>,
    host: HostCounters,
    /// Per-op timestamps (`REALM_PROFILE=1` on an adapter with `timestamp-query`).
    pub(crate) profiler: Option<Profiler>,
}

fn take_error(errors: &Mutex<ErrorSlot>, op: &'static str) -> Result<()> {
    let mut s = lock(errors, op)?;
    match &s.error {
        None => Ok(()),
        Some(e @ CoreError::DeviceLost { .. }) => Err(e.clone()),
        Some(_) => Err(s.error.take().unwrap_or(CoreError::Backend { op, detail: String::new() })),
    }
}

impl Gpu {
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        tier: Tier,
        name: String,
        details: Vec<String>,
    ) -> Self {
        let errors = Arc::new(Mutex::new(ErrorSlot::default()));
        let slot = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = slot.lock() {
                s.error.get_or_insert(from_wgpu(e));
            }
        }));
        let slot = errors.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut s) = slot.lock() {
                s.error = Some(CoreError::DeviceLost { reason: format!("{reason:?}: {message}") });
            }
        });
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
            host: HostCounters::default(),
            profiler: None,
        }
    }

    /// The error wgpu reported since the last check, if any (a lost device stays reported).
    pub(crate) fn check(&self, op: &'static str) -> Result<()> {
        take_error(&self.errors, op)
    }

    /// [`Gpu::check`] for later, detached from `self` (an awaited readback).
    pub(crate) fn checker(&self, op: &'static str) -> impl Fn() -> Result<()> + use<> {
        let errors = self.errors.clone();
        move || take_error(&errors, op)
    }

    /// Largest storage binding, in bytes.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Largest activation buffer, in bytes.
    pub(crate) fn max_tensor(&self) -> u64 {
        self.max_binding().min(self.tensor_cap)
    }

    /// A storage buffer of at least `bytes` (rounded up to 256) from the pool.
    pub(crate) fn storage(&self, what: &str, bytes: u64) -> Result<Pooled> {
        let size = bytes.max(4).div_ceil(256) * 256;
        if size > self.max_tensor() {
            return Err(CoreError::Unsupported {
                op: "tensor",
                what: format!(
                    "{what} of {bytes} bytes (the device binds at most {} bytes)",
                    self.max_tensor()
                ),
                backend: "wgpu",
            });
        }
        let reused = lock(&self.pool, "tensor")?.take(size);
        let buffer = match reused {
            Some(b) => b,
            None => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(what),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        Ok(Pooled { buffer, size, pool: self.pool.clone() })
    }

    /// Writes `data` (a multiple of 4 bytes) where the next recorded op can read it; returns
    /// the buffer, offset and size to bind.
    pub(crate) fn stage(&self, data: &[u8]) -> Result<(wgpu::Buffer, u64, u64)> {
        let len = (data.len() as u64).max(16);
        let usage = wgpu::BufferUsages::UNIFORM
            | wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST;
        if len > ARENA_MAX_ITEM {
            let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("realm staged data"),
                size: len.div_ceil(4) * 4,
                usage,
                mapped_at_creation: false,
            });
            self.queue.write_buffer(&b, 0, data);
            return Ok((b, 0, len));
        }
        let align = u64::from(
            self.limits
                .min_uniform_buffer_offset_alignment
                .max(self.limits.min_storage_buffer_offset_alignment),
        );
        let mut a = lock(&self.arena, "stage")?;
        if a.offset + len > ARENA_BYTES {
            a.current += 1;
            a.offset = 0;
        }
        if a.current == a.buffers.len() {
            let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("realm arena"),
                size: ARENA_BYTES,
                usage,
                mapped_at_creation: false,
            });
            a.buffers.push(b);
            a.host.push((vec![0; ARENA_BYTES as usize], 0));
        }
        let (at, idx) = (a.offset, a.current);
        a.offset = (at + len).div_ceil(align) * align;
        let buffer = a.buffers[idx].clone();
        let (host, used) = &mut a.host[idx];
        let start = at as usize;
        host[start..start + data.len()].copy_from_slice(data);
        // Queue writes are whole 4-byte words.
        *used = (*used).max((start + data.len()).div_ceil(4) * 4);
        Ok((buffer, at, len))
    }

    /// A bind group for `kernel` binding `entries` at bindings 0, 1, ...: the one the
    /// previous step made for the same buffers where there is one.
    fn bind_group(
        &self,
        v: Variant,
        kernel: &Kernel,
        entries: Vec<(wgpu::Buffer, u64, u64)>,
    ) -> Result<wgpu::BindGroup> {
        let key = BindKey { variant: v, entries };
        let mut cache = lock(&self.groups, "bind group")?;
        if let Some(g) = cache.current.get(&key) {
            self.host.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(g.clone());
        }
        if let Some((key, g)) = cache.previous.remove_entry(&key) {
            self.host.reused.fetch_add(1, Ordering::Relaxed);
            cache.current.insert(key, g.clone());
            return Ok(g);
        }
        let group = {
            let resources: Vec<wgpu::BindGroupEntry<'_>> = key
                .entries
                .iter()
                .enumerate()
                .map(|(i, (buffer, offset, size))| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: *offset,
                        size: NonZeroU64::new(*size),
                    }),
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &kernel.layout,
                entries: &resources,
            })
        };
        self.host.made.fetch_add(1, Ordering::Relaxed);
        cache.current.insert(key, group.clone());
        Ok(group)
    }

    /// Host cost of recording so far.
    pub(crate) fn host_stats(&self) -> HostStat {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HostStat {
            dispatches: get(&self.host.dispatches),
            submits: get(&self.host.submits),
            record_seconds: get(&self.host.record_ns) as f64 * 1e-9,
            submit_seconds: get(&self.host.submit_ns) as f64 * 1e-9,
            bind_groups_made: get(&self.host.made),
            bind_groups_reused: get(&self.host.reused),
        }
    }

    fn kernel(&self, v: Variant) -> Result<Arc<Kernel>> {
        let mut cache = lock(&self.kernels, "pipeline")?;
        if let Some(k) = cache.get(&v) {
            return Ok(k.clone());
        }
        let source = realm_shaders::source(&v, TARGET)
            .map_err(|e| CoreError::Backend { op: "pipeline", detail: e.to_string() })?;
        if std::env::var_os("REALM_DUMP_SHADERS").is_some() {
            eprintln!("// ---- {}\n{source}", v.name());
        }
        let label = v.name();
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let k = Arc::new(Kernel { pipeline, layout });
        cache.insert(v, k.clone());
        Ok(k)
    }

    /// Records one dispatch of `v`: `params` (u32 words) at binding 0 as a uniform, then
    /// `binds` at bindings 1, 2, ...; `groups` workgroups.
    pub(crate) fn dispatch(
        &self,
        v: Variant,
        params: &[u32],
        binds: &[Bind<'_>],
        groups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_moving(v, params, binds, groups, 0)
    }

    /// [`Gpu::dispatch`] of an op that reads and writes `moved` bytes in all (for the profile's GB/s).
    pub(crate) fn dispatch_moving(
        &self,
        v: Variant,
        params: &[u32],
        binds: &[Bind<'_>],
        groups: [u32; 3],
        moved: u64,
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(CoreError::Unsupported {
                op: "dispatch",
                what: format!(
                    "{groups:?} workgroups of {} (at most {max} per dimension)",
                    v.name()
                ),
                backend: "wgpu",
            });
        }
        let clock = Clock::start();
        let kernel = self.kernel(v)?;
        let mut bytes = Vec::with_capacity(params.len().div_ceil(4).max(1) * 16);
        for w in params {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        bytes.resize(params.len().div_ceil(4).max(1) * 16, 0);
        let (ubuf, uoff, ulen) = self.stage(&bytes)?;
        let mut entries = Vec::with_capacity(binds.len() + 1);
        entries.push((ubuf, uoff, ulen));
        for b in binds {
            entries.push(match *b {
                Bind::Whole(buf) => (buf.clone(), 0, 0),
                Bind::Slice(buf, offset, size) => (buf.clone(), offset, size),
            });
        }
        let group = self.bind_group(v, &kernel, entries)?;
        let mut rec = lock(&self.recorder, "record")?;
        let rec = &mut *rec;
        rec.dispatches += 1;
        match &self.profiler {
            // A pass per op: its timestamps bracket that op alone.
            Some(p) => {
                let timestamp_writes = p.next(v.name(), moved)?;
                let enc = rec.encoder(&self.device);
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes,
                });
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
            None => {
                if rec.pass.is_none() {
                    let pass = rec
                        .encoder(&self.device)
                        .begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: None,
                        })
                        .forget_lifetime();
                    rec.pass = Some(pass);
                }
                let Some(pass) = rec.pass.as_mut() else {
                    return Err(CoreError::Backend { op: "record", detail: "no open pass".into() });
                };
                pass.set_pipeline(&kernel.pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
        }
        drop(kernel);
        self.host.dispatches.fetch_add(1, Ordering::Relaxed);
        clock.add_to(&self.host.record_ns);
        Ok(())
    }

    /// Records a buffer-to-buffer copy.
    pub(crate) fn copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    ) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let mut rec = lock(&self.recorder, "record")?;
        rec.encoder(&self.device).copy_buffer_to_buffer(
            src,
            src_offset,
            dst,
            dst_offset,
            Some(bytes),
        );
        Ok(())
    }

    /// Sends everything recorded (and every staged write) to the queue.
    pub(crate) fn submit(&self) -> Result<()> {
        self.check("submit")?;
        let clock = Clock::start();
        let (enc, dispatches) = {
            let mut rec = lock(&self.recorder, "submit")?;
            rec.pass = None;
            (rec.encoder.take(), std::mem::take(&mut rec.dispatches))
        };
        {
            let mut a = lock(&self.arena, "submit")?;
            let a = &mut *a;
            for (buffer, (host, used)) in a.buffers.iter().zip(a.host.iter_mut()) {
                if *used > 0 {
                    self.queue.write_buffer(buffer, 0, &host[..*used]);
                    *used = 0;
                }
            }
            a.current = 0;
            a.offset = 0;
        }
        let mut timed = 0;
        if let Some(mut enc) = enc {
            if let Some(p) = &self.profiler {
                timed = p.resolve(&mut enc)?;
            }
            self.queue.submit([enc.finish()]);
        }
        if dispatches > 0 {
            let mut g = lock(&self.groups, "submit")?;
            g.previous = std::mem::take(&mut g.current);
            drop(g);
            self.host.submits.fetch_add(1, Ordering::Relaxed);
            clock.add_to(&self.host.submit_ns);
        }
        if let Some(p) = &self.profiler {
            p.collect(&self.device, timed)?;
        }
        self.check("submit")
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
