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

/// One layer's cache: K `[n_ctx, n_head_kv, head_dim]` and V `[n_ctx, n_head_kv, head_dim_v]`,
/// f16 pairs or f32 values in u32 words.
pub(crate) struct LayerKv {
    pub(crate) k: wgpu::Buffer,
    pub(crate) v: wgpu::Buffer,
}

/// The KV cache of every layer.
pub struct WgpuKv {
    pub(crate) desc: KvDesc,
    pub(crate) layers: Vec<LayerKv>,
}
