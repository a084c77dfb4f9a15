//! Speculative decoding by prompt lookup in the serving engine, real models, CPU: greedy
//! answers are the same token for token with drafting on and off (single requests and
//! batches, input-grounded prompts where drafts are taken and free ones where they mostly are
//! not), drafts are proposed and accepted where the answer quotes its input, and the counts
//! reach the request's timings. Sampled requests draft too, and their answers are the same as
//! without drafts for the same seed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use realm_runtime::{
    BackendKind, ChatMessage, Completion, DeviceOptions, Engine, EngineOptions, GenerateRequest,
    LookupConfig, RequestOptions, Scheduler, SchedulerConfig, SeqEvent,
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

const PASSAGE: &str = "The Riverside Library opens at 9 a.m. on weekdays and at 10 a.m. on Saturdays. \
It is closed on Sundays. Its address is 42 Elm Street, Springfield. The head librarian is \
Margaret Chen, and the phone number is 555-0142. Members may borrow up to eight books at a time \
for three weeks.";

const CODE: &str = "def total(items):\n    result = 0\n    for item in items:\n        result = result + item.price * item.quantity\n    return result\n";

fn prompts() -> Vec<String> {
    vec![
        format!("{PASSAGE}\n\nCopy the passage above exactly, word for word."),
        format!(
            "Rewrite this Python function, renaming `result` to `acc` and changing nothing else:\n\n{CODE}"
        ),
        format!("{PASSAGE}\n\nQuote the sentence about borrowing books."),
        "Write a short poem about the sea.".to_string(),
        "What are three uses of a paperclip?".to_string(),
    ]
}

fn request(e: &Engine, user: &str, max_tokens: usize) -> GenerateRequest {
    let text = e.chat_template().render(&[ChatMessage::user(user)], true).unwrap();
    let prompt = e.tokenizer().tokenize(&text, true, true);
    GenerateRequest::new(
        prompt,
        RequestOptions { max_tokens: Some(max_tokens), ..RequestOptions::greedy() },
    )
}

fn wait(h: realm_runtime::RequestHandle) -> Completion {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match h.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap() {
            SeqEvent::Done(c) => return c,
            SeqEvent::Failed(f) => panic!("request failed: {f}"),
            _ => {}
        }
    }
}

/// Every request at once on a scheduler with `lookup`.
fn run(
    name: &str,
    lookup: Option<LookupConfig>,
    reqs: &[String],
    max_tokens: usize,
) -> (Vec<Completion>, u64, u64) {
    let e = engine(name);
    let reqs: Vec<_> = reqs.iter().map(|p| request(&e, p, max_tokens)).collect();
    let s = Scheduler::start(e, SchedulerConfig { lookup, ..Default::default() }).unwrap();
    let handles: Vec<_> = reqs.into_iter().map(|r| s.submit(r).unwrap()).collect();
    let out: Vec<_> = handles.into_iter().map(wait).collect();
    let st = s.stats();
    (out, st.draft_tokens, st.draft_accepted)
}

#[test]
fn greedy_answers_are_the_same_with_and_without_drafts() {
    for name in [SMOLLM2, GEMMA3] {
        let ps = prompts();
        // one at a time, then all at once
        for batch in [false, true] {
            let (plain, with) = if batch {
                let (a, d0, _) = run(name, None, &ps, 120);
                assert_eq!(d0, 0);
                let (b, drafted, accepted) = run(name, Some(LookupConfig::default()), &ps, 120);
                assert!(
                    drafted > 0 && accepted > 0,
                    "{name}: drafted {drafted}, accepted {accepted}"
                );
                (a, b)
            } else {
                let mut a = Vec::new();
                let mut b = Vec::new();
                for p in &ps {
                    a.extend(run(name, None, std::slice::from_ref(p), 120).0);
                    b.extend(
                        run(name, Some(LookupConfig::default()), std::slice::from_ref(p), 120).0,
                    );
                }
                (a, b)
            };
            for (k, (x, y)) in plain.iter().zip(&with).enumerate() {
                assert_eq!(
                    x.tokens, y.tokens,
                    "{name}, prompt {k}, batch {batch}: {:?} vs {:?}",
                    x.text, y.text
                );
                assert_eq!(x.finish, y.finish);
                assert_eq!(x.timings.draft_tokens, 0);
            }
            // the copying prompt: drafts were sent and kept. (How many depends on what a row
            // more costs on this machine, measured as it runs: the speed-up is for the
            // benchmark, scripts/bench-lookup.sh, to show.)
            let copy = &with[0];
            assert!(
                copy.timings.draft_accepted > 0
                    && copy.timings.draft_accepted * 2 >= copy.timings.draft_tokens,
                "{name}: {} of {} tokens from drafts ({} drafted)",
                copy.timings.draft_accepted,
                copy.tokens.len(),
                copy.timings.draft_tokens
            );
        }
    }
}

#[test]
fn drafts_respect_max_tokens_stop_strings_and_sampling() {
    let e = engine(SMOLLM2);
    let ps = prompts();
    let mut reqs = Vec::new();
    // max_tokens inside a drafted run
    reqs.push(request(&e, &ps[0], 7));
    // a stop string that a draft runs across
    let mut r = request(&e, &ps[0], 100);
    r.options.stop = vec!["Springfield".into()];
    reqs.push(r);
    // sampled
    let mut r = request(&e, &ps[0], 60);
    r.options.temperature = Some(0.7);
    r.options.seed = Some(3);
    reqs.push(r);
    let plain: Vec<_> = {
        let e = engine(SMOLLM2);
        let s =
            Scheduler::start(e, SchedulerConfig { lookup: None, ..Default::default() }).unwrap();
        let hs: Vec<_> = reqs.iter().map(|r| s.submit(r.clone()).unwrap()).collect();
        hs.into_iter().map(wait).collect()
    };
    let s = Scheduler::start(e, SchedulerConfig::default()).unwrap();
    let hs: Vec<_> = reqs.iter().map(|r| s.submit(r.clone()).unwrap()).collect();
    let with: Vec<_> = hs.into_iter().map(wait).collect();
    for (x, y) in plain.iter().zip(&with) {
        assert_eq!((&x.tokens, &x.text, x.finish), (&y.tokens, &y.text, y.finish));
    }
    assert_eq!(with[0].tokens.len(), 7);
    assert!(!with[1].text.contains("Springfield"));
    // sampled: drafts taken, and the answer is the seed's every time
    let sampled = &with[2];
    assert!(
        sampled.timings.draft_tokens > 0 && sampled.timings.draft_accepted > 0,
        "{:?}",
        sampled.timings
    );
    let again = wait(s.submit(reqs[2].clone()).unwrap());
    assert_eq!(again.tokens, sampled.tokens);
}
