//! `realm info MODEL`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use realm_gguf::{Gguf, HParams, Value, keys};
use serde_json::json;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).multiple(true).args(["model", "devices"]))]
pub struct Args {
    /// Path to a GGUF file.
    model: Option<PathBuf>,
    /// List the GPU adapters the wgpu backend sees, their features and limits, and the
    /// shader tier it would choose on each, with the reasons.
    #[arg(long)]
    devices: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also list every metadata key (arrays summarized).
    #[arg(long)]
    metadata: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.devices {
        devices(a.json)?;
    }
    match &a.model {
        Some(model) => describe(&a, model),
        None => Ok(()),
    }
}

/// `realm info --devices`.
fn devices(as_json: bool) -> anyhow::Result<()> {
    use realm_runtime::CpuIsa;
    let levels: Vec<&str> = CpuIsa::available().into_iter().map(CpuIsa::name).collect();
    // The level `--backend cpu` runs: REALM_CPU_ISA where set (an error if this CPU lacks it).
    let (in_use, why) = match CpuIsa::from_env() {
        Ok(Some(l)) => (l.name().to_string(), "REALM_CPU_ISA".to_string()),
        Ok(None) => (CpuIsa::best().name().to_string(), "the best this CPU runs".to_string()),
        Err(e) => ("none".to_string(), e.to_string()),
    };
    let adapters = realm_runtime::block_on(realm_runtime::gpu_adapters());
    if as_json {
        let list: Vec<_> = adapters
            .iter()
            .map(|a| {
                json!({
                    "name": a.name, "api": a.api, "device_type": a.device_type, "driver": a.driver,
                    "features": a.features.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "limits": a.limits.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "tier": a.tier, "reasons": a.reasons,
                })
            })
            .collect();
        let cpu = json!({ "isa_levels": levels, "isa": in_use, "isa_reason": why });
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "cpu": cpu, "wgpu_adapters": list }))?
        );
        return Ok(());
    }
    println!("cpu: instruction-set levels {}; in use: {in_use} ({why})", levels.join(", "));
    if adapters.is_empty() {
        println!(
            "wgpu: no GPU adapter found (`--backend wgpu` will fail; without a GPU, install \
             a Vulkan driver such as Mesa's lavapipe: apt-get install mesa-vulkan-drivers libvulkan1)"
        );
        return Ok(());
    }
    println!("wgpu: {} adapter(s); the backend opens the high-performance one", adapters.len());
    for (i, a) in adapters.iter().enumerate() {
        println!("[{i}] {} ({}, {}) driver: {}", a.name, a.device_type, a.api, a.driver);
        let feats: Vec<String> = a
            .features
            .iter()
            .map(|(k, v)| format!("{k} {}", if *v { "yes" } else { "no" }))
            .collect();
        println!("    features: {}", feats.join(", "));
        for (k, v) in &a.limits {
            let shown = if *v >= 1 << 20 && v % (1 << 20) == 0 {
                format!("{v} ({} MiB)", v >> 20)
            } else {
                v.to_string()
            };
            println!("    {k}: {shown}");
        }
        println!("    tier: {}", a.tier);
        for r in &a.reasons {
            println!("      {r}");
        }
    }
    Ok(())
}

fn describe(a: &Args, model: &std::path::Path) -> anyhow::Result<()> {
    let map = super::open(model)?;
    let g = map.gguf().with_context(|| format!("invalid GGUF file {}", model.display()))?;
    let arch = g.architecture()?;
    // An unsupported architecture is still described; the hyperparameter error is reported.
    let hparams = HParams::from_gguf(&g);
    let histogram = type_histogram(&g);
    let n_params: u64 = g.tensors().iter().map(|t| t.n_elements()).sum();
    let tensor_bytes: u64 = g.tensors().iter().map(|t| t.size).sum();
    if a.json {
        let types: Vec<_> = histogram
            .iter()
            .map(|(name, (count, bytes))| json!({"type": name, "tensors": count, "bytes": bytes}))
            .collect();
        let mut out = json!({
            "file_bytes": g.file_size(),
            "version": g.version(),
            "alignment": g.alignment(),
            "data_offset": g.data_offset(),
            "architecture": arch,
            "name": g.get_str(keys::GENERAL_NAME)?,
            "n_tensors": g.tensors().len(),
            "n_params": n_params,
            "tensor_bytes": tensor_bytes,
            "tensor_types": types,
            "n_metadata": g.metadata().len(),
        });
        match &hparams {
            Ok(h) => out["hparams"] = hparams_json(h),
            Err(e) => out["hparams_error"] = json!(e.to_string()),
        }
        if a.metadata {
            out["metadata"] =
                g.metadata().iter().map(|(k, v)| (k.to_string(), json!(summarize(v)))).collect();
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "file: {} ({} bytes, GGUF v{}, alignment {}, tensor data at offset {})",
        model.display(),
        g.file_size(),
        g.version(),
        g.alignment(),
        g.data_offset()
    );
    println!("architecture: {arch}");
    if let Some(name) = g.get_str(keys::GENERAL_NAME)? {
        println!("name: {name}");
    }
    match &hparams {
        Ok(h) => print_hparams(h),
        Err(e) => println!("hyperparameters: unavailable ({e})"),
    }
    print_tokenizer(&g)?;
    println!(
        "tensors: {} ({n_params} parameters, {tensor_bytes} bytes, {:.2} bits/weight)",
        g.tensors().len(),
        if n_params == 0 { 0.0 } else { tensor_bytes as f64 * 8.0 / n_params as f64 }
    );
    for (name, (count, bytes)) in &histogram {
        println!("  {name:<8} {count:>5} tensors {bytes:>14} bytes");
    }
    println!("metadata: {} keys", g.metadata().len());
    if a.metadata {
        for (k, v) in g.metadata() {
            println!("  {k} = {}", summarize(v));
        }
    }
    Ok(())
}

fn type_histogram(g: &Gguf<'_>) -> BTreeMap<&'static str, (usize, u64)> {
    let mut h = BTreeMap::new();
    for t in g.tensors() {
        let e = h.entry(t.ggml_type.name()).or_insert((0, 0));
        e.0 += 1;
        e.1 += t.size;
    }
    h
}

fn print_hparams(h: &HParams) {
    println!(
        "hyperparameters: context {}, embedding {}, layers {}, heads {} (kv {}), head dim {}/{}, \
         feed-forward {}, rope dim {} base {}, rms eps {:e}",
        h.context_length,
        h.n_embd,
        h.n_layer,
        h.n_head,
        h.n_head_kv,
        h.head_dim_k,
        h.head_dim_v,
        h.n_ff,
        h.rope_dim,
        h.rope_freq_base,
        h.rms_eps
    );
    if let Some(w) = h.sliding_window {
        println!("sliding window: {w}");
    }
    for (what, v) in [("attention softcap", h.attn_softcap), ("final softcap", h.final_softcap)] {
        if let Some(v) = v {
            println!("{what}: {v}");
        }
    }
}

fn hparams_json(h: &HParams) -> serde_json::Value {
    json!({
        "arch": h.arch.name(), "context_length": h.context_length, "n_embd": h.n_embd,
        "n_layer": h.n_layer, "n_ff": h.n_ff, "n_head": h.n_head, "n_head_kv": h.n_head_kv,
        "head_dim_k": h.head_dim_k, "head_dim_v": h.head_dim_v, "rope_dim": h.rope_dim,
        "rope_freq_base": h.rope_freq_base, "rms_eps": h.rms_eps,
        "sliding_window": h.sliding_window, "n_vocab": h.n_vocab,
    })
}

fn print_tokenizer(g: &Gguf<'_>) -> anyhow::Result<()> {
    let Some(model) = g.get_str(keys::TOKENIZER_MODEL)? else {
        println!("tokenizer: none");
        return Ok(());
    };
    let n = g.get_array(keys::TOKENIZER_TOKENS)?.map_or(0, |a| a.len());
    let pre = g.get_str(keys::TOKENIZER_PRE)?.unwrap_or("default");
    let id = |k| g.get_u32(k).ok().flatten().map_or("-".to_string(), |v| v.to_string());
    println!(
        "tokenizer: {model} (pre {pre}), {n} tokens, bos {} eos {}, chat template {}",
        id(keys::TOKENIZER_BOS_ID),
        id(keys::TOKENIZER_EOS_ID),
        if g.get(keys::TOKENIZER_CHAT_TEMPLATE).is_some() { "yes" } else { "no" }
    );
    Ok(())
}

/// A short printable form of a metadata value.
fn summarize(v: &Value<'_>) -> String {
    match v {
        Value::String(b) => {
            let s = String::from_utf8_lossy(b);
            let short: String = s.chars().take(80).collect();
            if short.len() < s.len() {
                format!("{short:?}… ({} bytes)", b.len())
            } else {
                format!("{s:?}")
            }
        }
        Value::Array(a) => {
            let head: Vec<String> = a.iter().take(4).map(|e| summarize(&e)).collect();
            let more = if a.len() > 4 { ", …" } else { "" };
            format!("[{}{more}] ({} × {})", head.join(", "), a.len(), a.elem_type().name())
        }
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.as_i128().map_or_else(String::new, |n| n.to_string()),
    }
}
