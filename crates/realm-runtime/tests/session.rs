//! Session behaviour on the real SmolLM2 model: KV prefix reuse, stop strings, cancellation,
//! context limits, and typed errors for models Realm cannot run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::AtomicBool;

use realm_gguf::{GgmlType, GgufWriter, OwnedValue, keys, synth};
use realm_runtime::{
    Engine, EngineOptions, FinishReason, GenerateRequest, KvDtype, RequestOptions, RuntimeError,
    Session,
};
use realm_testdata::{SMOLLM2, model};

fn engine() -> Engine {
    Engine::load_path(model(SMOLLM2), EngineOptions::default()).unwrap()
}

fn greedy(prompt: Vec<u32>, n: usize) -> GenerateRequest {
    GenerateRequest::new(prompt, RequestOptions { max_tokens: Some(n), ..RequestOptions::greedy() })
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn shared_prefix_is_reused_and_gives_the_same_logits() {
    let e = engine();
    let tok = e.tokenizer();
    let turn1 = tok.tokenize("<|im_start|>user\nName a color.<|im_end|>\n", false, true);
    let mut both = turn1.clone();
    both.extend(tok.tokenize("<|im_start|>assistant\n", false, true));
    let mut s = Session::new(&e, 512, KvDtype::F16).unwrap();
    let (_, reused) = s.prefill(&turn1).unwrap();
    assert_eq!(reused, 0);
    let (warm, reused) = s.prefill(&both).unwrap();
    assert_eq!(reused, turn1.len());
    let mut fresh = Session::new(&e, 512, KvDtype::F16).unwrap();
    let (cold, _) = fresh.prefill(&both).unwrap();
    let d = max_abs_diff(&warm, &cold);
    assert!(d < 0.05, "reused-prefix logits differ by {d}");
    // A diverging prompt reuses only the common part.
    let mut other = turn1[..3].to_vec();
    other.push(28);
    let (_, reused) = s.prefill(&other).unwrap();
    assert_eq!(reused, 3);
}

#[test]
fn a_detached_session_resumes_with_its_cache_and_only_on_its_engine() {
    let e = engine();
    let prompt = e.tokenizer().tokenize("The capital of France is", true, false);
    let mut s = Session::new(&e, 256, KvDtype::F16).unwrap();
    let first = s.generate(&greedy(prompt.clone(), 6), None, |_| {}).unwrap();
    let state = s.into_state();
    assert_eq!(state.n_ctx(), 256);
    // The next request continues the conversation: everything generated so far is reused.
    let mut next = prompt.clone();
    next.extend(&first.tokens);
    next.extend(e.tokenizer().tokenize(" And", false, false));
    let mut s = Session::resume(&e, state).unwrap();
    let second = s.generate(&greedy(next.clone(), 4), None, |_| {}).unwrap();
    assert_eq!(second.reused, prompt.len() + first.tokens.len());
    let mut fresh = Session::new(&e, 256, KvDtype::F16).unwrap();
    let cold = fresh.generate(&greedy(next, 4), None, |_| {}).unwrap();
    assert_eq!(second.tokens, cold.tokens);
    // Another engine (even of the same model) cannot take the state.
    let other = engine();
    let Err(err) = Session::resume(&other, s.into_state()) else {
        panic!("a state was resumed on another engine");
    };
    assert_eq!(err.code(), "invalid-argument");
}

#[test]
fn generation_stops_on_stop_strings_eog_and_length() {
    let e = engine();
    let prompt = e.tokenizer().tokenize("The capital of France is", true, false);
    let mut s = Session::new(&e, 256, KvDtype::F16).unwrap();
    let free = s.generate(&greedy(prompt.clone(), 12), None, |_| {}).unwrap();
    assert_eq!(free.finish, FinishReason::Length);
    assert_eq!(free.tokens.len(), 12);
    assert!(free.reused == 0);
    // Stop at the first word of the free continuation: it must not appear in the text.
    let word = free.text.split_whitespace().next().unwrap().to_string();
    let mut req = greedy(prompt.clone(), 12);
    req.options.stop = vec![word.clone()];
    let mut streamed = String::new();
    let out = s
        .generate(&req, None, |ev| match ev {
            realm_runtime::Event::Token { text, .. } | realm_runtime::Event::Flush { text } => {
                streamed.push_str(text)
            }
        })
        .unwrap();
    assert_eq!(out.finish, FinishReason::Stop);
    assert!(!out.text.contains(&word), "{:?} contains the stop string {word:?}", out.text);
    assert_eq!(streamed, out.text, "streamed text must equal the final text");
    assert!(out.reused > 0, "the second call reuses the prompt's cache");
    // Streaming without stop strings also adds up to the final text.
    let mut streamed = String::new();
    let out = s
        .generate(&greedy(prompt, 20), None, |ev| match ev {
            realm_runtime::Event::Token { text, .. } | realm_runtime::Event::Flush { text } => {
                streamed.push_str(text)
            }
        })
        .unwrap();
    assert_eq!(streamed, out.text);
}

#[test]
fn cancellation_and_context_limits() {
    let e = engine();
    let prompt = e.tokenizer().tokenize("Count: 1, 2, 3,", true, false);
    let mut s = Session::new(&e, 64, KvDtype::F32).unwrap();
    let cancel = AtomicBool::new(true);
    let out = s.generate(&greedy(prompt.clone(), 8), Some(&cancel), |_| {}).unwrap();
    assert_eq!((out.finish, out.tokens.len()), (FinishReason::Cancelled, 0));
    // The context fills up: generation ends with ContextFull, not an error.
    let out = s.generate(&greedy(prompt.clone(), 1000), None, |_| {}).unwrap();
    assert_eq!(out.finish, FinishReason::ContextFull);
    assert!(out.tokens.len() <= 64 - prompt.len() + 1);
    // A prompt longer than the context is a typed error.
    let long: Vec<u32> = (0..65).map(|i| 100 + i).collect();
    assert!(matches!(s.prefill(&long), Err(RuntimeError::PromptTooLong { prompt: 65, n_ctx: 64 })));
    assert!(matches!(s.prefill(&[]), Err(RuntimeError::EmptyPrompt)));
}

/// A small model file built from SmolLM2's tokenizer with a custom architecture or a tensor
/// removed.
fn variant(arch: &str, drop: Option<&str>) -> Vec<u8> {
    let map = realm_gguf::MappedFile::open(model(SMOLLM2)).unwrap();
    let real = map.gguf().unwrap();
    let plan = synth::plan(synth::shape("smollm2-135m").unwrap(), GgmlType::Q8_0, &real).unwrap();
    let mut w = GgufWriter::new();
    let header = plan.header().unwrap();
    let g = match realm_gguf::Gguf::parse_prefix(&header, u64::MAX / 2).unwrap() {
        realm_gguf::Parsed::Ready(g) => g,
        realm_gguf::Parsed::NeedMore { .. } => panic!("header incomplete"),
    };
    for (k, v) in g.metadata() {
        let v = if *k == keys::GENERAL_ARCHITECTURE { OwnedValue::str(arch) } else { v.into() };
        let k = k.replacen("llama.", &format!("{arch}."), 1);
        w.add_kv(&k, v).unwrap();
    }
    for t in g.tensors().iter().filter(|t| Some(t.name) != drop) {
        w.add_tensor(t.name, t.dims(), t.ggml_type).unwrap();
    }
    let mut out = Vec::new();
    w.write(&mut out, |_, spec, buf| {
        buf.resize(spec.size as usize, 0);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn unknown_architecture_and_missing_tensor_are_typed_errors() {
    let Err(e) = Engine::load_bytes(variant("gptneox", None), EngineOptions::default()) else {
        panic!("unknown architecture loaded");
    };
    assert!(e.to_string().contains("gptneox"), "{e}");
    let Err(e) =
        Engine::load_bytes(variant("llama", Some("blk.7.ffn_up.weight")), EngineOptions::default())
    else {
        panic!("model with a missing tensor loaded");
    };
    assert!(
        matches!(e, RuntimeError::Model(realm_model::ModelError::MissingTensor { ref name }) if name == "blk.7.ffn_up.weight"),
        "{e}"
    );
}

/// Greedy decoding reads back only the backend's argmax; it picks what the sampler would from
/// the full logits (the first maximum), so the CPU's greedy results do not change.
#[test]
fn greedy_uses_the_backend_argmax_and_matches_the_logits() {
    let e = engine();
    let prompt = e.tokenizer().tokenize("The capital of France is", true, false);
    let mut s = Session::new(&e, 256, KvDtype::F16).unwrap();
    let out = s.generate(&greedy(prompt.clone(), 8), None, |_| {}).unwrap();
    let mut by_logits = Session::new(&e, 256, KvDtype::F16).unwrap();
    let mut by_argmax = Session::new(&e, 256, KvDtype::F16).unwrap();
    let mut seq = prompt;
    for &want in &out.tokens {
        let (logits, _) = by_logits.prefill(&seq).unwrap();
        let first_max = logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
            .0 as u32;
        let (id, _) = by_argmax.prefill_argmax(&seq).unwrap();
        assert_eq!((first_max, id), (want, want));
        seq.push(want);
    }
}

/// A prompt in one step of 1000 rows runs as two forward passes (the runtime's 512-row cap);
/// the logits are those of the same prompt in steps of 100 rows, bit for bit.
#[test]
fn one_long_step_equals_short_steps() {
    let e = engine();
    let tok = e.tokenizer();
    let text = "A long prompt about the weather, the sea and the mountains. ".repeat(60);
    let mut prompt = tok.tokenize(&text, true, false);
    prompt.truncate(1000);
    let mut long = Session::new(&e, 1024, KvDtype::F16).unwrap();
    long.max_batch = 2048;
    let mut short = Session::new(&e, 1024, KvDtype::F16).unwrap();
    short.max_batch = 100;
    let (a, _) = long.prefill(&prompt).unwrap();
    let (b, _) = short.prefill(&prompt).unwrap();
    assert_eq!(a.len(), e.config().n_vocab);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}
