//! Activations and the KV cache.

use realm_core::KvDesc;

use crate::gpu::Pooled;

/// An f32 matrix `[rows, cols]` in a pooled storage buffer.
pub struct WgpuTensor {
    pub(crate) buf: Pooled,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

impl WgpuTensor {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buf.buffer
    }

    pub(crate) fn len(&self) -> usize {
        self.rows * self.cols
    }
}

/// One layer's pool: K `[slots, n_head_kv, head_dim]` and V `[slots, n_head_kv, head_dim_v]`
/// (`slots = n_blocks · block_size`), f16 pairs or f32 values in u32 words.
pub(crate) struct LayerKv {
    pub(crate) k: wgpu::Buffer,
    pub(crate) v: wgpu::Buffer,
}

/// The paged KV pool of every layer.
pub struct WgpuKv {
    pub(crate) desc: KvDesc,
    pub(crate) layers: Vec<LayerKv>,
}
