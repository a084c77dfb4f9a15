//! The KV cache: its buffers, and the ops that write it (kv_store, rope_kv_store).

use realm_core::{CoreError, KvDesc, KvDtype, Result, RopeParams, check, shape_err};
use realm_shaders::{KvFormat, Op};

use super::{rope, u};
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::tensor::{LayerKv, WgpuKv, WgpuTensor};

/// Largest head dimension of the attention kernel (`MAX_D` in attention.wgsl).
const MAX_HEAD_DIM: usize = 256;

/// The shader's cache format and the values per u32 word.
pub(super) fn format(dtype: KvDtype) -> (KvFormat, usize) {
    match dtype {
        KvDtype::F16 => (KvFormat::F16, 2),
        KvDtype::F32 => (KvFormat::F32, 1),
    }
}

pub(super) fn kv_cache(b: &WgpuBackend, desc: KvDesc) -> Result<WgpuKv> {
    const OP: &str = "kv_cache";
    let elem = match desc.dtype {
        KvDtype::F16 => 2,
        KvDtype::F32 => 4,
    };
    for dim in [desc.head_dim, desc.head_dim_v] {
        if dim % 2 != 0 || dim > MAX_HEAD_DIM {
            return Err(CoreError::Unsupported {
                op: OP,
                what: format!("head dimension {dim} (even and at most {MAX_HEAD_DIM})"),
                backend: "wgpu",
            });
        }
    }
    let bytes = |dim: usize| {
        desc.n_ctx
            .checked_mul(desc.n_head_kv)
            .and_then(|v| v.checked_mul(dim))
            .and_then(|v| v.checked_mul(elem))
            .map(|v| (v as u64).max(4).div_ceil(4) * 4)
            .filter(|&bytes| bytes <= b.gpu.max_binding())
            .ok_or_else(|| CoreError::Unsupported {
                op: OP,
                what: format!(
                    "a layer cache of {} positions × {} heads × {dim} (larger than one binding of {} bytes)",
                    desc.n_ctx, desc.n_head_kv, b.gpu.max_binding()
                ),
                backend: "wgpu",
            })
    };
    let (kb, vb) = (bytes(desc.head_dim)?, bytes(desc.head_dim_v)?);
    let make = |size: u64, label: &str| {
        b.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    };
    let layers = (0..desc.n_layer)
        .map(|_| LayerKv { k: make(kb, "realm kv k"), v: make(vb, "realm kv v") })
        .collect();
    b.gpu.check(OP)?;
    Ok(WgpuKv { desc, layers })
}

pub(super) fn kv_store(
    b: &WgpuBackend,
    kv: &mut WgpuKv,
    layer: usize,
    start_pos: usize,
    k: &WgpuTensor,
    v: &WgpuTensor,
) -> Result<()> {
    const OP: &str = "kv_store";
    check::kv_layer(OP, kv.layers.len(), layer)?;
    let d = kv.desc;
    check::same_shape(OP, "k", (k.rows, k.cols), (k.rows, d.n_head_kv * d.head_dim))?;
    check::same_shape(OP, "v", (v.rows, v.cols), (k.rows, d.n_head_kv * d.head_dim_v))?;
    let end = start_pos.saturating_add(k.rows);
    if end > d.n_ctx {
        return Err(CoreError::ContextOverflow { op: OP, pos: end - 1, n_ctx: d.n_ctx });
    }
    let (fmt, per_word) = format(d.dtype);
    let var = b.v(Op::KvStore, None, Some(fmt));
    let l = &kv.layers[layer];
    for (src, dst) in [(k, &l.k), (v, &l.v)] {
        let words = src.len() / per_word;
        let params = [u(OP, words)?, u(OP, start_pos * src.cols / per_word)?, 0, 0];
        b.each(var, words, &params, &[Bind::Whole(src.buffer()), Bind::Whole(dst)])?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn rope_kv_store(
    b: &WgpuBackend,
    q: &mut WgpuTensor,
    k: &mut WgpuTensor,
    v: &WgpuTensor,
    kv: &mut WgpuKv,
    layer: usize,
    q_rope: &RopeParams,
    k_rope: &RopeParams,
) -> Result<()> {
    const OP: &str = "rope_kv_store";
    let d = kv.desc;
    let same = RopeParams { n_heads: q_rope.n_heads, ..*k_rope } == *q_rope;
    if !same || k_rope.n_heads != d.n_head_kv || k_rope.head_dim != d.head_dim {
        // Not the one-dispatch shape: the separate ops (which check everything).
        rope::rope(b, q, q_rope)?;
        rope::rope(b, k, k_rope)?;
        return kv_store(b, kv, layer, k_rope.start_pos, k, v);
    }
    let p = q_rope;
    check::kv_layer(OP, kv.layers.len(), layer)?;
    if p.head_dim == 0 || !p.rope_dim.is_multiple_of(2) || p.rope_dim > p.head_dim {
        return Err(shape_err(OP, format!("rope_dim {} of head_dim {}", p.rope_dim, p.head_dim)));
    }
    let n = q.rows;
    check::same_shape(OP, "q", (q.rows, q.cols), (n, p.n_heads * p.head_dim))?;
    check::same_shape(OP, "k", (k.rows, k.cols), (n, d.n_head_kv * d.head_dim))?;
    check::same_shape(OP, "v", (v.rows, v.cols), (n, d.n_head_kv * d.head_dim_v))?;
    let end = p.start_pos.saturating_add(n);
    if end > d.n_ctx {
        return Err(CoreError::ContextOverflow { op: OP, pos: end - 1, n_ctx: d.n_ctx });
    }
    let (fmt, per_word) = format(d.dtype);
    let params = [
        u(OP, n)?,
        u(OP, p.n_heads)?,
        u(OP, d.n_head_kv)?,
        u(OP, p.head_dim)?,
        u(OP, p.rope_dim)?,
        u(OP, p.start_pos)?,
        u32::from(p.style == realm_core::RopeStyle::Neox),
        rope::theta_scale(p).to_bits(),
        p.freq_scale.to_bits(),
        u(OP, d.head_dim_v)?,
        u(OP, p.start_pos * k.cols / per_word)?,
        u(OP, p.start_pos * v.cols / per_word)?,
    ];
    let items = n * p.n_heads * (p.rope_dim / 2) + (k.len() + v.len()) / per_word;
    let l = &kv.layers[layer];
    let binds = [
        Bind::Whole(q.buffer()),
        Bind::Whole(k.buffer()),
        Bind::Whole(v.buffer()),
        Bind::Whole(&l.k),
        Bind::Whole(&l.v),
    ];
    b.each(b.v(Op::RopeKv, None, Some(fmt)), items, &params, &binds)
}
