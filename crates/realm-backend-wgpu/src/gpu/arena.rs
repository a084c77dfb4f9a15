//! The staging arena: small per-op data (uniform parameters, token lists) at distinct offsets
//! of a few buffers.

use realm_core::Result;

use super::{Gpu, lock};

/// Bytes of one uniform/small-data arena buffer.
const ARENA_BYTES: u64 = 64 * 1024;
/// Data larger than this gets a buffer of its own instead of an arena slice.
const ARENA_MAX_ITEM: u64 = ARENA_BYTES / 4;

/// Every op of one step needs its own slice, since all of them run after the writes. Data is
/// gathered in a host copy of each buffer and written once per buffer at submit. The cursor
/// returns to the start after each submit, so a step that stages the same sizes in the same
/// order as the last one uses the same offsets.
#[derive(Default)]
pub(super) struct Arena {
    buffers: Vec<wgpu::Buffer>,
    /// Host copy of each buffer and how many leading bytes of it this step wrote.
    host: Vec<(Vec<u8>, usize)>,
    current: usize,
    offset: u64,
    /// Flushes so far: what was staged before the last one may since have been overwritten.
    epoch: u64,
}

impl Arena {
    /// Writes what this step staged to the buffers and rewinds the cursor.
    pub(super) fn flush(&mut self, queue: &wgpu::Queue) {
        for (buffer, (host, used)) in self.buffers.iter().zip(self.host.iter_mut()) {
            if *used > 0 {
                queue.write_buffer(buffer, 0, &host[..*used]);
                *used = 0;
            }
        }
        self.current = 0;
        self.offset = 0;
        self.epoch += 1;
    }
}

impl Gpu {
    /// Counts submits: data [`Gpu::stage`]d under one epoch is valid until the epoch changes.
    pub(crate) fn stage_epoch(&self) -> Result<u64> {
        Ok(lock(&self.arena, "stage")?.epoch)
    }

    /// Writes `data` (a multiple of 4 bytes) where the next recorded op can read it; returns
    /// the buffer, offset and size to bind, valid until the next submit.
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
}
