//! Deterministic random-weight models of named shapes, carrying another model's tokenizer, so
//! speed can be measured on large shapes that are never downloaded (`realm synth`).
//!
//! The weights are N(0, 0.02²)-ish floats from a seeded generator, quantized with realm-quant's
//! reference quantizer: the output is a real GGUF of the real layout, only the numbers are random.

use std::io::Write;

use realm_quant::GgmlType;

use crate::error::{GgufError, Result};
use crate::keys::{self, arch_key, tensor::BlockTensor};
use crate::reader::Gguf;
use crate::writer::{GgufWriter, OwnedValue, TensorSpec};

/// A llama-family model shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub name: &'static str,
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub n_ff: u32,
    pub context_length: u32,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
    /// The output projection reuses `token_embd` (no `output.weight`).
    pub tied_embeddings: bool,
}

/// The shapes `realm synth --shape` knows.
pub const SHAPES: &[Shape] = &[
    Shape {
        name: "smollm2-135m",
        n_embd: 576,
        n_layer: 30,
        n_head: 9,
        n_head_kv: 3,
        n_ff: 1536,
        context_length: 8192,
        rope_freq_base: 100_000.0,
        rms_eps: 1e-5,
        tied_embeddings: true,
    },
    Shape {
        name: "llama-1b",
        n_embd: 2048,
        n_layer: 16,
        n_head: 32,
        n_head_kv: 8,
        n_ff: 8192,
        context_length: 8192,
        rope_freq_base: 500_000.0,
        rms_eps: 1e-5,
        tied_embeddings: true,
    },
    Shape {
        name: "llama-7b",
        n_embd: 4096,
        n_layer: 32,
        n_head: 32,
        n_head_kv: 32,
        n_ff: 11008,
        context_length: 4096,
        rope_freq_base: 10_000.0,
        rms_eps: 1e-5,
        tied_embeddings: false,
    },
];

pub fn shape(name: &str) -> Option<&'static Shape> {
    SHAPES.iter().find(|s| s.name == name)
}

/// Declare the metadata and tensors of a synthetic model of `shape` with weights of type `quant`
/// and the tokenizer of `vocab_from`.
pub fn plan(shape: &Shape, quant: GgmlType, vocab_from: &Gguf<'_>) -> Result<GgufWriter> {
    let n_vocab = vocab_from
        .get_array(keys::TOKENIZER_TOKENS)?
        .ok_or_else(|| GgufError::MissingKey { key: keys::TOKENIZER_TOKENS.into() })?
        .len();
    let mut w = GgufWriter::new();
    let arch = "llama";
    w.add_kv(keys::GENERAL_ARCHITECTURE, OwnedValue::str(arch))?;
    w.add_kv(
        keys::GENERAL_NAME,
        OwnedValue::str(&format!("synthetic {} {}", shape.name, quant.name())),
    )?;
    let u = |k: &str, v: u32| (arch_key(arch, k), OwnedValue::U32(v));
    for (k, v) in [
        u(keys::CONTEXT_LENGTH, shape.context_length),
        u(keys::EMBEDDING_LENGTH, shape.n_embd),
        u(keys::BLOCK_COUNT, shape.n_layer),
        u(keys::FEED_FORWARD_LENGTH, shape.n_ff),
        u(keys::HEAD_COUNT, shape.n_head),
        u(keys::HEAD_COUNT_KV, shape.n_head_kv),
        u(keys::ROPE_DIMENSION_COUNT, shape.n_embd / shape.n_head),
        (arch_key(arch, keys::ROPE_FREQ_BASE), OwnedValue::F32(shape.rope_freq_base)),
        (arch_key(arch, keys::LAYERNORM_RMS_EPS), OwnedValue::F32(shape.rms_eps)),
    ] {
        w.add_kv(&k, v)?;
    }
    for (key, value) in vocab_from.metadata() {
        if keys::is_tokenizer_key(key) {
            w.add_kv(key, value.into())?;
        }
    }
    let (e, ff, v) = (u64::from(shape.n_embd), u64::from(shape.n_ff), n_vocab);
    let head_dim = e / u64::from(shape.n_head);
    let kv = head_dim * u64::from(shape.n_head_kv);
    w.add_tensor(keys::tensor::TOKEN_EMBD, &[e, v], quant)?;
    w.add_tensor(keys::tensor::OUTPUT_NORM, &[e], GgmlType::F32)?;
    if !shape.tied_embeddings {
        w.add_tensor(keys::tensor::OUTPUT, &[e, v], quant)?;
    }
    for i in 0..shape.n_layer {
        use BlockTensor::*;
        for (t, dims, ty) in [
            (AttnNorm, vec![e], GgmlType::F32),
            (AttnQ, vec![e, e], quant),
            (AttnK, vec![e, kv], quant),
            (AttnV, vec![e, kv], quant),
            (AttnOutput, vec![e, e], quant),
            (FfnNorm, vec![e], GgmlType::F32),
            (FfnGate, vec![e, ff], quant),
            (FfnUp, vec![e, ff], quant),
            (FfnDown, vec![ff, e], quant),
        ] {
            w.add_tensor(&t.name(i), &dims, ty)?;
        }
    }
    Ok(w)
}

/// Write a synthetic model; returns the number of bytes written.
pub fn write_model<W: Write>(
    shape: &Shape,
    quant: GgmlType,
    vocab_from: &Gguf<'_>,
    seed: u64,
    out: &mut W,
) -> Result<u64> {
    let w = plan(shape, quant, vocab_from)?;
    let mut floats = Vec::new();
    w.write(out, |i, spec, buf| {
        fill_tensor(seed ^ (i as u64).wrapping_mul(GOLDEN), spec, &mut floats, buf)
    })
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
/// Elements generated and quantized at a time (a multiple of every block size).
const CHUNK: usize = 1 << 20;

fn fill_tensor(
    seed: u64,
    spec: &TensorSpec,
    floats: &mut Vec<f32>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let n: u64 = spec.dims.iter().product();
    let is_norm = spec.dims.len() == 1;
    let mut rng = SplitMix64(seed);
    buf.resize(spec.size as usize, 0);
    let ty = spec.ggml_type;
    let bytes_per_chunk = ty.tensor_bytes(CHUNK as u64).map_err(quant_err(spec))? as usize;
    let mut done = 0u64;
    let mut at = 0usize;
    while done < n {
        let len = (n - done).min(CHUNK as u64) as usize;
        floats.clear();
        floats.extend((0..len).map(|_| if is_norm { 1.0 } else { 0.02 * rng.normal() }));
        let nbytes = if len == CHUNK {
            bytes_per_chunk
        } else {
            ty.tensor_bytes(len as u64).map_err(quant_err(spec))? as usize
        };
        let dst = &mut buf[at..at + nbytes];
        match ty {
            GgmlType::F32 => {
                for (d, f) in dst.chunks_exact_mut(4).zip(floats.iter()) {
                    d.copy_from_slice(&f.to_le_bytes());
                }
            }
            _ => realm_quant::quantize(ty, floats, dst).map_err(quant_err(spec))?,
        }
        at += nbytes;
        done += len as u64;
    }
    Ok(())
}

fn quant_err(spec: &TensorSpec) -> impl Fn(realm_quant::QuantError) -> GgufError + '_ {
    move |e| GgufError::Write { reason: format!("tensor '{}': {e}", spec.name) }
}

/// splitmix64: tiny, fast, deterministic across platforms.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Approximately standard normal (Irwin–Hall with 4 terms, rescaled): cheap and bounded.
    fn normal(&mut self) -> f32 {
        let s = self.uniform() + self.uniform() + self.uniform() + self.uniform();
        (s - 2.0) * 3.0f32.sqrt()
    }
}
