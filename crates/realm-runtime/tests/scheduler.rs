//! The serving engine on the real models, 2 threads, CPU: a request's output never depends on
//! its batch-mates (tokens, and logits through their log-probabilities, bit for bit against
//! the same request alone in a `Session`), the prefix cache, preemption when the pool is full,
//! random submit/cancel churn leaving no block behind, and typed errors for bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use realm_runtime::{
    BackendKind, Completion, DeviceOptions, Engine, EngineOptions, Event, FinishReason,
    GenerateRequest, KvDtype, RequestOptions, RuntimeError, Scheduler, SchedulerConfig, SeqEvent,
    Session,
};
use realm_testdata::{GEMMA3, SMOLLM2, model};

fn engine(name: &str) -> Engine {
    let device = DeviceOptions {
        backend: BackendKind::Cpu,
        threads: 2,
        profile: false,
        ..Default::default()
    };
    Engine::load_path(model(name), EngineOptions { device }).unwrap()
}

/// What a request produced: its tokens and, per token, the bits of its log-probability and
/// of its alternatives' (ids and log-probabilities).
#[derive(Debug, Clone, PartialEq)]
struct Output {
    tokens: Vec<u32>,
    logprobs: Vec<Vec<u32>>,
    text: String,
    finish: FinishReason,
}

fn bits(lp: Option<&realm_runtime::TokenLogprobs>) -> Vec<u32> {
    let Some(lp) = lp else { return Vec::new() };
    let mut v = vec![lp.logprob.to_bits()];
    for &(id, p) in &lp.top {
        v.extend([id, p.to_bits()]);
    }
    v
}

/// The request alone, in a `Session` (one sequence, one block, the reference).
fn alone(e: &Engine, req: &GenerateRequest) -> Output {
    let mut s = Session::new(e, 1024, KvDtype::F16).unwrap();
    let mut logprobs = Vec::new();
    let out = s
        .generate(req, None, |ev| {
            if let Event::Token { logprobs: lp, .. } = ev {
                logprobs.push(bits(lp));
            }
        })
        .unwrap();
    Output { tokens: out.tokens, logprobs, text: out.text, finish: out.finish }
}

/// A request's events and output.
type Collected = (Vec<SeqEvent>, Output);

/// Every event of a handle until the end; `cancel_after`: cancel once that many tokens came.
fn collect(
    h: realm_runtime::RequestHandle,
    cancel_after: Option<usize>,
) -> (Vec<SeqEvent>, Output) {
    let mut events = Vec::new();
    let mut logprobs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = h.recv_timeout(left).unwrap_or_else(|_| panic!("request {} stalled", h.id()));
        if let SeqEvent::Token { logprobs: lp, .. } = &e {
            logprobs.push(bits(lp.as_ref()));
            if cancel_after == Some(logprobs.len()) {
                h.cancel();
                h.cancel(); // twice: a no-op
            }
        }
        events.push(e.clone());
        match e {
            SeqEvent::Done(c) => break c,
            SeqEvent::Failed(f) => panic!("request {} failed: {f}", h.id()),
            _ => {}
        }
    };
    let out = Output { tokens: done.tokens, logprobs, text: done.text, finish: done.finish };
    (events, out)
}

/// The stats once the engine has nothing running or waiting (they are published after each
/// step, so right after the last event they may lag by one step).
fn idle(s: &Scheduler) -> realm_runtime::SchedulerStats {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let st = s.stats();
        if st.running == 0 && st.waiting == 0 {
            return st;
        }
        assert!(Instant::now() < deadline, "the engine did not drain: {st:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pool of `blocks` blocks of 16 positions of SmolLM2 (30 layers, 3 KV heads of 64, f16).
fn small_pool(blocks: u64) -> SchedulerConfig {
    let per_block = 16 * 30 * 2 * 3 * 64 * 2;
    SchedulerConfig { kv_budget_bytes: blocks * per_block, block_size: 16, ..Default::default() }
}

fn opts(i: usize, max_tokens: usize) -> RequestOptions {
    // Half greedy, half sampled with their own seeds; all with log-probabilities.
    let base =
        RequestOptions { max_tokens: Some(max_tokens), logprobs: Some(3), ..Default::default() };
    if i.is_multiple_of(2) {
        RequestOptions { temperature: Some(0.0), ..base }
    } else {
        RequestOptions { temperature: Some(0.9), seed: Some(1000 + i as u64), ..base }
    }
}

const TEXTS: [&str; 8] = [
    "The capital of France is",
    "Write a haiku about the sea.",
    "List three prime numbers and explain why each of them is prime, in detail, with an example of a number that is not prime.",
    "Once upon a time, in a small village at the edge of a great forest, there lived an old woodcutter who",
    "def fibonacci(n):",
    "Translate to French: I would like a cup of coffee, please.",
    "Q: What is 17 times 23?\nA:",
    "The three laws of thermodynamics are",
];

/// Eight prompts submitted at staggered times, one cancelled mid-stream, one ending on a stop
/// string: each produces exactly what it produces alone.
fn staggered(name: &str, max_tokens: usize) {
    let e = engine(name);
    let tok = e.tokenizer().clone();
    let reqs: Vec<GenerateRequest> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| GenerateRequest::new(tok.tokenize(t, true, false), opts(i, max_tokens)))
        .collect();
    let mut expected: Vec<Output> = reqs.iter().map(|r| alone(&e, r)).collect();
    // Request 3 stops at a piece of its own answer: the expected output is the same request
    // with that stop string, alone.
    let mut reqs = reqs;
    let stop_at = 3;
    let text = expected[stop_at].text.clone();
    let from = text.char_indices().map(|(i, _)| i).nth(text.chars().count() / 2).unwrap();
    let stop: String = text[from..].chars().take(3).collect();
    assert!(!stop.is_empty(), "request {stop_at} produced no text: {text:?}");
    reqs[stop_at].options.stop = vec![stop.clone()];
    expected[stop_at] = alone(&e, &reqs[stop_at]);
    assert_eq!(expected[stop_at].finish, FinishReason::Stop, "stop {stop:?} in {text:?}");
    let cancel_at = 5;
    let cancel_after = 4;

    let s = Scheduler::start(e, SchedulerConfig { max_batch_tokens: 64, ..Default::default() })
        .unwrap();
    let results: Mutex<Vec<Option<Collected>>> = Mutex::new(vec![None; reqs.len()]);
    std::thread::scope(|scope| {
        for (group, ids) in [[0usize, 1, 2].as_slice(), &[3, 4, 5], &[6, 7]].iter().enumerate() {
            if group > 0 {
                std::thread::sleep(Duration::from_millis(150));
            }
            for &i in *ids {
                let h = s.submit(reqs[i].clone()).unwrap();
                let results = &results;
                let cancel = (i == cancel_at).then_some(cancel_after);
                scope.spawn(move || {
                    let r = collect(h, cancel);
                    results.lock().unwrap()[i] = Some(r);
                });
            }
        }
    });
    let stats = idle(&s);
    for (i, r) in results.into_inner().unwrap().into_iter().enumerate() {
        let (events, got) = r.unwrap();
        let want = &expected[i];
        if i == cancel_at {
            assert_eq!(got.finish, FinishReason::Cancelled, "request {i}");
            let n = got.tokens.len();
            assert!(n >= cancel_after && n < want.tokens.len(), "request {i}: {n} tokens");
            assert_eq!(got.tokens, want.tokens[..n], "request {i}: tokens before the cancel");
            assert_eq!(got.logprobs, want.logprobs[..got.logprobs.len()], "request {i}");
            continue;
        }
        assert_eq!(got.tokens, want.tokens, "{name} request {i}: tokens alone vs batched");
        assert_eq!(got.logprobs, want.logprobs, "{name} request {i}: logprobs alone vs batched");
        assert_eq!(got.text, want.text, "{name} request {i}");
        assert_eq!(got.finish, want.finish, "{name} request {i}");
        assert!(matches!(events[0], SeqEvent::Started { .. }), "{:?}", events[0]);
        // The streamed text is the answer.
        let streamed: String = events
            .iter()
            .filter_map(|e| match e {
                SeqEvent::Token { text, .. } | SeqEvent::Flush { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(streamed, want.text, "{name} request {i}: streamed text");
    }
    // They really ran together.
    let avg = stats.step_sequences as f64 / stats.steps as f64;
    assert!(avg > 1.5, "{name}: {avg:.2} sequences per step on average ({stats:?})");
    assert_eq!((stats.running, stats.waiting, stats.kv.in_use), (0, 0, 0), "{stats:?}");
    s.shutdown();
}

#[test]
fn staggered_requests_smollm2_equal_their_outputs_alone() {
    staggered(SMOLLM2, 24);
}

#[test]
fn staggered_requests_gemma3_equal_their_outputs_alone() {
    staggered(GEMMA3, 12);
}

/// A 300-token prefix shared with an earlier request comes from the cache (≥ 256 tokens) and
/// the answer is the same as without it.
fn prefix_cache(name: &str) {
    let e = engine(name);
    let tok = e.tokenizer().clone();
    let story = "In the year of the long winter the river froze from bank to bank, and the \
                 people of the valley crossed it on foot to trade wool, salt and dried fish. ";
    let mut prefix = tok.tokenize(&story.repeat(12), true, false);
    prefix.truncate(300);
    let with = |suffix: &str| {
        let mut p = prefix.clone();
        p.extend(tok.tokenize(suffix, false, false));
        GenerateRequest::new(p, opts(0, 12))
    };
    let (a, b) = (with(" Question: who crossed the river?"), with(" What did they trade?"));
    let want_b = alone(&e, &b);
    let s = Scheduler::start(e, SchedulerConfig::default()).unwrap();
    let (_, _) = collect(s.submit(a).unwrap(), None);
    let (events, got) = collect(s.submit(b).unwrap(), None);
    let SeqEvent::Done(Completion { cached_tokens, prompt_tokens, .. }) = events.last().unwrap()
    else {
        panic!("no Done")
    };
    assert!(*cached_tokens >= 256, "{name}: {cached_tokens} of {prompt_tokens} cached");
    assert!(*cached_tokens < *prompt_tokens);
    assert_eq!(got, want_b, "{name}: with the prefix cache vs alone");
    let st = idle(&s);
    assert!(st.kv.hit_tokens >= 256, "{st:?}");
}

#[test]
fn prefix_cache_smollm2() {
    prefix_cache(SMOLLM2);
}

#[test]
fn prefix_cache_gemma3() {
    prefix_cache(GEMMA3);
}

/// A step of more rows than one forward pass takes (three long prompts admitted together
/// under a 2048-token budget) runs as several passes, with the same results.
#[test]
fn steps_over_one_pass_of_rows_give_the_same_outputs() {
    let e = engine(SMOLLM2);
    let tok = e.tokenizer().clone();
    let text = "Rivers carry water from the mountains to the sea, shaping valleys as they go. ";
    let reqs: Vec<GenerateRequest> = (0..3)
        .map(|i| {
            let mut p = tok.tokenize(&format!("{i}: {}", text.repeat(20)), true, false);
            p.truncate(300 + 7 * i);
            GenerateRequest::new(p, opts(i, 6))
        })
        .collect();
    let expected: Vec<Output> = reqs.iter().map(|r| alone(&e, r)).collect();
    let s = Scheduler::start(e, SchedulerConfig { max_batch_tokens: 2048, ..Default::default() })
        .unwrap();
    let handles: Vec<_> = reqs.iter().map(|r| s.submit(r.clone()).unwrap()).collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(collect(h, None).1, expected[i], "request {i}");
    }
    let st = idle(&s);
    assert!(st.prompt_rows >= 900 && st.steps < 20, "{st:?}");
}

#[test]
fn a_full_pool_preempts_and_every_request_still_completes_correctly() {
    let e = engine(SMOLLM2);
    let tok = e.tokenizer().clone();
    let reqs: Vec<GenerateRequest> = TEXTS[..6]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let o = RequestOptions { ignore_eog: true, ..opts(i, 40) };
            GenerateRequest::new(tok.tokenize(t, true, false), o)
        })
        .collect();
    let expected: Vec<Output> = reqs.iter().map(|r| alone(&e, r)).collect();
    // 12 blocks of 16 positions: each request needs 3–5 blocks, six of them 20 or more.
    let config = SchedulerConfig { max_batch_tokens: 64, ..small_pool(12) };
    let s = Scheduler::start(e, config).unwrap();
    assert_eq!(s.stats().pool_positions, 12 * 16);
    let handles: Vec<_> = reqs.iter().map(|r| s.submit(r.clone()).unwrap()).collect();
    let mut preempted = 0;
    for (i, h) in handles.into_iter().enumerate() {
        let (events, got) = collect(h, None);
        preempted += events.iter().filter(|e| matches!(e, SeqEvent::Preempted)).count();
        assert_eq!(got, expected[i], "request {i} after preemption");
    }
    let st = idle(&s);
    assert!(preempted > 0 && st.preemptions > 0, "no preemption: {st:?}");
    assert_eq!(st.kv.in_use, 0, "{st:?}");
}

/// A tiny seeded generator for the churn test.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

#[test]
fn random_submits_and_cancels_leave_no_block_in_use() {
    let e = engine(SMOLLM2);
    let config = SchedulerConfig { max_running: 8, max_batch_tokens: 96, ..small_pool(24) };
    let s = Scheduler::start(e, config).unwrap();
    let mut rng = Rng(42);
    let mut kept = Vec::new();
    for i in 0..200u64 {
        let len = 1 + rng.below(60) as usize;
        let prompt: Vec<u32> = (0..len).map(|_| 100 + rng.below(40_000) as u32).collect();
        let o = RequestOptions {
            max_tokens: Some(rng.below(6) as usize),
            temperature: Some(if rng.below(2) == 0 { 0.0 } else { 0.7 }),
            seed: Some(i),
            ..Default::default()
        };
        let h = s.submit(GenerateRequest::new(prompt, o)).unwrap();
        match rng.below(4) {
            // Dropped at once: cancelled.
            0 => drop(h),
            // Cancelled, its events read to the end below.
            1 => {
                h.cancel();
                kept.push(h);
            }
            // Cancelled (dropped) after its first event.
            2 => {
                let _ = h.recv_timeout(Duration::from_secs(60));
                drop(h);
            }
            // Runs to its end.
            _ => kept.push(h),
        }
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        }
    }
    for h in kept {
        let c = h.wait().unwrap();
        assert!(c.tokens.len() <= 5, "{c:?}");
    }
    let st = idle(&s);
    assert_eq!(st.kv.in_use, 0, "{st:?}");
    assert_eq!(st.finished + st.cancelled + st.failed, 200, "{st:?}");
    assert_eq!(st.failed, 0, "{st:?}");
}

#[test]
fn bad_requests_are_typed_errors_and_leave_the_others_alone() {
    let e = engine(SMOLLM2);
    let tok = e.tokenizer().clone();
    let good = GenerateRequest::new(tok.tokenize(TEXTS[0], true, false), opts(0, 16));
    let want = alone(&e, &good);
    let config = SchedulerConfig { max_waiting: 4, ..small_pool(16) };
    let s = Scheduler::start(e, config).unwrap();
    let running = s.submit(good.clone()).unwrap();
    // Longer than a sequence may ever be (the pool holds 256 positions).
    let long = GenerateRequest::new(vec![100; 300], RequestOptions::greedy());
    assert!(matches!(s.submit(long), Err(RuntimeError::PromptTooLong { prompt: 300, n_ctx: 256 })));
    assert!(matches!(s.submit(GenerateRequest::default()), Err(RuntimeError::EmptyPrompt)));
    let bad_token = GenerateRequest::new(vec![1, 999_999], RequestOptions::greedy());
    assert_eq!(s.submit(bad_token).err().map(|e| e.code()), Some("invalid-argument"));
    for bad in [
        RequestOptions { temperature: Some(f32::NAN), ..Default::default() },
        RequestOptions { top_p: Some(1.5), ..Default::default() },
        RequestOptions { logprobs: Some(99), ..Default::default() },
    ] {
        let r = s.submit(GenerateRequest::new(vec![1, 2], bad));
        assert_eq!(r.err().map(|e| e.code()), Some("invalid-argument"));
    }
    // Zero tokens: done at once, nothing generated.
    let zero = RequestOptions { max_tokens: Some(0), ..Default::default() };
    let c = s.submit(GenerateRequest::new(vec![1, 2, 3], zero)).unwrap().wait().unwrap();
    assert_eq!((c.finish, c.tokens.len()), (FinishReason::Length, 0));
    // A full queue refuses, with its own code.
    let mut queued = Vec::new();
    let mut refused = None;
    for _ in 0..20 {
        match s.submit(GenerateRequest::new(vec![1; 200], RequestOptions::greedy())) {
            Ok(h) => queued.push(h),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused.map(|e| e.code()), Some("queue-full"));
    drop(queued);
    // The request running meanwhile is untouched.
    let (_, got) = collect(running, None);
    assert_eq!(got, want);
    s.shutdown();
}

#[test]
fn shutdown_ends_every_request_and_refuses_new_ones() {
    let e = engine(SMOLLM2);
    let s = Scheduler::start(e, SchedulerConfig::default()).unwrap();
    let o =
        RequestOptions { max_tokens: Some(10_000), ignore_eog: true, ..RequestOptions::greedy() };
    let h = s.submit(GenerateRequest::new(vec![1, 504, 3458], o)).unwrap();
    assert!(matches!(h.recv(), Some(SeqEvent::Started { .. })));
    // The handle outlives the scheduler: its stream ends, cancelled.
    let events = std::thread::spawn(move || {
        let mut last = None;
        while let Some(e) = h.recv() {
            last = Some(e);
        }
        last
    });
    s.shutdown();
    match events.join().unwrap() {
        Some(SeqEvent::Done(c)) => assert_eq!(c.finish, FinishReason::Cancelled),
        other => panic!("{other:?}"),
    }
}

#[test]
fn submitting_after_shutdown_is_an_error() {
    let e = engine(SMOLLM2);
    let s = Scheduler::start(e, SchedulerConfig::default()).unwrap();
    let tok = s.tokenizer().clone();
    s.shutdown();
    s.shutdown(); // twice: a no-op
    let r =
        s.submit(GenerateRequest::new(tok.tokenize("Hi", true, false), RequestOptions::greedy()));
    assert!(matches!(r, Err(RuntimeError::ShutDown)), "{:?}", r.err());
}
