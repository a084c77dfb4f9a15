//! Op parameter structs and descriptors shared by every backend.

use std::sync::Arc;

use realm_quant::GgmlType;

/// Bytes that outlive the upload: a memory-mapped file or an owned buffer, shared.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// How a weight is used, which may decide its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// A matrix used by `matmul` (`[rows, cols]`, rows = out features).
    Matrix,
    /// An embedding table read by `embed` (and maybe also by `matmul` when tied).
    Embedding,
    /// A vector (norm weight, bias).
    Vector,
}

/// One weight to upload: `rows × cols` values of `ty`, at `bytes[offset .. offset + len]`.
#[derive(Clone)]
pub struct WeightDesc {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub layout: WeightLayout,
    pub bytes: SharedBytes,
    pub offset: usize,
    pub len: usize,
}

impl std::fmt::Debug for WeightDesc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightDesc")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("layout", &self.layout)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl WeightDesc {
    /// The weight's bytes.
    pub fn data(&self) -> &[u8] {
        let all = (*self.bytes).as_ref();
        all.get(self.offset..self.offset.saturating_add(self.len)).unwrap_or_default()
    }
}

/// Rotary embedding style (llama.cpp `LLAMA_ROPE_TYPE_NORM` / `_NEOX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Rotate adjacent pairs `(x[2i], x[2i+1])` (llama, mistral).
    Normal,
    /// Rotate halves `(x[i], x[i + d/2])` (qwen2/3, gemma).
    Neox,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeParams {
    pub n_heads: usize,
    pub head_dim: usize,
    /// Leading dimensions of each head that are rotated (the rest pass through).
    pub rope_dim: usize,
    pub freq_base: f32,
    /// Linear position scaling (1.0 = none).
    pub freq_scale: f32,
    pub style: RopeStyle,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionParams {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    /// Multiplier of `q·k` (usually `1/sqrt(head_dim)`).
    pub scale: f32,
    /// Sliding window: attend only to the last `window` positions (inclusive of the current).
    pub window: Option<usize>,
    /// Soft-cap of attention scores (`cap · tanh(s / cap)`).
    pub softcap: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvDtype {
    F16,
    F32,
}

/// A paged KV pool: `n_blocks` blocks of `block_size` slots for every layer; slot
/// `b · block_size + i` holds one position's keys (`n_head_kv × head_dim`) and values
/// (`n_head_kv × head_dim_v`). Which sequence a block belongs to, and at which of its
/// positions, is the caller's business: each step says so in its [`RowsDesc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvDesc {
    pub n_layer: usize,
    pub n_blocks: usize,
    pub block_size: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub dtype: KvDtype,
}

impl KvDesc {
    /// Slots in the pool (`n_blocks × block_size`), `None` on overflow.
    pub fn slots(&self) -> Option<usize> {
        self.n_blocks.checked_mul(self.block_size)
    }

    /// Bytes of one slot over every layer (keys and values).
    pub fn bytes_per_slot(&self) -> u64 {
        let elem: u64 = match self.dtype {
            KvDtype::F16 => 2,
            KvDtype::F32 => 4,
        };
        let per_layer = (self.n_head_kv as u64)
            .saturating_mul(self.head_dim as u64 + self.head_dim_v as u64)
            .saturating_mul(elem);
        per_layer.saturating_mul(self.n_layer as u64)
    }
}

/// Where the rows of one step sit: row `r` is position `pos[r]` of sequence `seq[r]`, whose
/// block table `tables[seq[r]]` lists the pool blocks holding its positions in order (entry
/// `i` holds positions `i · block_size .. (i + 1) · block_size`). A row's keys and values are
/// stored at its own position's slot, and its attention reads positions `0 ..= pos[r]` (or
/// the window's last ones) of its sequence through the table, so rows of several sequences
/// (decode rows and prefill chunks) run in one step, and sequences may share blocks (a common
/// prefix). One sequence at consecutive positions with the table `[0, 1, 2, ..]` is the
/// single-sequence case.
#[derive(Debug, Clone, Copy)]
pub struct RowsDesc<'a> {
    /// Position of each row in its sequence.
    pub pos: &'a [u32],
    /// Sequence of each row (an index into `tables`).
    pub seq: &'a [u32],
    /// Block table of each sequence.
    pub tables: &'a [&'a [u32]],
    /// Positions per block (the pool's [`KvDesc::block_size`]).
    pub block_size: usize,
}

impl RowsDesc<'_> {
    /// Rows of the step.
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    /// The pool slot of row `r` (call after [`crate::check::rows`] accepted the descriptor).
    pub fn slot(&self, r: usize) -> Option<usize> {
        let (pos, seq) = (*self.pos.get(r)? as usize, *self.seq.get(r)? as usize);
        let block = *self.tables.get(seq)?.get(pos / self.block_size.max(1))? as usize;
        Some(block * self.block_size + pos % self.block_size.max(1))
    }
}

/// The activation of a gated linear unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: `silu(g) · u`.
    Silu,
    /// GeGLU with the tanh approximation of GELU (gemma).
    GeluTanh,
}

/// What [`crate::Backend::matmul_fused`] does with its result `r = x · Wᵀ (+ bias)`.
#[derive(Debug)]
pub enum Epilogue<'a, T> {
    /// `out = r`.
    Store,
    /// `out += r` (a residual add).
    Add,
    /// `out = act(gate) · r`, elementwise (the up projection of a gated FFN).
    Glu { gate: &'a T, act: Activation },
}

/// What a backend reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    pub name: &'static str,
    /// The device or CPU model.
    pub device: String,
    /// Which code paths were chosen (SIMD level, threads, shader tier) and why.
    pub details: Vec<String>,
}

/// GPU time of one kind of op, summed over a run (`REALM_PROFILE=1`).
#[derive(Debug, Clone, PartialEq)]
pub struct OpStat {
    /// The op and its variant (e.g. `matvec Q4_1 wg64`).
    pub op: String,
    pub calls: u64,
    /// GPU seconds between each dispatch's start and end timestamps, summed.
    pub seconds: f64,
    /// Bytes the op reads and writes, summed, where the op knows them (0 where not).
    pub bytes: u64,
}

/// What recording GPU work cost the host (the CPU side of a GPU backend), summed over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostStat {
    /// Kernel dispatches recorded.
    pub dispatches: u64,
    /// Submits that carried at least one dispatch (a decode step is one).
    pub submits: u64,
    /// Host seconds spent recording dispatches (parameters, bind groups, commands), summed;
    /// 0 where the platform has no clock (wasm).
    pub record_seconds: f64,
    /// Host seconds spent in submits (finishing the command buffer, queue writes, submit).
    pub submit_seconds: f64,
    /// Bind groups created, and reused from the previous step.
    pub bind_groups_made: u64,
    pub bind_groups_reused: u64,
}
