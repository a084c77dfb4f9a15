//! The device context: adapter probe and tier choice, the error slot fed by wgpu's callbacks,
//! the buffer pool, the uniform arena, the pipeline cache and the command recorder.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard};

use realm_core::{CoreError, Result};
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

/// Small per-op data (uniform parameters, token lists) written at distinct offsets of a few
/// arena buffers: `queue.write_buffer` lands before the next submit, so every op of one step
/// needs its own slice. The cursor returns to the start after each submit.
#[derive(Default)]
struct Arena {
    buffers: Vec<wgpu::Buffer>,
    current: usize,
    offset: u64,
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
    errors: Arc<Mutex<ErrorSlot>>,
    pool: Arc<Mutex<Pool>>,
    kernels: Mutex<HashMap<Variant, Arc<Kernel>>>,
    encoder: Mutex<Option<wgpu::CommandEncoder>>,
    arena: Mutex<Arena>,
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
            device,
            queue,
            limits,
            tier,
            name,
            details,
            errors,
            pool: Arc::default(),
            kernels: Mutex::default(),
            encoder: Mutex::default(),
            arena: Mutex::default(),
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
        }
        let (at, idx) = (a.offset, a.current);
        a.offset = (at + len).div_ceil(align) * align;
        let buffer = a.buffers[idx].clone();
        drop(a);
        if !data.is_empty() {
            self.queue.write_buffer(&buffer, at, data);
        }
        Ok((buffer, at, len))
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
        let kernel = self.kernel(v)?;
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let (ubuf, uoff, ulen) = self.stage(&bytes)?;
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &ubuf,
                offset: uoff,
                size: NonZeroU64::new(ulen),
            }),
        }];
        for (i, b) in binds.iter().enumerate() {
            let resource = match *b {
                Bind::Whole(buf) => buf.as_entire_binding(),
                Bind::Slice(buf, offset, size) => {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset,
                        size: NonZeroU64::new(size),
                    })
                }
            };
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource });
        }
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &entries,
        });
        let mut enc = lock(&self.encoder, "record")?;
        let enc = enc.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        let timestamp_writes = match &self.profiler {
            Some(p) => p.next(v.name(), moved)?,
            None => None,
        };
        let mut pass =
            enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
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
        let mut enc = lock(&self.encoder, "record")?;
        let enc = enc.get_or_insert_with(|| {
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        enc.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, Some(bytes));
        Ok(())
    }

    /// Sends everything recorded (and every staged write) to the queue.
    pub(crate) fn submit(&self) -> Result<()> {
        self.check("submit")?;
        let enc = lock(&self.encoder, "submit")?.take();
        let mut timed = 0;
        if let Some(mut enc) = enc {
            if let Some(p) = &self.profiler {
                timed = p.resolve(&mut enc)?;
            }
            self.queue.submit([enc.finish()]);
        }
        if let Some(p) = &self.profiler {
            p.collect(&self.device, timed)?;
        }
        let mut a = lock(&self.arena, "submit")?;
        a.current = 0;
        a.offset = 0;
        drop(a);
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
