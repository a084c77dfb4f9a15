//! `realm batched-bench`: throughput of the serving engine with several sequences at once,
//! measured and printed like llama.cpp's `llama-batched-bench` (`tools/batched-bench`): for
//! each prompt length PP, generation length TG and number of parallel sequences B, the B
//! prompts are prefilled together (one step while they fit `--batch-size` tokens), then TG
//! decode steps of B rows follow. T_PP is the prefill's time, S_PP = B·PP / T_PP; T_TG the
//! decode steps', S_TG = B·TG / T_TG; S = B·(PP+TG) / (T_PP + T_TG).
//!
//! It runs through the [`Scheduler`] itself — admission, the paged KV pool, sampling,
//! detokenization and events — not a bare forward loop, so the numbers are the serving
//! path's. Prompts are pseudo-random tokens, different per sequence (no prefix is shared,
//! as llama-batched-bench without `-pps`), and generation ignores end-of-generation tokens.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use realm_runtime::{
    GenerateRequest, RequestHandle, RequestOptions, Scheduler, SchedulerConfig, SeqEvent,
};
use serde_json::json;

use super::bench::{bench_tokens_seeded, print_model_line};
use super::generate::RunArgs;

#[derive(clap::Args)]
pub struct BatchedBenchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Prompt lengths (comma-separated; `-npp` as llama-batched-bench spells it works too).
    #[arg(long = "npp", value_delimiter = ',', default_value = "128")]
    npp: Vec<usize>,
    /// Generation lengths.
    #[arg(long = "ntg", value_delimiter = ',', default_value = "128")]
    ntg: Vec<usize>,
    /// Parallel sequences.
    #[arg(long = "npl", value_delimiter = ',', default_value = "1,2,4,8,16")]
    npl: Vec<usize>,
    /// Most tokens per step (llama.cpp's n_batch).
    #[arg(short = 'b', long = "batch-size", default_value_t = 2048)]
    batch: usize,
    /// KV block size, in positions.
    #[arg(long, default_value_t = SchedulerConfig::default().block_size)]
    block_size: usize,
    /// Print one JSON object per run (keys as llama-batched-bench's JSONL output).
    #[arg(long)]
    json: bool,
    /// Instead of the table: time to first token of a request whose first N prompt tokens
    /// an earlier request computed (the prefix cache), against the same request uncached.
    #[arg(long, value_name = "N")]
    prefix_ttft: Option<usize>,
    /// Repetitions of the prefix measurement (fresh prefixes each; medians are reported).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    /// A KV pool of this many positions instead of one that holds every run: runs that do not
    /// fit preempt (and say how often) instead of being skipped.
    #[arg(long, value_name = "N")]
    pool_positions: Option<usize>,
}

/// One measured configuration.
struct Run {
    pp: usize,
    tg: usize,
    pl: usize,
    t_pp: f64,
    t_tg: f64,
    preemptions: u32,
}

pub fn batched_bench(a: BatchedBenchArgs) -> anyhow::Result<()> {
    if [&a.npp, &a.ntg, &a.npl].iter().any(|v| v.is_empty() || v.contains(&0)) {
        bail!("-npp, -ntg and -npl need positive values");
    }
    let engine = a.run.load()?;
    let info = engine.backend_info();
    let n_vocab = engine.config().n_vocab;
    // llama-batched-bench's KV size is -c (its default here: 4096 positions).
    let n_kv_max = if a.run.ctx == 0 { 4096 } else { a.run.ctx };
    let bs = a.block_size.max(1);
    let forced = a.pool_positions.is_some();
    let fits = |pp: usize, tg: usize, pl: usize| forced || pl * (pp + tg) <= n_kv_max;
    // Room for every configuration that runs, each sequence in whole blocks.
    let mut positions = n_kv_max.next_multiple_of(bs);
    for (&pp, &tg, &pl) in configs(&a) {
        if fits(pp, tg, pl) {
            positions = positions.max(pl * (pp + tg + 1).next_multiple_of(bs));
        }
    }
    if let Some(p) = a.pool_positions {
        positions = p.next_multiple_of(bs);
    }
    let kv_dtype = a.run.kv_dtype()?;
    let max_pl = a.npl.iter().copied().max().unwrap_or(1);
    let config = SchedulerConfig {
        kv_budget_bytes: positions as u64 * engine.kv_bytes_per_token(kv_dtype),
        block_size: bs,
        kv_dtype,
        max_running: max_pl,
        max_waiting: max_pl,
        max_batch_tokens: a.batch.max(max_pl),
        max_seq_len: 0,
        prefix_cache: false,
        // llama-batched-bench has no speculation: measure the same work.
        lookup: None,
    };
    let threads = a.run.threads;
    let prefix_cache = a.prefix_ttft.is_some();
    let config = SchedulerConfig { prefix_cache, ..config };
    let s = Scheduler::start(engine, config).context("cannot start the serving engine")?;
    if let Some(n) = a.prefix_ttft {
        return prefix_ttft(&s, n, a.reps.max(1), n_vocab, a.json);
    }
    // Warm-up, as llama-batched-bench's first decode, but over the largest prefill too:
    // llama.cpp allocates its compute buffers up front, while realm's first pass of a new
    // size pays for fresh pages (and the allocator's first large mmaps); measured runs are of
    // the steady state.
    let (max_pp, max_pl) = (a.npp.iter().max().copied().unwrap_or(1), max_pl);
    let warm_pl = max_pl.min((positions / (max_pp + 2).next_multiple_of(bs)).max(1));
    measure(&s, max_pp, 2, warm_pl, n_vocab, u64::MAX, true)?;
    measure(&s, max_pp, 2, 1, n_vocab, u64::MAX - 1, true)?;
    if !a.json {
        print_model_line(&a.run.model, &info);
        println!(
            "n_kv_max = {n_kv_max}, n_batch = {}, block_size = {bs}, is_pp_shared = 0, n_threads = {threads}",
            a.batch
        );
        println!();
        println!(
            "|{:>6} |{:>6} |{:>4} |{:>6} |{:>8} |{:>8} |{:>8} |{:>8} |{:>8} |{:>8} |",
            "PP", "TG", "B", "N_KV", "T_PP s", "S_PP t/s", "T_TG s", "S_TG t/s", "T s", "S t/s"
        );
        println!(
            "|-------|-------|-----|-------|---------|---------|---------|---------|---------|---------|"
        );
    }
    for (i, (&pp, &tg, &pl)) in configs(&a).enumerate() {
        if !fits(pp, tg, pl) {
            continue;
        }
        let r = measure(&s, pp, tg, pl, n_vocab, i as u64, forced)?;
        print_run(&r, a.json, n_kv_max, a.batch, threads);
    }
    if !a.json {
        let st = s.stats();
        println!();
        println!(
            "steps: {}, {:.2} sequences per step, preemptions: {}, KV blocks of {bs}: {} in the pool",
            st.steps,
            st.step_sequences as f64 / st.steps.max(1) as f64,
            st.preemptions,
            st.kv.blocks
        );
    }
    Ok(())
}

/// Time to first token with and without the first `n` prompt tokens in the prefix cache,
/// `reps` times over fresh prefixes: each prefix is sent once with one 16-token suffix
/// (nothing cached: the uncached time), then again with another suffix (the prefix comes
/// from the cache).
fn prefix_ttft(
    s: &Scheduler,
    n: usize,
    reps: usize,
    n_vocab: usize,
    json: bool,
) -> anyhow::Result<()> {
    let opts = RequestOptions { max_tokens: Some(1), ..RequestOptions::greedy() };
    let ttft = |prompt: Vec<u32>| -> anyhow::Result<(f64, usize)> {
        let c = s.submit(GenerateRequest::new(prompt, opts.clone()))?.wait()?;
        Ok((c.timings.first_token_seconds, c.cached_tokens))
    };
    let (mut cold, mut warm, mut cached) = (Vec::new(), Vec::new(), 0);
    for r in 0..reps as u64 {
        let prefix = bench_tokens_seeded(n, n_vocab, 7_000 + r);
        let with = |k: u64| {
            let mut p = prefix.clone();
            p.extend(bench_tokens_seeded(16, n_vocab, 9_000 + 2 * r + k));
            p
        };
        cold.push(ttft(with(0))?.0);
        let (t, c) = ttft(with(1))?;
        warm.push(t);
        cached = c;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (c, w) = (median(&mut cold), median(&mut warm));
    if json {
        println!(
            "{}",
            json!({"prefix": n, "suffix": 16, "cached_tokens": cached, "reps": reps,
                   "ttft_uncached_s": c, "ttft_cached_s": w, "ratio": w / c,
                   "uncached_runs": cold, "cached_runs": warm})
        );
    } else {
        println!(
            "time to first token, {n}-token prefix + 16 new tokens (median of {reps}): uncached \
             {:.1} ms, cached {:.1} ms ({cached} tokens from the cache): {:.3}×",
            c * 1e3,
            w * 1e3,
            w / c
        );
    }
    Ok(())
}

/// Every (pp, tg, pl), in llama-batched-bench's order.
fn configs(a: &BatchedBenchArgs) -> impl Iterator<Item = (&usize, &usize, &usize)> {
    a.npp.iter().flat_map(move |pp| {
        a.ntg.iter().flat_map(move |tg| a.npl.iter().map(move |pl| (pp, tg, pl)))
    })
}

/// `pl` sequences of `pp` prompt tokens, each generating `tg + 1` tokens: the first comes
/// from the prefill, the other `tg` from as many decode steps.
fn measure(
    s: &Scheduler,
    pp: usize,
    tg: usize,
    pl: usize,
    n_vocab: usize,
    run: u64,
    may_preempt: bool,
) -> anyhow::Result<Run> {
    let opts =
        RequestOptions { max_tokens: Some(tg + 1), ignore_eog: true, ..RequestOptions::greedy() };
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(pl);
    for j in 0..pl {
        let prompt =
            bench_tokens_seeded(pp, n_vocab, run.wrapping_mul(1000).wrapping_add(j as u64 + 1));
        let submitted = t0.elapsed().as_secs_f64();
        handles.push((submitted, s.submit(GenerateRequest::new(prompt, opts.clone()))?));
    }
    let (mut t_first, mut t_done, mut preemptions) = (0.0f64, 0.0f64, 0);
    for (submitted, h) in handles {
        let (first, total, preempted) = times(&h)?;
        if preempted > 0 && !may_preempt {
            bail!("a sequence was preempted (the KV pool is too small for the run)");
        }
        t_first = t_first.max(submitted + first);
        t_done = t_done.max(submitted + total);
        preemptions += preempted;
    }
    Ok(Run { pp, tg, pl, t_pp: t_first, t_tg: (t_done - t_first).max(1e-9), preemptions })
}

/// A sequence's first token and end, in seconds since its submit, and its preemptions.
fn times(h: &RequestHandle) -> anyhow::Result<(f64, f64, u32)> {
    let mut first = None;
    loop {
        match h.recv_timeout(Duration::from_secs(3600)) {
            Ok(SeqEvent::Token { seconds, .. }) => {
                first.get_or_insert(seconds);
            }
            Ok(SeqEvent::Done(c)) => {
                let t = c.timings;
                return Ok((first.unwrap_or(t.total_seconds), t.total_seconds, t.preemptions));
            }
            Ok(SeqEvent::Failed(e)) => bail!("a sequence failed: {e}"),
            Ok(_) => {}
            Err(_) => bail!("a sequence ended without a result"),
        }
    }
}

fn print_run(r: &Run, json: bool, n_kv_max: usize, n_batch: usize, threads: usize) {
    let n_kv = r.pl * (r.pp + r.tg);
    let t = r.t_pp + r.t_tg;
    let speed_pp = (r.pl * r.pp) as f64 / r.t_pp;
    let speed_tg = (r.pl * r.tg) as f64 / r.t_tg;
    let speed = n_kv as f64 / t;
    if json {
        println!(
            "{}",
            json!({
                "n_kv_max": n_kv_max, "n_batch": n_batch, "is_pp_shared": 0, "n_threads": threads,
                "pp": r.pp, "tg": r.tg, "pl": r.pl, "n_kv": n_kv,
                "t_pp": r.t_pp, "speed_pp": speed_pp, "t_tg": r.t_tg, "speed_tg": speed_tg,
                "t": t, "speed": speed, "preemptions": r.preemptions,
            })
        );
    } else {
        let preempted = if r.preemptions > 0 {
            format!(" {} preemptions", r.preemptions)
        } else {
            String::new()
        };
        println!(
            "|{:>6} |{:>6} |{:>4} |{:>6} |{:>8.3} |{:>8.2} |{:>8.3} |{:>8.2} |{:>8.3} |{:>8.2} |{preempted}",
            r.pp, r.tg, r.pl, n_kv, r.t_pp, speed_pp, r.t_tg, speed_tg, t, speed
        );
    }
}
