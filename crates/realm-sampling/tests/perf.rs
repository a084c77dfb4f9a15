//! Performance sanity at a 262,144-token vocabulary (Gemma 3's): the paths must finish
//! quickly, but nothing asserts on time. Run with `--nocapture` to see the numbers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::TestRng;
use realm_sampling::{Sampler, SamplingParams};

const N_VOCAB: usize = 262_144;

fn run(name: &str, params: SamplingParams, logits: &[f32], steps: usize) {
    let mut s = Sampler::new(params, N_VOCAB).unwrap();
    let start = Instant::now();
    for _ in 0..steps {
        let t = s.sample(logits).unwrap();
        assert!((t as usize) < N_VOCAB);
        s.accept(t);
    }
    let per = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    eprintln!("{name:<40} {per:8.3} ms/token");
}

#[test]
fn large_vocabulary_paths() {
    let mut rng = TestRng::new(262_144);
    let peaked = rng.logits(N_VOCAB, 3.0, 0.0, 0.0);
    // Nearly flat logits: top-p without top-k must look at most of the vocabulary, which
    // drives the adaptive sort to sort everything.
    let flat = rng.logits(N_VOCAB, 0.01, 0.0, 0.0);
    let no_k = SamplingParams { top_k: 0, ..SamplingParams::default() };
    run("greedy", SamplingParams::greedy(), &peaked, 20);
    run("default (top-k 40)", SamplingParams::default(), &peaked, 20);
    run(
        "penalties + default",
        SamplingParams { repeat_penalty: 1.1, frequency_penalty: 0.2, ..SamplingParams::default() },
        &peaked,
        20,
    );
    run("top-p 0.95 + min-p, no top-k", no_k, &peaked, 20);
    run("top-p 0.95, no top-k, flat logits", SamplingParams { min_p: 0.0, ..no_k }, &flat, 5);
    run(
        "no filters at all",
        SamplingParams { top_k: 0, top_p: 1.0, min_p: 0.0, ..no_k },
        &peaked,
        20,
    );
}
