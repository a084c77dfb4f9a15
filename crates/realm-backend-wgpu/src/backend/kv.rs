//! The paged KV pool: its buffers, and the ops that write it (kv_store, rope_kv_store), each
//! row scattered to its own slot.

use realm_core::{CoreError, KvDesc, KvDtype, Result, RopeParams, check};
use realm_shaders::{KvFormat, Op};

use super::{rope, u};
use crate::WgpuBackend;
use crate::gpu::Bind;
use crate::rows::WgpuRows;
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

/// One K and one V buffer per layer, of `n_blocks · block_size` slots each; a layer must fit
/// in one storage binding.
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
        desc.slots()
            .and_then(|v| v.checked_mul(desc.n_head_kv))
            .and_then(|v| v.checked_mul(dim))
            .and_then(|v| v.checked_mul(elem))
            .map(|v| (v as u64).max(4).div_ceil(4) * 4)
            .filter(|&bytes| bytes <= b.gpu.max_binding())
            .ok_or_else(|| CoreError::Unsupported {
                op: OP,
                what: format!(
                    "a layer pool of {} × {} slots × {} heads × {dim} (larger than one binding of {} bytes)",
                    desc.n_blocks,
                    desc.block_size,
                    desc.n_head_kv,
                    b.gpu.max_binding()
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
    rows: &WgpuRows,
    k: &WgpuTensor,
    v: &WgpuTensor,
) -> Result<()> {
    const OP: &str = "kv_store";
    check::kv_layer(OP, kv.layers.len(), layer)?;
    check::kv_store(&kv.desc, &rows.plan, (k.rows, k.cols), (v.rows, v.cols))?;
    let (fmt, per_word) = format(kv.desc.dtype);
    let var = b.v(Op::KvStore, None, Some(fmt));
    let l = &kv.layers[layer];
    let (rb, ro, rl) = rows.binding(&b.gpu)?;
    for (src, dst) in [(k, &l.k), (v, &l.v)] {
        let words = src.len() / per_word;
        let params = [u(OP, words)?, u(OP, src.cols / per_word)?, u(OP, src.rows)?, 0];
        let binds = [Bind::Whole(src.buffer()), Bind::Whole(dst), Bind::Slice(&rb, ro, rl)];
        b.each(var, words, &params, &binds)?;
    }
    Ok(())
}

/// rope of q and k and the store of k and v in one dispatch (rope_kv.wgsl), where q and k
/// share their rope parameters but for the head count and k's heads are the pool's; else the
/// separate ops. The checks are the separate ops', in their order, so misuse fails alike.
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
    rows: &WgpuRows,
) -> Result<()> {
    const OP: &str = "rope_kv_store";
    let d = kv.desc;
    let same = RopeParams { n_heads: q_rope.n_heads, ..*k_rope } == *q_rope;
    if !same || k_rope.n_heads != d.n_head_kv || k_rope.head_dim != d.head_dim {
        rope::rope(b, q, q_rope, rows)?;
        rope::rope(b, k, k_rope, rows)?;
        return kv_store(b, kv, layer, rows, k, v);
    }
    check::rope((q.rows, q.cols), q_rope, &rows.plan)?;
    check::rope((k.rows, k.cols), k_rope, &rows.plan)?;
    check::kv_layer("kv_store", kv.layers.len(), layer)?;
    check::kv_store(&d, &rows.plan, (k.rows, k.cols), (v.rows, v.cols))?;
    let p = q_rope;
    let n = q.rows;
    let (fmt, per_word) = format(d.dtype);
    let params = [
        u(OP, n)?,
        u(OP, p.n_heads)?,
        u(OP, d.n_head_kv)?,
        u(OP, p.head_dim)?,
        u(OP, p.rope_dim)?,
        0,
        u32::from(p.style == realm_core::RopeStyle::Neox),
        rope::theta_scale(p).to_bits(),
        p.freq_scale.to_bits(),
        u(OP, d.head_dim_v)?,
        0,
        0,
    ];
    let items = n * p.n_heads * (p.rope_dim / 2) + (k.len() + v.len()) / per_word;
    let l = &kv.layers[layer];
    let (rb, ro, rl) = rows.binding(&b.gpu)?;
    let binds = [
        Bind::Whole(q.buffer()),
        Bind::Whole(k.buffer()),
        Bind::Whole(v.buffer()),
        Bind::Whole(&l.k),
        Bind::Whole(&l.v),
        Bind::Slice(&rb, ro, rl),
    ];
    b.each(b.v(Op::RopeKv, None, Some(fmt)), items, &params, &binds)
}
