//! Recording: dispatches into the step's shared compute pass (a pass per op when profiling),
//! copies, and the submit that sends a step; with the host cost of each counted.

use std::sync::atomic::{AtomicU64, Ordering};

use realm_core::{CoreError, HostStat, Result};
use realm_shaders::Variant;

use super::{Bind, Gpu, lock};

/// The command encoder being recorded and, between copies, the compute pass its dispatches
/// share (dropped, so ended, before the encoder is used for anything else).
#[derive(Default)]
pub(super) struct Recorder {
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

    /// The pass the step's dispatches share, begun if none is open.
    fn shared_pass(&mut self, device: &wgpu::Device) -> Result<&mut wgpu::ComputePass<'static>> {
        if self.pass.is_none() {
            let pass = self
                .encoder(device)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                })
                .forget_lifetime();
            self.pass = Some(pass);
        }
        self.pass
            .as_mut()
            .ok_or_else(|| CoreError::Backend { op: "record", detail: "no open pass".into() })
    }
}

/// [`HostStat`] as counters (nanoseconds for the times).
#[derive(Default)]
pub(super) struct HostCounters {
    dispatches: AtomicU64,
    submits: AtomicU64,
    record_ns: AtomicU64,
    submit_ns: AtomicU64,
    pub(super) made: AtomicU64,
    pub(super) reused: AtomicU64,
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

/// `params` as the bytes of a uniform: u32 words, padded to whole 16-byte rows.
fn uniform_bytes(params: &[u32]) -> Vec<u8> {
    let len = params.len().div_ceil(4).max(1) * 16;
    let mut bytes = Vec::with_capacity(len);
    for w in params {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    bytes.resize(len, 0);
    bytes
}

impl Gpu {
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
        let (ubuf, uoff, ulen) = self.stage(&uniform_bytes(params))?;
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
                let pass = rec.shared_pass(&self.device)?;
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
        lock(&self.arena, "submit")?.flush(&self.queue);
        let mut timed = 0;
        if let Some(mut enc) = enc {
            if let Some(p) = &self.profiler {
                timed = p.resolve(&mut enc)?;
            }
            self.queue.submit([enc.finish()]);
        }
        if dispatches > 0 {
            lock(&self.groups, "submit")?.end_step();
            self.host.submits.fetch_add(1, Ordering::Relaxed);
            clock.add_to(&self.host.submit_ns);
        }
        if let Some(p) = &self.profiler {
            p.collect(&self.device, timed)?;
        }
        self.check("submit")
    }
}
