//! The activation buffer pool, keyed by size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use realm_core::{CoreError, Result};

use super::{Gpu, lock};

/// Most bytes the pool keeps in freed buffers before it lets them go.
const POOL_MAX_FREE: u64 = 1 << 30;

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

impl Gpu {
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
}
