//! End to end against llama.cpp (tests/fixtures/oracle): last-position logits (KL, top-10
//! overlap, top-1 where the oracle's margin is clear) and greedy ids over each prompt's robust
//! prefix, for both real models on the CPU backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Prompts, check, check_batched};
use realm_runtime::{Engine, EngineOptions, KvDtype, Session};
use realm_testdata::{GEMMA3, SMOLLM2, fixture, model};
use serde_json::Value;

fn cpu(model_name: &str) -> Engine {
    Engine::load_path(model(model_name), EngineOptions::default()).unwrap()
}

#[test]
fn smollm2_matches_llama_cpp() {
    let e = cpu(SMOLLM2);
    check(&e, SMOLLM2, "oracle/oracle_smollm2.json", "oracle/logits_prompt0.f32", Prompts::All);
}

#[test]
fn gemma3_matches_llama_cpp() {
    let e = cpu(GEMMA3);
    check(
        &e,
        GEMMA3,
        "oracle/oracle_gemma3.json",
        "oracle/logits_prompt0_gemma3.f32",
        Prompts::All,
    );
}

#[test]
fn batched_greedy_matches_llama_cpp() {
    check_batched(cpu(SMOLLM2), "oracle/oracle_smollm2.json", Prompts::All);
    check_batched(cpu(GEMMA3), "oracle/oracle_gemma3.json", Prompts::All);
}

/// Teacher forcing: feed llama.cpp's greedy continuation and compare, at every step, our top-5
/// with its top-5 (overlap ≥ 3, same top-1 where its margin is ≥ 0.5, logits of its top-5 within
/// 2.5 of ours — llama.cpp's own flash-attention toggle moves Gemma's logits by up to 1.9), on
/// every prompt except those where llama.cpp disagrees with itself beyond the KL tolerance.
fn teacher_forced(model_name: &str, oracle: &str) {
    let engine = Engine::load_path(model(model_name), EngineOptions::default()).unwrap();
    let o: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(oracle)).unwrap()).unwrap();
    let n_vocab = engine.config().n_vocab;
    let mut failures = Vec::new();
    let mut steps_checked = 0;
    for p in o["prompts"].as_array().unwrap() {
        let index = p["index"].as_u64().unwrap() as usize;
        let self_kl =
            o["variance"]["fa_enabled"]["per_prompt"][index]["kl_base_to_alt"].as_f64().unwrap();
        if self_kl > 2e-2 {
            continue;
        }
        let ids = |v: &Value| -> Vec<u32> {
            v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
        };
        let prompt = ids(&p["prompt_tokens"]);
        let greedy = ids(&p["greedy"]["ids"]);
        let mut seq = prompt.clone();
        seq.extend(&greedy[..greedy.len() - 1]);
        let mut s = Session::new(&engine, 2048, KvDtype::F16).unwrap();
        let logits = s.eval_all(&seq).unwrap();
        for (i, step) in p["greedy"]["steps"].as_array().unwrap().iter().enumerate() {
            let row = &logits[(prompt.len() - 1 + i) * n_vocab..][..n_vocab];
            let theirs: Vec<(usize, f32)> = step["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t[0].as_u64().unwrap() as usize, t[1].as_f64().unwrap() as f32))
                .collect();
            let mut ours: Vec<usize> = (0..n_vocab).collect();
            ours.select_nth_unstable_by(5, |&a, &b| row[b].total_cmp(&row[a]));
            ours.truncate(5);
            ours.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let overlap = theirs.iter().filter(|(id, _)| ours.contains(id)).count();
            let margin = step["margin_to_2nd"].as_f64().unwrap();
            let max_diff = theirs.iter().map(|&(id, l)| (row[id] - l).abs()).fold(0.0, f32::max);
            steps_checked += 1;
            let name = p["name"].as_str().unwrap();
            if overlap < 3 {
                failures.push(format!("{name} step {i}: top-5 overlap {overlap}"));
            }
            if margin >= 0.5 && ours[0] != theirs[0].0 {
                failures.push(format!("{name} step {i}: top-1 {} != {}", ours[0], theirs[0].0));
            }
            if max_diff > 2.5 {
                failures.push(format!("{name} step {i}: top-5 logits differ by {max_diff}"));
            }
        }
    }
    assert!(steps_checked >= 200, "only {steps_checked} steps");
    assert!(
        failures.is_empty(),
        "{model_name}: {} of {steps_checked} steps:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_teacher_forced_top5() {
    teacher_forced(SMOLLM2, "oracle/oracle_smollm2.json");
}

#[test]
fn gemma3_teacher_forced_top5() {
    teacher_forced(GEMMA3, "oracle/oracle_gemma3.json");
}

/// Every SIMD instruction-set level this CPU runs below its best (the best is the default,
/// checked above) against llama.cpp on both models: the AVX2 and 256-bit VNNI panels. (The
/// portable kernels are held to the scalar reference by the conformance suite.)
#[test]
fn every_lower_cpu_isa_level_matches_llama_cpp() {
    use realm_runtime::{CpuIsa, DeviceOptions};
    for level in CpuIsa::available() {
        if level == CpuIsa::best() || level == CpuIsa::Portable {
            continue;
        }
        let opts = || EngineOptions {
            device: DeviceOptions { cpu_isa: Some(level), ..DeviceOptions::default() },
        };
        let e = Engine::load_path(model(SMOLLM2), opts()).unwrap();
        assert!(e.backend_info().details.iter().any(|d| d.starts_with(&format!("isa: {level}"))));
        let smol = ("oracle/oracle_smollm2.json", "oracle/logits_prompt0.f32");
        check(&e, SMOLLM2, smol.0, smol.1, Prompts::All);
        let e = Engine::load_path(model(GEMMA3), opts()).unwrap();
        let gemma = ("oracle/oracle_gemma3.json", "oracle/logits_prompt0_gemma3.f32");
        check(&e, GEMMA3, gemma.0, gemma.1, Prompts::All);
    }
}
