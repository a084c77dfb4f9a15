//! Bind groups, reused from one step to the next: a decode step stages its parameters at the
//! same arena offsets and binds the same pooled buffers as the step before, so its bind
//! groups repeat.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::Ordering;

use realm_core::Result;
use realm_shaders::Variant;

use super::kernel::Kernel;
use super::{Gpu, lock};

/// What a bind group binds: the kernel and each binding's buffer, offset and size (0: whole).
#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    variant: Variant,
    entries: Vec<(wgpu::Buffer, u64, u64)>,
}

/// Bind groups of the last two dispatching submits: a group used in one step and then in the
/// next moves forward; the rest are dropped (with their references to buffers) a step later.
#[derive(Default)]
pub(super) struct BindCache {
    current: HashMap<BindKey, wgpu::BindGroup>,
    previous: HashMap<BindKey, wgpu::BindGroup>,
}

impl BindCache {
    /// A dispatching step ended: its groups become the ones the next step may reuse.
    pub(super) fn end_step(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }
}

impl Gpu {
    /// A bind group for `kernel` binding `entries` at bindings 0, 1, ...: the one the
    /// previous step made for the same buffers where there is one.
    pub(super) fn bind_group(
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
}
