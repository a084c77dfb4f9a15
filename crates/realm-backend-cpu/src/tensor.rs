//! The CPU backend's handles: activations, weights (memory-mapped, never copied) and the KV
//! cache.

use realm_core::{
    CoreError, GgmlType, KvDesc, KvDtype, Result, SharedBytes, WeightDesc, shape_err,
};

/// An f32 activation matrix `[rows, cols]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTensor {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) data: Vec<f32>,
}

impl CpuTensor {
    /// A zero-filled `rows × cols` matrix; an error (not an abort) when the allocation fails.
    pub(crate) fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let data = alloc_filled(rows.checked_mul(cols), 0.0f32, "tensor")?;
        Ok(Self { rows, cols, data })
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The values, row-major (native callers can read without going through `read`).
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

/// Allocates `n` copies of `fill`, reporting overflow or allocation failure as
/// [`CoreError::OutOfMemory`].
pub(crate) fn alloc_filled<T: Copy>(n: Option<usize>, fill: T, what: &str) -> Result<Vec<T>> {
    let bytes = |n: usize| (n as u64).saturating_mul(size_of::<T>() as u64);
    let n = n.ok_or(CoreError::OutOfMemory { what: what.to_string(), bytes: u64::MAX })?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| CoreError::OutOfMemory { what: what.to_string(), bytes: bytes(n) })?;
    v.resize(n, fill);
    Ok(v)
}

/// A weight: a reference to its GGUF block bytes (the `SharedBytes` plus a range), never a
/// copy. `rows × cols` values of `ty`, blocks along `cols`.
#[derive(Clone)]
pub struct CpuWeight {
    pub(crate) name: String,
    pub(crate) ty: GgmlType,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) row_bytes: usize,
    bytes: SharedBytes,
    offset: usize,
    len: usize,
    /// The same weights repacked for the panel kernels, where the CPU level has them
    /// (a copy, made at upload; the GGUF bytes above still serve `embed` and the oracle).
    #[cfg(target_arch = "x86_64")]
    pub(crate) packed: Option<std::sync::Arc<crate::matmul::Packed>>,
}

impl std::fmt::Debug for CpuWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuWeight")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl CpuWeight {
    /// Checks a descriptor against its bytes and keeps a reference to them.
    pub(crate) fn new(desc: WeightDesc) -> Result<Self> {
        let bad = |detail: String| CoreError::BadWeight { name: desc.name.clone(), detail };
        let ty = desc.ty;
        if !realm_quant::can_dequantize(ty) {
            return Err(CoreError::Unsupported {
                op: "upload",
                what: format!("weight type {}", ty.name()),
                backend: "cpu",
            });
        }
        if !desc.cols.is_multiple_of(ty.block_size()) {
            return Err(bad(format!(
                "{} columns is not a multiple of the {} block size {}",
                desc.cols,
                ty.name(),
                ty.block_size()
            )));
        }
        let row_bytes = desc.cols / ty.block_size() * ty.type_size();
        let expected = row_bytes.checked_mul(desc.rows);
        if expected != Some(desc.len) {
            return Err(bad(format!(
                "{} × {} {} needs {:?} bytes, the descriptor says {}",
                desc.rows,
                desc.cols,
                ty.name(),
                expected,
                desc.len
            )));
        }
        let available = (*desc.bytes).as_ref().len();
        let end = desc.offset.checked_add(desc.len);
        if end.is_none_or(|end| end > available) {
            return Err(bad(format!(
                "needs {} bytes at offset {}, only {} available",
                desc.len, desc.offset, available
            )));
        }
        Ok(Self {
            name: desc.name,
            ty,
            rows: desc.rows,
            cols: desc.cols,
            row_bytes,
            bytes: desc.bytes,
            offset: desc.offset,
            len: desc.len,
            #[cfg(target_arch = "x86_64")]
            packed: None,
        })
    }

    /// All block bytes of the weight (a view into the shared buffer).
    pub fn data(&self) -> &[u8] {
        let all = (*self.bytes).as_ref();
        all.get(self.offset..self.offset + self.len).unwrap_or_default()
    }

    /// The block bytes of row `r` (empty if out of range).
    pub(crate) fn row(&self, r: usize) -> &[u8] {
        let start = r.saturating_mul(self.row_bytes);
        self.data().get(start..start.saturating_add(self.row_bytes)).unwrap_or_default()
    }

    /// The element type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Whether this weight's bytes are the very buffer `bytes` (no copy was made).
    pub fn shares(&self, bytes: &SharedBytes) -> bool {
        std::ptr::addr_eq(std::sync::Arc::as_ptr(&self.bytes), std::sync::Arc::as_ptr(bytes))
    }

    /// Every value, dequantized (for vectors: norm weights and biases).
    pub(crate) fn to_f32(&self, op: &'static str) -> Result<Vec<f32>> {
        let n = self.rows.checked_mul(self.cols);
        let mut out = alloc_filled(n, 0.0f32, "weight vector")?;
        realm_quant::dequantize(self.ty, self.data(), &mut out)
            .map_err(|e| CoreError::Backend { op, detail: e.to_string() })?;
        Ok(out)
    }

    /// Number of values.
    pub(crate) fn numel(&self) -> usize {
        self.rows * self.cols
    }
}

/// K or V values of one layer, `[slots, n_head_kv, head_dim]`.
#[derive(Debug, Clone)]
pub(crate) enum KvBuf {
    /// IEEE binary16 bit patterns.
    F16(Vec<u16>),
    F32(Vec<f32>),
}

/// `n` zeros from the allocator's zeroed memory: the OS commits a page when it is first
/// written, so a KV pool costs the blocks in use, not its size. An error (not an abort) when
/// the allocation fails.
fn alloc_zeroed<T: bytemuck::Zeroable>(n: Option<usize>, what: &str) -> Result<Vec<T>> {
    let oom = |bytes| CoreError::OutOfMemory { what: what.to_string(), bytes };
    let n = n.ok_or(oom(u64::MAX))?;
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| oom(u64::MAX))?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(oom(layout.size() as u64));
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[T; n]`, and
    // all-zero bytes are a valid `T` (`Zeroable`), so the `n` elements are initialized.
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

impl KvBuf {
    fn new(dtype: KvDtype, n: Option<usize>) -> Result<Self> {
        Ok(match dtype {
            KvDtype::F16 => Self::F16(alloc_zeroed(n, "KV cache")?),
            KvDtype::F32 => Self::F32(alloc_zeroed(n, "KV cache")?),
        })
    }

    /// Writes `src` at element offset `at` (bounds already checked by the caller).
    pub(crate) fn write(&mut self, at: usize, src: &[f32]) -> Result<()> {
        let oob = || shape_err("kv_store", "write outside the cache");
        match self {
            Self::F16(v) => {
                let dst = v.get_mut(at..at + src.len()).ok_or_else(oob)?;
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = half::f16::from_f32(s).to_bits();
                }
            }
            Self::F32(v) => {
                v.get_mut(at..at + src.len()).ok_or_else(oob)?.copy_from_slice(src);
            }
        }
        Ok(())
    }
}

/// One layer's keys and values.
#[derive(Debug, Clone)]
pub(crate) struct LayerKv {
    pub(crate) k: KvBuf,
    pub(crate) v: KvBuf,
}

/// The paged key/value pool of every layer, stored slot-major: element `(slot, head, d)` of a
/// layer's K is at `(slot · n_head_kv + head) · head_dim + d`.
#[derive(Debug, Clone)]
pub struct CpuKv {
    pub(crate) desc: KvDesc,
    pub(crate) layers: Vec<LayerKv>,
}

impl CpuKv {
    pub(crate) fn new(desc: KvDesc) -> Result<Self> {
        let per_pos_k = desc.n_head_kv.checked_mul(desc.head_dim);
        let per_pos_v = desc.n_head_kv.checked_mul(desc.head_dim_v);
        let slots = desc.slots();
        let nk = per_pos_k.and_then(|p| p.checked_mul(slots?));
        let nv = per_pos_v.and_then(|p| p.checked_mul(slots?));
        let mut layers = Vec::new();
        layers.try_reserve_exact(desc.n_layer).map_err(|_| CoreError::OutOfMemory {
            what: "KV cache".into(),
            bytes: desc.n_layer as u64,
        })?;
        for _ in 0..desc.n_layer {
            layers.push(LayerKv { k: KvBuf::new(desc.dtype, nk)?, v: KvBuf::new(desc.dtype, nv)? });
        }
        Ok(Self { desc, layers })
    }

    /// The descriptor this cache was made from.
    pub fn desc(&self) -> &KvDesc {
        &self.desc
    }
}
