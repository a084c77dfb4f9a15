//! End to end against llama.cpp (tests/fixtures/oracle): last-position logits (KL, top-10
//! overlap, top-1 where the oracle's margin is clear) and greedy ids over each prompt's robust
//! prefix, for both real models on the CPU backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_runtime::{Engine, EngineOptions, GenerateRequest, KvDtype, SamplingParams, Session};
use realm_testdata::{GEMMA3, SMOLLM2, fixture, model};
use serde_json::Value;

fn log_softmax(x: &[f32]) -> Vec<f64> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = x.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    x.iter().map(|&v| v as f64 - lse).collect()
}

/// KL(oracle ‖ ours) from the oracle's top-k logits and its log-sum-exp: exact on the top-k,
/// plus the tail as one bucket (a lower bound of the full KL by the log-sum inequality).
fn kl_topk(top: &[(usize, f64)], oracle_lse: f64, ours: &[f64]) -> f64 {
    let mut kl = 0.0;
    let (mut p_top, mut q_top) = (0.0, 0.0);
    for &(id, logit) in top {
        let lp = logit - oracle_lse;
        kl += lp.exp() * (lp - ours[id]);
        p_top += lp.exp();
        q_top += ours[id].exp();
    }
    let (p_rest, q_rest) = ((1.0 - p_top).max(1e-12), (1.0 - q_top).max(1e-12));
    kl + p_rest * (p_rest / q_rest).ln()
}

fn read_f32(path: &str) -> Vec<f32> {
    std::fs::read(fixture(path))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn check(model_name: &str, oracle: &str, full_logits: &str) {
    let engine = Engine::load_path(model(model_name), EngineOptions::default()).unwrap();
    let o: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(oracle)).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut unstable_misses = Vec::new();
    for p in o["prompts"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        // Prompts on which llama.cpp disagrees with itself beyond the tolerance (turning flash
        // attention on moves its own logits by KL > 2e-2) are reported, not asserted: there the
        // last bits of every rounding decide the result.
        let index = p["index"].as_u64().unwrap() as usize;
        let self_kl =
            o["variance"]["fa_enabled"]["per_prompt"][index]["kl_base_to_alt"].as_f64().unwrap();
        let before = failures.len();
        let prompt: Vec<u32> = p["prompt_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let mut s = Session::new(&engine, 2048, KvDtype::F16).unwrap();
        let (logits, _) = s.prefill(&prompt).unwrap();
        let ours = log_softmax(&logits);
        let top: Vec<(usize, f64)> = p["last_position_top_k"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["id"].as_u64().unwrap() as usize, t["logit"].as_f64().unwrap()))
            .collect();
        let kl = kl_topk(&top, p["last_position_logsumexp"].as_f64().unwrap(), &ours);
        let mut our_top: Vec<usize> = (0..logits.len()).collect();
        our_top.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        let overlap = top.iter().filter(|(id, _)| our_top[..10].contains(id)).count();
        let margin = top[0].1 - top[1].1;
        eprintln!(
            "{model_name} {name}: KL {kl:.2e}, top-10 overlap {overlap}, margin {margin:.2}, top1 {} vs {}",
            our_top[0], top[0].0
        );
        if kl > 2e-2 {
            failures.push(format!("{name}: KL {kl}"));
        }
        if overlap < 8 {
            failures.push(format!("{name}: top-10 overlap {overlap}"));
        }
        if margin >= 0.5 && our_top[0] != top[0].0 {
            failures.push(format!("{name}: top-1 {} != {}", our_top[0], top[0].0));
        }
        if p["index"].as_u64() == Some(0) {
            let full = read_f32(full_logits);
            let lp = log_softmax(&full);
            let kl_full: f64 = lp.iter().zip(&ours).map(|(a, b)| a.exp() * (a - b)).sum();
            eprintln!("{model_name} {name}: full KL {kl_full:.2e}");
            if kl_full > 2e-2 {
                failures.push(format!("{name}: full KL {kl_full}"));
            }
        }
        if self_kl > 2e-2 {
            unstable_misses.extend(
                failures.drain(before..).map(|f| format!("{f} (llama.cpp self-KL {self_kl:.1e})")),
            );
        }
        // Greedy over the robust prefix.
        let g = &p["greedy"];
        let robust = g["robust_prefix_len"].as_u64().unwrap() as usize;
        let want: Vec<u32> = g["ids"]
            .as_array()
            .unwrap()
            .iter()
            .take(robust)
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        if robust > 0 {
            let req = GenerateRequest {
                prompt: prompt.clone(),
                max_tokens: robust,
                sampling: SamplingParams::greedy(),
                stop: vec![],
                special_text: false,
            };
            let out = s.generate(&req, None, |_| {}).unwrap();
            let got = &out.tokens[..out.tokens.len().min(robust)];
            if got != want.as_slice() {
                failures.push(format!("{name}: greedy {got:?} != {want:?}"));
            }
        }
    }
    for m in &unstable_misses {
        eprintln!("{model_name}: numerically unstable prompt, not asserted: {m}");
    }
    assert!(unstable_misses.len() <= 3, "{model_name}: too many misses on unstable prompts");
    assert!(failures.is_empty(), "{model_name}:\n{}", failures.join("\n"));
}

#[test]
fn smollm2_matches_llama_cpp() {
    check(SMOLLM2, "oracle/oracle_smollm2.json", "oracle/logits_prompt0.f32");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check(GEMMA3, "oracle/oracle_gemma3.json", "oracle/logits_prompt0_gemma3.f32");
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
