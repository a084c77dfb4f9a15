//! The forward pass of a llama-family block stack, expressed in the backend's fused ops.
//!
//! Follows llama.cpp's graphs (`src/models/llama.cpp`, `qwen2.cpp`, `qwen3.cpp`, `gemma3.cpp`
//! at commit 0c1e570): pre-norm attention and gated FFN with residual adds; gemma adds
//! embedding scaling, per-head q/k norms, post-attention/post-FFN norms and GeGLU.

use realm_core::{AttentionParams, Backend, Epilogue, KvDesc, KvDtype, RopeParams, RowsDesc};

use crate::error::{ModelError, Result};
use crate::weights::Model;

/// Which rows of the batch need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits<'a> {
    /// Only the last row (one sequence generating).
    Last,
    /// Every row (perplexity, teacher forcing).
    All,
    /// These rows, in this order (the last row of each sequence that samples in a step of a
    /// continuous batch).
    Rows(&'a [u32]),
}

/// One step's rows: `tokens[r]` at the position and in the sequence `rows` gives it (rows of
/// several sequences, each through its block table into the paged KV pool).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub tokens: &'a [u32],
    pub rows: RowsDesc<'a>,
    pub logits: Logits<'a>,
}

/// Activation buffers for a batch of `n` rows, reused across calls of the same size; the
/// output projection's buffers are sized for the logit rows of the last call.
pub struct Scratch<B: Backend> {
    n: usize,
    x: B::Tensor,
    h: B::Tensor,
    q: B::Tensor,
    qn: B::Tensor,
    k: B::Tensor,
    kn: B::Tensor,
    v: B::Tensor,
    att: B::Tensor,
    o: B::Tensor,
    o2: B::Tensor,
    gate: B::Tensor,
    act: B::Tensor,
    /// The logit rows the output buffers are for.
    out_rows: Vec<u32>,
    /// Per chunk of logit rows (one chunk unless `k × n_vocab` values exceed
    /// [`Backend::max_tensor_bytes`]): the gathered rows, normalized, and their logits.
    out: Vec<OutChunk<B>>,
}

struct OutChunk<B: Backend> {
    /// Row indices of this chunk; empty when the chunk is every row in order (no gather).
    idx: Vec<u32>,
    sel: Option<B::Tensor>,
    normed: B::Tensor,
    logits: B::Tensor,
}

impl<B: Backend> Scratch<B> {
    /// The batch size these buffers are for.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Where logit row `k` (of the rows the last forward computed logits for) is: the output
    /// tensor holding it and its row there. `None` past the last.
    pub fn logit_row(&self, mut k: usize) -> Option<(&B::Tensor, usize)> {
        for ch in &self.out {
            let rows = if ch.idx.is_empty() { self.out_rows.len() } else { ch.idx.len() };
            if k < rows {
                return Some((&ch.logits, k));
            }
            k -= rows;
        }
        None
    }
}

impl<B: Backend> Model<B> {
    /// The KV pool descriptor for `n_blocks` blocks of `block_size` positions.
    pub fn kv_desc(&self, n_blocks: usize, block_size: usize, dtype: KvDtype) -> KvDesc {
        let h = &self.config.hparams;
        KvDesc {
            n_layer: self.config.n_layer(),
            n_blocks,
            block_size,
            n_head_kv: h.n_head_kv as usize,
            head_dim: h.head_dim_k as usize,
            head_dim_v: h.head_dim_v as usize,
            dtype,
        }
    }

    /// Buffers for batches of `n` tokens.
    pub fn scratch(&self, b: &B, n: usize) -> Result<Scratch<B>> {
        let c = &self.config;
        let (e, ff) = (c.n_embd(), c.hparams.n_ff as usize);
        let t = |cols: usize| b.tensor(n, cols);
        Ok(Scratch {
            n,
            x: t(e)?,
            h: t(e)?,
            q: t(c.q_dim())?,
            qn: t(c.q_dim())?,
            k: t(c.kv_dim())?,
            kn: t(c.kv_dim())?,
            v: t(c.v_dim())?,
            att: t(c.attn_out_dim())?,
            o: t(e)?,
            o2: t(e)?,
            gate: t(ff)?,
            act: t(ff)?,
            out_rows: Vec::new(),
            out: Vec::new(),
        })
    }

    /// The output buffers for logit rows `idx` of a batch of `n` (kept when the rows are the
    /// same as the last call's).
    fn out_buffers(&self, b: &B, s: &mut Scratch<B>, idx: &[u32]) -> Result<()> {
        if s.out_rows == idx && !s.out.is_empty() {
            return Ok(());
        }
        s.out.clear();
        let (e, vocab) = (self.config.n_embd(), self.config.n_vocab);
        let k = idx.len();
        let every = k == s.n && idx.iter().enumerate().all(|(i, &r)| r as usize == i);
        let per = rows_per_chunk(b.max_tensor_bytes(), vocab, k);
        for chunk in idx.chunks(per.max(1)) {
            let whole = every && chunk.len() == k;
            s.out.push(OutChunk {
                idx: if whole { Vec::new() } else { chunk.to_vec() },
                sel: if whole { None } else { Some(b.tensor(chunk.len(), e)?) },
                normed: b.tensor(chunk.len(), e)?,
                logits: b.tensor(chunk.len(), vocab)?,
            });
        }
        s.out_rows = idx.to_vec();
        Ok(())
    }

    /// Run the batch's rows (their tokens at their positions, each sequence through its block
    /// table into `kv`) and record the logits of the rows asked for. Returns the logits as
    /// tensors of consecutive logit rows (one `[k, n_vocab]` tensor, or row chunks of it where
    /// the backend's largest tensor is smaller); the caller submits and reads them. `s` must
    /// have been made for `batch.tokens.len()` rows.
    pub fn forward<'s>(
        &self,
        b: &B,
        kv: &mut B::Kv,
        batch: &Batch<'_>,
        s: &'s mut Scratch<B>,
    ) -> Result<Vec<&'s B::Tensor>> {
        let n = self.check_batch(batch.tokens.len(), &batch.rows, s)?;
        let c = &self.config;
        if let Some(&id) = batch.tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::BadToken { id, n_vocab: c.n_vocab });
        }
        let rows = b.rows(&batch.rows)?;
        b.embed(&self.token_embd, batch.tokens, &mut s.x)?;
        self.blocks(b, kv, &rows, s)?;
        self.head(b, n, batch.logits, s)
    }

    /// [`Model::forward`] of one row whose token id is on the device: `ids = [1, 1]` as
    /// [`Backend::argmax`] wrote it (the previous step's greedy token), so the step can be
    /// recorded before that token is read back. `s` must have been made for one row; the
    /// logits are the row's.
    pub fn forward_device_token<'s>(
        &self,
        b: &B,
        kv: &mut B::Kv,
        ids: &B::Tensor,
        rows: &RowsDesc<'_>,
        s: &'s mut Scratch<B>,
    ) -> Result<Vec<&'s B::Tensor>> {
        self.check_batch(1, rows, s)?;
        let placed = b.rows(rows)?;
        b.embed_ids(&self.token_embd, ids, &mut s.x)?;
        self.blocks(b, kv, &placed, s)?;
        self.head(b, 1, Logits::Last, s)
    }

    /// A batch of `n` rows placed by `rows` for scratch `s`; returns `n`.
    fn check_batch(&self, n: usize, rows: &RowsDesc<'_>, s: &Scratch<B>) -> Result<usize> {
        if n == 0 {
            return Err(ModelError::EmptyBatch);
        }
        if n != s.n || rows.len() != n {
            return Err(realm_core::shape_err(
                "forward",
                format!("scratch for {} rows, {n} tokens placed as {} rows", s.n, rows.len()),
            )
            .into());
        }
        Ok(n)
    }

    /// The output head: the logit rows gathered (where they are not every row in order),
    /// normalized and projected, in chunks under the backend's largest tensor.
    fn head<'s>(
        &self,
        b: &B,
        n: usize,
        which: Logits<'_>,
        s: &'s mut Scratch<B>,
    ) -> Result<Vec<&'s B::Tensor>> {
        let c = &self.config;
        let (e, eps) = (c.n_embd(), c.hparams.rms_eps);
        let last = [n as u32 - 1];
        let all: Vec<u32>;
        let idx: &[u32] = match which {
            Logits::Last => &last,
            Logits::Rows(r) => r,
            Logits::All => {
                all = (0..n as u32).collect();
                &all
            }
        };
        if idx.is_empty() {
            return Ok(Vec::new());
        }
        self.out_buffers(b, s, idx)?;
        let out_w = self.output.as_ref().unwrap_or(&self.token_embd);
        for ch in s.out.iter_mut() {
            let x = match &mut ch.sel {
                Some(sel) => {
                    b.gather_rows(&s.x, &ch.idx, sel)?;
                    &*sel
                }
                None => &s.x,
            };
            b.rms_norm(x, &self.output_norm, e, eps, &mut ch.normed)?;
            b.matmul(out_w, None, &ch.normed, &mut ch.logits)?;
            if let Some(cap) = c.final_softcap {
                b.softcap(&mut ch.logits, cap)?;
            }
        }
        Ok(s.out.iter().map(|ch| &ch.logits).collect())
    }

    /// The block stack over the embedded rows in `s.x` (the result stays in `s.x`).
    fn blocks(&self, b: &B, kv: &mut B::Kv, rows: &B::Rows, s: &mut Scratch<B>) -> Result<()> {
        let c = &self.config;
        let n = s.n;
        let h = &c.hparams;
        let (e, eps) = (c.n_embd(), h.rms_eps);
        let hd = h.head_dim_k as usize;
        if let Some(scale) = c.embed_scale {
            b.scale(&mut s.x, scale)?;
        }
        for (il, w) in self.layers.iter().enumerate() {
            // Where the backend folds the norm into each matmul (a GPU decoding), the matmuls
            // read x and the norm's weight; otherwise x is normalized once into h.
            let fuse = b.fuses_norm(n);
            let (hx, norm) = if fuse {
                (&s.x, Some((&w.attn_norm, eps)))
            } else {
                b.rms_norm(&s.x, &w.attn_norm, e, eps, &mut s.h)?;
                (&s.h, None)
            };
            b.matmul_fused(&w.wq, w.bq.as_ref(), hx, norm, Epilogue::Store, &mut s.q)?;
            b.matmul_fused(&w.wk, w.bk.as_ref(), hx, norm, Epilogue::Store, &mut s.k)?;
            b.matmul_fused(&w.wv, w.bv.as_ref(), hx, norm, Epilogue::Store, &mut s.v)?;
            let (q, k) = match (&w.q_norm, &w.k_norm) {
                (Some(qn), Some(kn)) => {
                    b.rms_norm(&s.q, qn, hd, eps, &mut s.qn)?;
                    b.rms_norm(&s.k, kn, hd, eps, &mut s.kn)?;
                    (&mut s.qn, &mut s.kn)
                }
                _ => (&mut s.q, &mut s.k),
            };
            let rope = |n_heads: u32| RopeParams {
                n_heads: n_heads as usize,
                head_dim: hd,
                rope_dim: h.rope_dim as usize,
                freq_base: c.layer_rope_base[il],
                freq_scale: 1.0,
                style: c.rope_style,
            };
            b.rope_kv_store(q, k, &s.v, kv, il, &rope(h.n_head), &rope(h.n_head_kv), rows)?;
            let ap = AttentionParams {
                n_head: h.n_head as usize,
                n_head_kv: h.n_head_kv as usize,
                head_dim: hd,
                head_dim_v: h.head_dim_v as usize,
                scale: c.attn_scale,
                window: c.layer_window[il],
                softcap: h.attn_softcap,
            };
            b.attention(q, kv, il, &ap, rows, &mut s.att)?;
            residual(
                b,
                &w.wo,
                &s.att,
                &mut s.x,
                w.post_attn_norm.as_ref(),
                eps,
                &mut s.o,
                &mut s.o2,
            )?;

            let (hx, norm) = if fuse {
                (&s.x, Some((&w.ffn_norm, eps)))
            } else {
                b.rms_norm(&s.x, &w.ffn_norm, e, eps, &mut s.h)?;
                (&s.h, None)
            };
            b.matmul_fused(&w.ffn_gate, None, hx, norm, Epilogue::Store, &mut s.gate)?;
            let glu = Epilogue::Glu { gate: &s.gate, act: c.activation };
            b.matmul_fused(&w.ffn_up, None, hx, norm, glu, &mut s.act)?;
            residual(
                b,
                &w.ffn_down,
                &s.act,
                &mut s.x,
                w.post_ffn_norm.as_ref(),
                eps,
                &mut s.o,
                &mut s.o2,
            )?;
        }
        Ok(())
    }
}

/// Rows of logits per output tensor: all `n` when `n × n_vocab` f32 values fit in one tensor
/// of at most `max_bytes` (always on the CPU, so its results do not change), else as many as
/// fit (at least one), with room for a backend's rounding of buffer sizes.
fn rows_per_chunk(max_bytes: u64, n_vocab: usize, n: usize) -> usize {
    let row = (n_vocab as u64).saturating_mul(4).max(1);
    let fit = max_bytes.saturating_sub(4096) / row;
    usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, n.max(1))
}

/// `x += norm(y)` with `y = input · Wᵀ` when the block has a post-norm (gemma), else `x += y`
/// (fused into the matmul where the backend can).
#[allow(clippy::too_many_arguments)]
fn residual<B: Backend>(
    b: &B,
    w: &B::Weight,
    input: &B::Tensor,
    x: &mut B::Tensor,
    post_norm: Option<&B::Weight>,
    eps: f32,
    y: &mut B::Tensor,
    tmp: &mut B::Tensor,
) -> Result<()> {
    match post_norm {
        Some(nw) => {
            b.matmul(w, None, input, y)?;
            let e = b.shape(y).1;
            b.rms_norm(y, nw, e, eps, tmp)?;
            b.add(x, tmp)?;
        }
        None => b.matmul_fused(w, None, input, None, Epilogue::Add, x)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rows_per_chunk;

    #[test]
    fn logits_chunks() {
        // The CPU: no limit, one tensor.
        assert_eq!(rows_per_chunk(u64::MAX, 262_144, 512), 512);
        // lavapipe's 128 MiB binding and Gemma 3's vocabulary: 127 rows of 1 MiB.
        assert_eq!(rows_per_chunk(128 << 20, 262_144, 512), 127);
        assert_eq!(rows_per_chunk(128 << 20, 49_152, 512), 512);
        // A row larger than the limit still gets a chunk of one (the backend then refuses it).
        assert_eq!(rows_per_chunk(1 << 20, 1 << 20, 8), 1);
    }
}
