//! `realm generate --parallel N`: N answers to one prompt through the serving engine, each
//! with its own seed, to see continuous batching work from the command line.

use std::time::Instant;

use anyhow::Context;
use realm_runtime::{
    Engine, GenerateRequest, RequestOptions, Scheduler, SchedulerConfig, SeqEvent,
};
use serde_json::json;

use super::generate::RunArgs;

pub fn run(
    engine: Engine,
    run: &RunArgs,
    prompt: Vec<u32>,
    options: RequestOptions,
    n: usize,
    json: bool,
) -> anyhow::Result<()> {
    let block_size = SchedulerConfig::default().block_size;
    let per_seq = (prompt.len() + options.max_tokens.unwrap_or(0) + 1).next_multiple_of(block_size);
    let kv_dtype = run.kv_dtype()?;
    let config = SchedulerConfig {
        kv_budget_bytes: (n * per_seq) as u64 * engine.kv_bytes_per_token(kv_dtype),
        kv_dtype,
        max_running: n,
        max_batch_tokens: (n * prompt.len()).clamp(n, 2048),
        ..SchedulerConfig::default()
    };
    let s = Scheduler::start(engine, config).context("cannot start the serving engine")?;
    let seed = options.seed.unwrap_or(realm_sampling_default_seed());
    let t0 = Instant::now();
    let handles = (0..n)
        .map(|i| {
            let o = RequestOptions { seed: Some(seed.wrapping_add(i as u64)), ..options.clone() };
            s.submit(GenerateRequest::new(prompt.clone(), o))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0;
    for (i, h) in handles.into_iter().enumerate() {
        let mut first = None;
        let done = loop {
            match h.recv() {
                Some(SeqEvent::Token { seconds, .. }) => {
                    first.get_or_insert(seconds);
                }
                Some(SeqEvent::Done(c)) => break c,
                Some(SeqEvent::Failed(e)) => anyhow::bail!("answer {i} failed: {e}"),
                Some(_) => {}
                None => anyhow::bail!("answer {i} ended without a result"),
            }
        };
        total += done.tokens.len();
        if json {
            println!(
                "{}",
                json!({"index": i, "seed": seed.wrapping_add(i as u64), "tokens": done.tokens,
                       "text": done.text, "finish_reason": done.finish.as_str(),
                       "time_to_first_token_s": done.timings.first_token_seconds,
                       "total_s": done.timings.total_seconds, "preemptions": done.timings.preemptions})
            );
        } else {
            println!("[{i}] {}", done.text);
            eprintln!(
                "[{i}: {} tokens, first after {:.3} s, done after {:.3} s, finish: {:?}]",
                done.tokens.len(),
                first.unwrap_or(0.0),
                done.timings.total_seconds,
                done.finish
            );
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let st = s.stats();
    eprintln!(
        "[{n} answers, {total} tokens in {secs:.3} s: {:.1} tok/s in all; {:.2} sequences per step]",
        total as f64 / secs.max(1e-9),
        st.step_sequences as f64 / st.steps.max(1) as f64
    );
    Ok(())
}

/// The sampler's default seed, for `--parallel` without `--seed`.
fn realm_sampling_default_seed() -> u64 {
    realm_runtime::SamplingParams::default().seed
}
