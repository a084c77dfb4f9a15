//! `realm synth`: a random-weight model of a named shape with a real model's tokenizer.

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, bail};
use realm_gguf::{GgmlType, synth};

#[derive(clap::Args)]
pub struct Args {
    /// Shape name (smollm2-135m, llama-1b, llama-7b).
    #[arg(long)]
    shape: String,
    /// Weight type of the matrices (e.g. q4_0, q4_1, q8_0, q4_K).
    #[arg(long)]
    quant: String,
    /// Model whose tokenizer metadata the synthetic model carries.
    #[arg(long)]
    vocab_from: PathBuf,
    /// Output GGUF path.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the weight generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let Some(shape) = synth::shape(&a.shape) else {
        let names: Vec<_> = synth::SHAPES.iter().map(|s| s.name).collect();
        bail!("unknown shape '{}' (known: {})", a.shape, names.join(", "));
    };
    let quant = parse_type(&a.quant)?;
    let map = super::open(&a.vocab_from)?;
    let vocab =
        map.gguf().with_context(|| format!("invalid GGUF file {}", a.vocab_from.display()))?;
    let tmp = a.out.with_extension("gguf.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let n = synth::write_model(shape, quant, &vocab, a.seed, &mut w)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    w.into_inner().map_err(|e| e.into_error()).context("flush")?.sync_all()?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!("wrote {} ({n} bytes, {} {})", a.out.display(), shape.name, quant.name());
    Ok(())
}

/// A ggml type by name, case-insensitively (`q4_0`, `Q4_K`, `f16`, ...).
pub fn parse_type(name: &str) -> anyhow::Result<GgmlType> {
    match GgmlType::ALL.iter().find(|t| t.name().eq_ignore_ascii_case(name)) {
        Some(&t) if realm_quant::can_quantize(t) || t == GgmlType::F32 => Ok(t),
        Some(t) => bail!("cannot write {} weights (no quantizer)", t.name()),
        None => bail!("unknown ggml type '{name}'"),
    }
}
