//! `realm bench` (measured like llama-bench) and `realm perplexity` (chunked like
//! llama-perplexity).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use realm_runtime::Session;
use serde_json::json;

use super::generate::RunArgs;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Prompt tokens processed in one batch (pp test).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens generated one at a time from an empty context (tg test).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Run the tg test as greedy generation (the serving path: the argmax stays on the device,
    /// 4 bytes come back per token, and on a GPU each step is recorded while the previous one
    /// runs) instead of feeding llama-bench's tokens and reading every logit back.
    #[arg(long)]
    greedy: bool,
}

/// Mean and sample standard deviation.
pub(crate) fn stats(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Tokens like llama-bench's: a fixed pseudo-random sequence of valid ids.
pub(crate) fn bench_tokens(n: usize, n_vocab: usize) -> Vec<u32> {
    bench_tokens_seeded(n, n_vocab, 0)
}

/// [`bench_tokens`] from another starting point (one sequence of many).
pub(crate) fn bench_tokens_seeded(n: usize, n_vocab: usize, seed: u64) -> Vec<u32> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n_vocab as u64) as u32
        })
        .collect()
}

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if a.reps == 0 {
        bail!("--repetitions must be at least 1");
    }
    let engine = a.run.load()?;
    let n_vocab = engine.config().n_vocab;
    let mut s = a.run.session(&engine, a.n_prompt.max(a.n_gen))?;
    s.max_batch = a.n_prompt.max(1);
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 0..=a.reps {
        if a.n_prompt > 0 {
            let toks = bench_tokens(a.n_prompt, n_vocab);
            s.reset();
            let t = Instant::now();
            s.prefill(&toks)?;
            let secs = t.elapsed().as_secs_f64();
            if rep > 0 {
                pp.push(a.n_prompt as f64 / secs);
            }
        }
        if a.n_gen > 0 {
            let secs = if a.greedy {
                greedy_run(&mut s, a.n_gen, n_vocab)?
            } else {
                decode_run(&mut s, a.n_gen, n_vocab)?
            };
            if rep > 0 {
                tg.push(a.n_gen as f64 / secs);
            }
        }
    }
    let info = engine.backend_info();
    let (pp_mean, pp_sd) = if pp.is_empty() { (0.0, 0.0) } else { stats(&pp) };
    let (tg_mean, tg_sd) = if tg.is_empty() { (0.0, 0.0) } else { stats(&tg) };
    if a.json {
        println!(
            "{}",
            json!({
                "model": a.run.model.display().to_string(), "backend": info.name, "device": info.device,
                "details": info.details, "cpu_isa": engine.cpu_isa().map(|l| l.name()), "threads": a.run.threads, "n_prompt": a.n_prompt, "n_gen": a.n_gen,
                "repetitions": a.reps, "tg_mode": if a.greedy { "greedy" } else { "fed" }, "pp_tok_s": pp_mean, "pp_tok_s_sd": pp_sd, "pp_runs": pp,
                "tg_tok_s": tg_mean, "tg_tok_s_sd": tg_sd, "tg_runs": tg,
            })
        );
    } else {
        print_model_line(&a.run.model, &info);
        if a.n_prompt > 0 {
            println!("pp{:<5} {pp_mean:>10.2} ± {pp_sd:.2} tok/s", a.n_prompt);
        }
        if a.n_gen > 0 {
            let mode = if a.greedy { " (greedy)" } else { "" };
            println!("tg{:<5} {tg_mean:>10.2} ± {tg_sd:.2} tok/s{mode}", a.n_gen);
        }
        if let Some(h) = engine.host_stats() {
            print_host(&h);
        }
    }
    super::generate::print_profile(&engine);
    Ok(())
}

/// The model, the backend, its device and the paths it chose.
pub(crate) fn print_model_line(model: &std::path::Path, info: &realm_runtime::BackendInfo) {
    let details = info.details.join(", ");
    println!("model: {}  backend: {} ({})  {details}", model.display(), info.name, info.device);
}

/// The host's side of a GPU run (all tests, warm-ups included).
fn print_host(h: &realm_runtime::HostStat) {
    let per = |secs: f64, n: u64| secs * 1e6 / n.max(1) as f64;
    let groups = h.bind_groups_made + h.bind_groups_reused;
    println!(
        "host: {} dispatches in {} submits ({:.0} per submit); recording {:.2} µs per dispatch, \
         submit {:.0} µs; bind groups {:.1}% reused",
        h.dispatches,
        h.submits,
        h.dispatches as f64 / h.submits.max(1) as f64,
        per(h.record_seconds, h.dispatches),
        per(h.submit_seconds, h.submits),
        100.0 * h.bind_groups_reused as f64 / groups.max(1) as f64,
    );
}

/// Generate `n` tokens one at a time from an empty context; returns seconds.
fn decode_run(s: &mut Session<'_>, n: usize, n_vocab: usize) -> anyhow::Result<f64> {
    let toks = bench_tokens(n, n_vocab);
    s.reset();
    let t = Instant::now();
    for (i, &tok) in toks.iter().enumerate() {
        s.prefill(&toks[..=i]).with_context(|| format!("decode step {i} (token {tok})"))?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Greedy generation of `n` tokens after a one-token prompt, past end-of-generation tokens;
/// returns seconds (the prompt's step included, so `n` forward passes as in `decode_run`).
fn greedy_run(s: &mut Session<'_>, n: usize, n_vocab: usize) -> anyhow::Result<f64> {
    let opts = realm_runtime::RequestOptions {
        max_tokens: Some(n),
        ignore_eog: true,
        ..realm_runtime::RequestOptions::greedy()
    };
    let req = realm_runtime::GenerateRequest::new(bench_tokens(1, n_vocab), opts);
    s.reset();
    let t = Instant::now();
    let out = s.generate(&req, None, |_| {})?;
    let secs = t.elapsed().as_secs_f64();
    if out.tokens.len() != n {
        bail!(
            "greedy generation stopped after {} of {n} tokens ({:?})",
            out.tokens.len(),
            out.finish
        );
    }
    Ok(secs)
}

#[derive(clap::Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Text file to score.
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Score at most this many chunks (0 = all).
    #[arg(long, default_value_t = 0)]
    chunks: usize,
}

/// Positions whose logits are read back at once when scoring.
const SCORE_SLICE: usize = 64;

/// Perplexity with llama-perplexity's chunking: the text is cut into chunks of `n_ctx` tokens,
/// each evaluated in a fresh context (its first token replaced by BOS when the model adds one),
/// and only the second half of each chunk is scored.
pub fn perplexity(a: PerplexityArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let engine = a.run.load()?;
    let n_ctx = if a.run.ctx == 0 { 512 } else { a.run.ctx };
    let tok = engine.tokenizer();
    let tokens = tok.tokenize(&text, true, false);
    let mut n_chunk = tokens.len() / n_ctx;
    if a.chunks > 0 {
        n_chunk = n_chunk.min(a.chunks);
    }
    if n_chunk == 0 {
        bail!("{} tokens is less than one chunk of {n_ctx}", tokens.len());
    }
    let mut s = Session::new(&engine, n_ctx, realm_runtime::KvDtype::F16)?;
    let n_vocab = engine.config().n_vocab;
    let first = n_ctx / 2;
    let (mut nll, mut count) = (0.0f64, 0usize);
    let mut per_chunk = Vec::new();
    for c in 0..n_chunk {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        if let (true, Some(bos)) = (tok.add_bos(), tok.bos()) {
            chunk[0] = bos;
        }
        s.reset();
        // The first half only fills the KV cache; the scored half's logits come in slices so a
        // 262k vocabulary never needs all rows at once.
        s.prefill(&chunk[..first])?;
        let mut logits = Vec::new();
        let mut base = first;
        for j in first..n_ctx - 1 {
            if j == base + logits.len() / n_vocab {
                let end = (j + SCORE_SLICE).min(n_ctx - 1);
                logits = s.eval_all(&chunk[j..end])?;
                base = j;
            }
            let row = &logits[(j - base) * n_vocab..(j - base + 1) * n_vocab];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
            let target = tokens[c * n_ctx + j + 1] as usize;
            nll += lse - row[target] as f64;
            count += 1;
        }
        let ppl = (nll / count as f64).exp();
        per_chunk.push(ppl);
        if !a.json {
            eprint!("[{}]{ppl:.4} ", c + 1);
        }
    }
    let ppl = (nll / count as f64).exp();
    if a.json {
        println!(
            "{}",
            json!({"ppl": ppl, "n_ctx": n_ctx, "chunks": n_chunk, "tokens_scored": count, "per_chunk": per_chunk})
        );
    } else {
        eprintln!();
        println!("perplexity: {ppl:.4} over {n_chunk} chunks of {n_ctx} tokens ({count} scored)");
    }
    Ok(())
}
