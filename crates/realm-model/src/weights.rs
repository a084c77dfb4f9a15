//! Weight loading: every tensor is checked against the config's shapes and uploaded once.

use realm_core::{Backend, SharedBytes, WeightDesc, WeightLayout};
use realm_gguf::keys::tensor::{self as names, BlockTensor};
use realm_gguf::{Gguf, TensorInfo};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// The weights of one transformer block.
pub struct LayerWeights<B: Backend> {
    pub attn_norm: B::Weight,
    pub wq: B::Weight,
    pub wk: B::Weight,
    pub wv: B::Weight,
    pub wo: B::Weight,
    pub bq: Option<B::Weight>,
    pub bk: Option<B::Weight>,
    pub bv: Option<B::Weight>,
    pub q_norm: Option<B::Weight>,
    pub k_norm: Option<B::Weight>,
    pub post_attn_norm: Option<B::Weight>,
    pub ffn_norm: B::Weight,
    pub ffn_gate: B::Weight,
    pub ffn_up: B::Weight,
    pub ffn_down: B::Weight,
    pub post_ffn_norm: Option<B::Weight>,
}

/// A loaded model: configuration plus uploaded weights.
pub struct Model<B: Backend> {
    pub config: ModelConfig,
    pub token_embd: B::Weight,
    /// `None` when the output projection is tied to `token_embd`.
    pub output: Option<B::Weight>,
    pub output_norm: B::Weight,
    pub layers: Vec<LayerWeights<B>>,
}

struct Loader<'a, 'g, B: Backend> {
    backend: &'a B,
    gguf: &'a Gguf<'g>,
    bytes: &'a SharedBytes,
    uploaded: &'a dyn Fn(usize, usize),
}

impl<B: Backend> Loader<'_, '_, B> {
    fn desc(&self, t: &TensorInfo<'_>, layout: WeightLayout) -> Result<WeightDesc> {
        let dims = t.dims();
        let cols = dims[0] as usize;
        let rows = t.n_rows() as usize;
        let offset = (self.gguf.data_offset() + t.offset) as usize;
        Ok(WeightDesc {
            name: t.name.to_owned(),
            ty: t.ggml_type,
            rows,
            cols,
            layout,
            bytes: self.bytes.clone(),
            offset,
            len: t.size as usize,
        })
    }

    /// Upload a tensor whose shape must be `expected` (ggml order, innermost first).
    fn load(&self, name: &str, expected: &[u64], layout: WeightLayout) -> Result<B::Weight> {
        let t = self
            .gguf
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor { name: name.into() })?;
        self.check(t, expected)?;
        let desc = self.desc(t, layout)?;
        let (offset, len) = (desc.offset, desc.len);
        let w = self.backend.upload(desc)?;
        (self.uploaded)(offset, len);
        Ok(w)
    }

    fn load_opt(
        &self,
        name: &str,
        expected: &[u64],
        layout: WeightLayout,
    ) -> Result<Option<B::Weight>> {
        match self.gguf.tensor(name) {
            Some(_) => self.load(name, expected, layout).map(Some),
            None => Ok(None),
        }
    }

    fn check(&self, t: &TensorInfo<'_>, expected: &[u64]) -> Result<()> {
        // Trailing dimensions of 1 are equivalent.
        let trim = |d: &[u64]| {
            let n = d.iter().rposition(|&x| x != 1).map_or(1, |i| i + 1);
            d[..n.max(1)].to_vec()
        };
        if trim(t.dims()) != trim(expected) {
            return Err(ModelError::BadShape {
                name: t.name.into(),
                found: t.dims().to_vec(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }
}

fn bias_name(w: BlockTensor, il: u32) -> String {
    format!("blk.{il}.{}.bias", w.stem())
}

impl<B: Backend> Model<B> {
    /// Load a model from a parsed GGUF file whose bytes are `bytes` (the same bytes `gguf`
    /// was parsed from, shared so a CPU backend can keep them mapped instead of copying).
    pub fn load(backend: &B, gguf: &Gguf<'_>, bytes: SharedBytes) -> Result<Model<B>> {
        Model::load_with(backend, gguf, bytes, &|_, _| {})
    }

    /// [`Model::load`], calling `uploaded(offset, len)` after each weight's bytes were handed to
    /// the backend (a loader can then release those pages of a memory-mapped file).
    pub fn load_with(
        backend: &B,
        gguf: &Gguf<'_>,
        bytes: SharedBytes,
        uploaded: &dyn Fn(usize, usize),
    ) -> Result<Model<B>> {
        let embd = gguf
            .tensor(names::TOKEN_EMBD)
            .ok_or_else(|| ModelError::MissingTensor { name: names::TOKEN_EMBD.into() })?;
        let n_vocab = embd.n_rows() as usize;
        let config = ModelConfig::from_gguf(gguf, n_vocab)?;
        let l = Loader { backend, gguf, bytes: &bytes, uploaded };
        let (e, v) = (config.n_embd() as u64, n_vocab as u64);
        let h = &config.hparams;
        let (q, kv, vd, ao) = (
            config.q_dim() as u64,
            config.kv_dim() as u64,
            config.v_dim() as u64,
            config.attn_out_dim() as u64,
        );
        let ff = u64::from(h.n_ff);
        let hd = u64::from(h.head_dim_k);
        let token_embd = l.load(names::TOKEN_EMBD, &[e, v], WeightLayout::Embedding)?;
        let output = l.load_opt(names::OUTPUT, &[e, v], WeightLayout::Matrix)?;
        let output_norm = l.load(names::OUTPUT_NORM, &[e], WeightLayout::Vector)?;
        let mut layers = Vec::with_capacity(config.n_layer());
        for il in 0..h.n_layer {
            use BlockTensor::*;
            let m =
                |t: BlockTensor, shape: &[u64]| l.load(&t.name(il), shape, WeightLayout::Matrix);
            let vec = |t: BlockTensor, n: u64| l.load(&t.name(il), &[n], WeightLayout::Vector);
            let opt_vec =
                |t: BlockTensor, n: u64| l.load_opt(&t.name(il), &[n], WeightLayout::Vector);
            let bias =
                |t: BlockTensor, n: u64| l.load_opt(&bias_name(t, il), &[n], WeightLayout::Vector);
            let (q_norm, k_norm) = if config.qk_norm {
                (Some(vec(AttnQNorm, hd)?), Some(vec(AttnKNorm, hd)?))
            } else {
                (None, None)
            };
            let (post_attn_norm, post_ffn_norm) = if config.post_norms {
                (Some(vec(AttnPostNorm, e)?), Some(vec(FfnPostNorm, e)?))
            } else {
                (opt_vec(AttnPostNorm, e)?, opt_vec(FfnPostNorm, e)?)
            };
            layers.push(LayerWeights {
                attn_norm: vec(AttnNorm, e)?,
                wq: m(AttnQ, &[e, q])?,
                wk: m(AttnK, &[e, kv])?,
                wv: m(AttnV, &[e, vd])?,
                wo: m(AttnOutput, &[ao, e])?,
                bq: bias(AttnQ, q)?,
                bk: bias(AttnK, kv)?,
                bv: bias(AttnV, vd)?,
                q_norm,
                k_norm,
                post_attn_norm,
                ffn_norm: vec(FfnNorm, e)?,
                ffn_gate: m(FfnGate, &[e, ff])?,
                ffn_up: m(FfnUp, &[e, ff])?,
                ffn_down: m(FfnDown, &[ff, e])?,
                post_ffn_norm,
            });
        }
        Ok(Model { config, token_embd, output, output_norm, layers })
    }
}
