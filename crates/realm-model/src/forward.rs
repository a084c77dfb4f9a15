//! The forward pass of a llama-family block stack, expressed in the backend's fused ops.
//!
//! Follows llama.cpp's graphs (`src/models/llama.cpp`, `qwen2.cpp`, `qwen3.cpp`, `gemma3.cpp`
//! at commit 0c1e570): pre-norm attention and gated FFN with residual adds; gemma adds
//! embedding scaling, per-head q/k norms, post-attention/post-FFN norms and GeGLU.

use realm_core::{AttentionParams, Backend, Epilogue, KvDesc, KvDtype, RopeParams};

use crate::error::{ModelError, Result};
use crate::weights::Model;

/// Which positions of the batch need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position (generation).
    Last,
    /// Every position (perplexity, teacher forcing).
    All,
}

/// Tokens at consecutive positions starting at `start_pos`.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub tokens: &'a [u32],
    pub start_pos: usize,
    pub logits: Logits,
}

/// Activation buffers for a batch of `n` tokens, reused across calls of the same size.
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
    last: B::Tensor,
    last_norm: B::Tensor,
    all_norm: B::Tensor,
    logits_last: B::Tensor,
    /// `Logits::All`: the logits of every row, in row chunks when one tensor of
    /// `n × n_vocab` would exceed [`Backend::max_tensor_bytes`] (made on first use).
    logits_all: Vec<B::Tensor>,
    /// The normed rows of each chunk, when there is more than one.
    chunk_in: Vec<B::Tensor>,
}

impl<B: Backend> Scratch<B> {
    /// The batch size these buffers are for.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

impl<B: Backend> Model<B> {
    /// The KV cache descriptor for a context of `n_ctx` positions.
    pub fn kv_desc(&self, n_ctx: usize, dtype: KvDtype) -> KvDesc {
        let h = &self.config.hparams;
        KvDesc {
            n_layer: self.config.n_layer(),
            n_ctx,
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
            last: b.tensor(1, e)?,
            last_norm: b.tensor(1, e)?,
            all_norm: t(e)?,
            logits_last: b.tensor(1, c.n_vocab)?,
            logits_all: Vec::new(),
            chunk_in: Vec::new(),
        })
    }

    /// Run the batch's tokens at positions `start_pos ..` and record the logits of the rows
    /// asked for. Returns the logits as tensors of consecutive rows (`[1, n_vocab]` for
    /// `Logits::Last`; for `Logits::All` one `[n, n_vocab]` tensor, or row chunks of it where
    /// the backend's largest tensor is smaller); the caller submits and reads them. `s` must
    /// have been made for `batch.tokens.len()` tokens, and the KV cache `kv` holds `n_ctx`
    /// positions.
    pub fn forward<'s>(
        &self,
        b: &B,
        kv: &mut B::Kv,
        n_ctx: usize,
        batch: &Batch<'_>,
        s: &'s mut Scratch<B>,
    ) -> Result<&'s [B::Tensor]> {
        let Batch { tokens, start_pos, logits: which } = *batch;
        let c = &self.config;
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::EmptyBatch);
        }
        if n != s.n {
            return Err(realm_core::shape_err(
                "forward",
                format!("scratch for {} tokens, batch of {n}", s.n),
            )
            .into());
        }
        if start_pos + n > n_ctx {
            return Err(ModelError::ContextExceeded { needed: start_pos + n, n_ctx });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::BadToken { id, n_vocab: c.n_vocab });
        }
        b.embed(&self.token_embd, tokens, &mut s.x)?;
        self.blocks(b, kv, start_pos, which, s)
    }

    /// [`Model::forward`] of one token at `start_pos` whose id is on the device: `ids = [1, 1]`
    /// as [`Backend::argmax`] wrote it (the previous step's greedy token), so the step can be
    /// recorded before that token is read back. `s` must have been made for one token.
    pub fn forward_device_token<'s>(
        &self,
        b: &B,
        kv: &mut B::Kv,
        n_ctx: usize,
        ids: &B::Tensor,
        start_pos: usize,
        s: &'s mut Scratch<B>,
    ) -> Result<&'s [B::Tensor]> {
        if s.n != 1 {
            return Err(realm_core::shape_err(
                "forward_device_token",
                format!("scratch for {} tokens, one token", s.n),
            )
            .into());
        }
        if start_pos + 1 > n_ctx {
            return Err(ModelError::ContextExceeded { needed: start_pos + 1, n_ctx });
        }
        b.embed_ids(&self.token_embd, ids, &mut s.x)?;
        self.blocks(b, kv, start_pos, Logits::Last, s)
    }

    /// The block stack and the output head over the embedded rows in `s.x`.
    fn blocks<'s>(
        &self,
        b: &B,
        kv: &mut B::Kv,
        start_pos: usize,
        which: Logits,
        s: &'s mut Scratch<B>,
    ) -> Result<&'s [B::Tensor]> {
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
                start_pos,
                freq_base: c.layer_rope_base[il],
                freq_scale: 1.0,
                style: c.rope_style,
            };
            b.rope_kv_store(q, k, &s.v, kv, il, &rope(h.n_head), &rope(h.n_head_kv))?;
            let ap = AttentionParams {
                n_head: h.n_head as usize,
                n_head_kv: h.n_head_kv as usize,
                head_dim: hd,
                head_dim_v: h.head_dim_v as usize,
                start_pos,
                scale: c.attn_scale,
                window: c.layer_window[il],
                softcap: h.attn_softcap,
            };
            b.attention(q, kv, il, &ap, &mut s.att)?;
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
        let out_w = self.output.as_ref().unwrap_or(&self.token_embd);
        match which {
            Logits::Last => {
                b.copy_rows(&s.x, n - 1, &mut s.last)?;
                b.rms_norm(&s.last, &self.output_norm, e, eps, &mut s.last_norm)?;
                b.matmul(out_w, None, &s.last_norm, &mut s.logits_last)?;
                if let Some(cap) = c.final_softcap {
                    b.softcap(&mut s.logits_last, cap)?;
                }
                Ok(std::slice::from_ref(&s.logits_last))
            }
            Logits::All => {
                b.rms_norm(&s.x, &self.output_norm, e, eps, &mut s.all_norm)?;
                let rows = rows_per_chunk(b.max_tensor_bytes(), c.n_vocab, n);
                if s.logits_all.is_empty() {
                    for start in (0..n).step_by(rows) {
                        let r = rows.min(n - start);
                        s.logits_all.push(b.tensor(r, c.n_vocab)?);
                        if rows < n {
                            s.chunk_in.push(b.tensor(r, e)?);
                        }
                    }
                }
                for (i, logits) in s.logits_all.iter_mut().enumerate() {
                    match s.chunk_in.get_mut(i) {
                        Some(x) => {
                            b.copy_rows(&s.all_norm, i * rows, x)?;
                            b.matmul(out_w, None, x, logits)?;
                        }
                        None => b.matmul(out_w, None, &s.all_norm, logits)?,
                    }
                    if let Some(cap) = c.final_softcap {
                        b.softcap(logits, cap)?;
                    }
                }
                Ok(&s.logits_all)
            }
        }
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
