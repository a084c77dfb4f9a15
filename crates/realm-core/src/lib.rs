//! realm-core: THE CONTRACT between the model code and every backend (CPU, WebGPU, later CUDA).
//!
//! The op set is small and fused to what a llama-family forward pass needs (embed, rms_norm,
//! matmul, rope, kv_store, attention, glu, add, scale, softcap, argmax, copy_rows), not a general
//! tensor library: fewer dispatches per token on WebGPU and less surface per backend.
//!
//! Execution model: ops are *recorded* in call order. A CPU backend may run each op as it is
//! called; a GPU backend records them into a command buffer. [`Backend::submit`] ends a step (one
//! per decode step); [`Backend::read`] is the only way data comes back and is `async`, so the same
//! model code drives a WebGPU device in the browser (where readback must await) and the CPU.
//!
//! Shapes: an activation [`Backend::Tensor`] is a row-major f32 matrix `[rows, cols]` where a row
//! is one token position. Weights are matrices `[rows = out features, cols = in features]` stored
//! as GGUF blocks along `cols` (ggml's `ne[0]`), or vectors (norm weights, biases).
//!
//! Batches: the rows of a step may belong to several sequences (continuous batching). A
//! [`RowsDesc`] says, once per step, where each row sits — its sequence, its position there, and
//! each sequence's block table into the paged KV pool ([`KvDesc`]); the backend turns it into a
//! [`Backend::Rows`] that rope, the KV store and attention take. **Batch invariance:** a row's
//! result never depends on the other rows of the op (a fixed reduction order per row, whatever
//! the batch), so a request's output is the same alone or among others. The CPU backend holds
//! this bit for bit; a GPU backend within the conformance tolerances.

pub mod check;
mod error;
mod params;

pub use check::RowsPlan;
pub use error::{CoreError, Result, shape_err};
pub use params::{
    Activation, AttentionParams, BackendInfo, Epilogue, HostStat, KvDesc, KvDtype, OpStat,
    RopeParams, RopeStyle, RowsDesc, SharedBytes, WeightDesc, WeightLayout,
};
pub use realm_quant::GgmlType;

use std::future::Future;

/// A compute backend. Handles (`Tensor`, `Weight`, `Kv`) are opaque; only the backend that made
/// them may use them.
pub trait Backend {
    /// An f32 activation matrix `[rows, cols]` in device memory.
    type Tensor;
    /// A weight matrix or vector, in whatever layout the backend chose at upload.
    type Weight;
    /// The paged key/value pool of every layer.
    type Kv;
    /// A step's row placement ([`RowsDesc`]), checked and where the device can read it.
    type Rows;

    /// What this backend is, and which paths (SIMD level, GPU tier, ...) it chose and why.
    fn info(&self) -> BackendInfo;

    /// Upload one weight from its GGUF bytes. The CPU backend may keep a reference to the bytes
    /// (memory-mapped, no copy); a GPU backend copies them to device buffers.
    fn upload(&self, desc: WeightDesc) -> Result<Self::Weight>;

    /// A new activation matrix of `rows × cols` (contents unspecified until written).
    fn tensor(&self, rows: usize, cols: usize) -> Result<Self::Tensor>;

    /// The largest activation [`Backend::tensor`] can make, in bytes (a GPU's largest storage
    /// binding). Model code splits work that would need more (the logits of many rows).
    fn max_tensor_bytes(&self) -> u64 {
        u64::MAX
    }

    /// The shape `(rows, cols)` of a tensor.
    fn shape(&self, t: &Self::Tensor) -> (usize, usize);

    /// Allocate the KV pool. Its memory may be committed lazily (the CPU's pages are touched
    /// when a block is first written), so a large pool costs what is in use.
    fn kv_cache(&self, desc: KvDesc) -> Result<Self::Kv>;

    /// Check a step's row placement and make it readable by the ops of the step (a GPU
    /// uploads it once, not once per layer). Valid until the step is submitted.
    fn rows(&self, desc: &RowsDesc<'_>) -> Result<Self::Rows>;

    /// `out[i] = dequant(table row tokens[i])` for each token. `out` is `[tokens.len(), n_embd]`.
    fn embed(&self, table: &Self::Weight, tokens: &[u32], out: &mut Self::Tensor) -> Result<()>;

    /// [`Backend::embed`] of token ids held on the device: `ids = [n, 1]` as f32 values, as
    /// [`Backend::argmax`] writes them, so a decode step can take the previous step's greedy
    /// token without a round trip to the host. An id outside the table is an error where the
    /// backend can see it (the CPU); a GPU backend leaves that row unwritten.
    fn embed_ids(
        &self,
        table: &Self::Weight,
        ids: &Self::Tensor,
        out: &mut Self::Tensor,
    ) -> Result<()>;

    /// RMSNorm over groups of `group` consecutive values of each row (`group = cols` for a plain
    /// norm, `group = head_dim` for per-head q/k norms), times `weight[group]`.
    fn rms_norm(
        &self,
        x: &Self::Tensor,
        weight: &Self::Weight,
        group: usize,
        eps: f32,
        out: &mut Self::Tensor,
    ) -> Result<()>;

    /// `out[r, o] = Σ_c w[o, c] · x[r, c] (+ bias[o])`: `x` is `[n, in]`, `out` is `[n, out]`.
    fn matmul(
        &self,
        w: &Self::Weight,
        bias: Option<&Self::Weight>,
        x: &Self::Tensor,
        out: &mut Self::Tensor,
    ) -> Result<()>;

    /// Whether [`Backend::matmul_fused`] folds an RMSNorm into a matmul of `rows` activation
    /// rows. Where it does, a model passes the norm to each matmul that reads the normalized
    /// rows instead of normalizing them once first (the GPU saves a dispatch; the CPU would
    /// repeat the norm's work).
    fn fuses_norm(&self, rows: usize) -> bool {
        let _ = rows;
        false
    }

    /// A matmul with what surrounds it in a block, fused where the backend can: `r = x̂ · Wᵀ
    /// (+ bias)`, where `x̂` is `x` RMS-normalized over whole rows times `norm.0` with eps
    /// `norm.1` when `norm` is given (as [`Backend::rms_norm`]), else `x`; then `out` takes `r`
    /// as `then` says. The default composes the separate ops through temporary tensors.
    fn matmul_fused(
        &self,
        w: &Self::Weight,
        bias: Option<&Self::Weight>,
        x: &Self::Tensor,
        norm: Option<(&Self::Weight, f32)>,
        then: Epilogue<'_, Self::Tensor>,
        out: &mut Self::Tensor,
    ) -> Result<()> {
        default_matmul_fused(self, w, bias, x, norm, then, out)
    }

    /// Rotary position embedding in place on `x = [n, n_heads · head_dim]`; row `r` is at its
    /// position in `rows`.
    fn rope(&self, x: &mut Self::Tensor, p: &RopeParams, rows: &Self::Rows) -> Result<()>;

    /// Store `k` and `v` (`[n, n_head_kv · head_dim]`) of `layer`: row `r` into the slot of
    /// its position in its sequence's blocks (a scatter into the pool).
    fn kv_store(
        &self,
        kv: &mut Self::Kv,
        layer: usize,
        rows: &Self::Rows,
        k: &Self::Tensor,
        v: &Self::Tensor,
    ) -> Result<()>;

    /// [`Backend::rope`] of `q` (in place) and of `k`, then [`Backend::kv_store`] of the
    /// rotated keys and `v`: what a block does between its projections and its attention,
    /// fused where the backend can (`q_rope` and `k_rope` differ in their head counts only).
    /// Afterwards `k` holds the rotated keys, or its old values where the backend rotated them
    /// on their way into the cache: read keys from the cache.
    #[allow(clippy::too_many_arguments)]
    fn rope_kv_store(
        &self,
        q: &mut Self::Tensor,
        k: &mut Self::Tensor,
        v: &Self::Tensor,
        kv: &mut Self::Kv,
        layer: usize,
        q_rope: &RopeParams,
        k_rope: &RopeParams,
        rows: &Self::Rows,
    ) -> Result<()> {
        self.rope(q, q_rope, rows)?;
        self.rope(k, k_rope, rows)?;
        self.kv_store(kv, layer, rows, k, v)
    }

    /// Causal attention of `q = [n, n_head · head_dim]`: row `r`, at position `pos` of its
    /// sequence, attends over that sequence's cached keys/values of `layer` at positions
    /// `0 ..= pos` (or the last `window` of them), read through its block table. `out` is
    /// `[n, n_head · head_dim_v]`. Every row's keys and values must have been stored.
    fn attention(
        &self,
        q: &Self::Tensor,
        kv: &Self::Kv,
        layer: usize,
        p: &AttentionParams,
        rows: &Self::Rows,
        out: &mut Self::Tensor,
    ) -> Result<()>;

    /// Gated linear unit: `out = act(gate) · up`, elementwise.
    fn glu(
        &self,
        gate: &Self::Tensor,
        up: &Self::Tensor,
        act: Activation,
        out: &mut Self::Tensor,
    ) -> Result<()>;

    /// `x += y`, elementwise.
    fn add(&self, x: &mut Self::Tensor, y: &Self::Tensor) -> Result<()>;

    /// `x *= s`, elementwise.
    fn scale(&self, x: &mut Self::Tensor, s: f32) -> Result<()>;

    /// `x = cap · tanh(x / cap)`, elementwise (logit soft-capping).
    fn softcap(&self, x: &mut Self::Tensor, cap: f32) -> Result<()>;

    /// `out[i] = x[idx[i]]`, whole rows: the rows of a batch that need logits.
    fn gather_rows(&self, x: &Self::Tensor, idx: &[u32], out: &mut Self::Tensor) -> Result<()>;

    /// Index of the largest value of each row (ties to the lowest index), as f32 values in
    /// `out = [rows, 1]` (exact for indices below 2^24): greedy decoding reads back 4 bytes.
    fn argmax(&self, x: &Self::Tensor, out: &mut Self::Tensor) -> Result<()>;

    /// End the current step: everything recorded so far is sent to the device.
    fn submit(&self) -> Result<()>;

    /// Whether ops are queued and run later (a GPU), rather than run as they are recorded: then
    /// recording the next step while the device runs this one overlaps the two.
    fn queues_work(&self) -> bool {
        false
    }

    /// Read a tensor back (after the ops that write it were submitted). The read starts when
    /// this is called; the future borrows nothing, so more work can be recorded (and the
    /// tensor written again) while it is pending.
    fn read(&self, t: &Self::Tensor) -> impl Future<Output = Result<Vec<f32>>> + use<Self>;

    /// Read rows `first..first + count` of a tensor back, as [`Backend::read`] does the whole
    /// (a backend that can copy part of a tensor reads only those; this default reads it all).
    fn read_rows(
        &self,
        t: &Self::Tensor,
        first: usize,
        count: usize,
    ) -> impl Future<Output = Result<Vec<f32>>> + use<Self> {
        let (rows, cols) = self.shape(t);
        let all = self.read(t);
        async move {
            let v = all.await?;
            rows_of(&v, rows, cols, first, count).map(<[f32]>::to_vec)
        }
    }
}

/// Rows `first..first + count` of a row-major `[rows, cols]` buffer; out of range is an error.
pub fn rows_of(v: &[f32], rows: usize, cols: usize, first: usize, count: usize) -> Result<&[f32]> {
    first
        .checked_add(count)
        .filter(|&end| end <= rows)
        .and_then(|end| v.get(first * cols..end * cols))
        .ok_or_else(|| shape_err("read_rows", format!("rows {first}+{count} of {rows}")))
}

/// The default [`Backend::matmul_fused`]: the separate ops through temporary tensors (a
/// backend that fuses only some cases falls back to it for the others).
#[allow(clippy::too_many_arguments)]
pub fn default_matmul_fused<B: Backend + ?Sized>(
    b: &B,
    w: &B::Weight,
    bias: Option<&B::Weight>,
    x: &B::Tensor,
    norm: Option<(&B::Weight, f32)>,
    then: Epilogue<'_, B::Tensor>,
    out: &mut B::Tensor,
) -> Result<()> {
    let normed = match norm {
        Some((weight, eps)) => {
            let (rows, cols) = b.shape(x);
            let mut t = b.tensor(rows, cols)?;
            b.rms_norm(x, weight, cols, eps, &mut t)?;
            Some(t)
        }
        None => None,
    };
    let x = normed.as_ref().unwrap_or(x);
    match then {
        Epilogue::Store => b.matmul(w, bias, x, out),
        Epilogue::Add => {
            let (rows, cols) = b.shape(out);
            let mut r = b.tensor(rows, cols)?;
            b.matmul(w, bias, x, &mut r)?;
            b.add(out, &r)
        }
        Epilogue::Glu { gate, act } => {
            let (rows, cols) = b.shape(out);
            let mut r = b.tensor(rows, cols)?;
            b.matmul(w, bias, x, &mut r)?;
            b.glu(gate, &r, act, out)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::rows_of;

    #[test]
    fn rows_of_takes_whole_rows_and_refuses_out_of_range() {
        let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(rows_of(&v, 4, 3, 1, 2).unwrap(), &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(rows_of(&v, 4, 3, 4, 0).unwrap(), &[] as &[f32]);
        assert!(rows_of(&v, 4, 3, 3, 2).is_err());
        assert!(rows_of(&v, 4, 3, usize::MAX, 2).is_err());
    }
}
