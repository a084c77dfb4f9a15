//! Per-op GPU time (`REALM_PROFILE=1`): every compute pass writes a start and an end timestamp
//! into a query set; each submit resolves the used queries, waits for them (profiling
//! serializes the queue, so it measures ops, not overlap) and adds each pass's time to its op.

use std::collections::BTreeMap;
use std::sync::Mutex;

use realm_core::{CoreError, OpStat, Result};

use crate::gpu::lock;

/// Passes timed per submit (two queries each; wgpu allows 4096 queries per set). Passes past
/// this in one submit run untimed and are counted.
const MAX_PASSES: u32 = 2048;

#[derive(Default)]
struct State {
    /// The op label and bytes of each timed pass of the current submit, by pass index.
    pending: Vec<(String, u64)>,
    stats: BTreeMap<String, OpStat>,
    untimed: u64,
}

pub(crate) struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    state: Mutex<State>,
}

impl Profiler {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let bytes = u64::from(MAX_PASSES) * 2 * 8;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Self {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("realm profile"),
                ty: wgpu::QueryType::Timestamp,
                count: MAX_PASSES * 2,
            }),
            resolve: buffer(
                "realm profile resolve",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buffer(
                "realm profile readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            period_ns: f64::from(queue.get_timestamp_period()),
            state: Mutex::default(),
        }
    }

    /// The timestamp writes of the next pass, labelled `op`, moving `bytes`; `None` (counted)
    /// when this submit's query set is full.
    pub(crate) fn next(
        &self,
        op: String,
        bytes: u64,
    ) -> Result<Option<wgpu::ComputePassTimestampWrites<'_>>> {
        let mut s = lock(&self.state, "profile")?;
        let i = s.pending.len() as u32;
        if i >= MAX_PASSES {
            s.untimed += 1;
            return Ok(None);
        }
        s.pending.push((op, bytes));
        Ok(Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        }))
    }

    /// Records the resolve of this submit's queries; returns how many passes were timed.
    pub(crate) fn resolve(&self, enc: &mut wgpu::CommandEncoder) -> Result<u32> {
        let n = lock(&self.state, "profile")?.pending.len() as u32;
        if n > 0 {
            enc.resolve_query_set(&self.queries, 0..2 * n, &self.resolve, 0);
            enc.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, Some(u64::from(n) * 16));
        }
        Ok(n)
    }

    /// After the submit that resolved `n` passes: waits for the timestamps and adds them up.
    pub(crate) fn collect(&self, device: &wgpu::Device, n: u32) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let err = |detail: String| CoreError::Backend { op: "profile", detail };
        let slice = self.readback.slice(..u64::from(n) * 16);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| err(format!("waiting for timestamps: {e}")))?;
        let ticks: Vec<u64> = {
            let view = slice.get_mapped_range().map_err(|e| err(format!("{e:?}")))?;
            view.chunks_exact(8)
                .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect()
        };
        self.readback.unmap();
        let mut s = lock(&self.state, "profile")?;
        let pending = std::mem::take(&mut s.pending);
        for ((op, bytes), t) in pending.into_iter().zip(ticks.chunks_exact(2)) {
            let secs = t[1].saturating_sub(t[0]) as f64 * self.period_ns * 1e-9;
            let e = s.stats.entry(op.clone()).or_insert(OpStat {
                op,
                calls: 0,
                seconds: 0.0,
                bytes: 0,
            });
            e.calls += 1;
            e.seconds += secs;
            e.bytes += bytes;
        }
        Ok(())
    }

    /// Totals so far, slowest op first, and how many passes ran untimed.
    pub(crate) fn report(&self) -> Result<(Vec<OpStat>, u64)> {
        let s = lock(&self.state, "profile")?;
        let mut v: Vec<OpStat> = s.stats.values().cloned().collect();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        Ok((v, s.untimed))
    }
}
