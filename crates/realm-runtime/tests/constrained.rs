//! Constrained decoding on the real models, CPU: answers under a JSON schema, a regex and a
//! grammar match it (checked here by parsing, and independently by Python's `jsonschema` in the
//! server's tests); in the serving engine, a batch of requests with different schemas gives
//! each its own valid answer, identical to the same request alone in a `Session`; an invalid
//! schema is refused at submit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use realm_runtime::{
    BackendKind, ChatMessage, ConstraintSpec, DeviceOptions, Engine, EngineOptions, FinishReason,
    GenerateRequest, KvDtype, RequestOptions, RuntimeError, Scheduler, SchedulerConfig, SeqEvent,
    Session,
};
use realm_testdata::{GEMMA3, SMOLLM2, model};
use serde_json::{Value, json};

fn engine(name: &str) -> Engine {
    let device = DeviceOptions {
        backend: BackendKind::Cpu,
        threads: 2,
        profile: false,
        ..Default::default()
    };
    Engine::load_path(model(name), EngineOptions { device }).unwrap()
}

fn chat(e: &Engine, user: &str) -> Vec<u32> {
    let text = e.chat_template().render(&[ChatMessage::user(user)], true).unwrap();
    e.tokenizer().tokenize(&text, true, true)
}

fn request(
    e: &Engine,
    user: &str,
    spec: ConstraintSpec,
    greedy: bool,
    seed: u64,
) -> GenerateRequest {
    let options = RequestOptions {
        max_tokens: Some(200),
        temperature: Some(if greedy { 0.0 } else { 0.8 }),
        seed: Some(seed),
        constraint: Some(spec),
        ..Default::default()
    };
    GenerateRequest::new(chat(e, user), options)
}

fn alone(e: &Engine, req: &GenerateRequest) -> (String, FinishReason, Vec<u32>) {
    let mut s = Session::new(e, 1024, KvDtype::F16).unwrap();
    let out = s.generate(req, None, |_| {}).unwrap();
    (out.text, out.finish, out.tokens)
}

fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Describe a person as JSON.",
            json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 40},
                   "age": {"type": "integer", "minimum": 0, "maximum": 150}},
                   "required": ["name", "age"], "additionalProperties": false}),
        ),
        (
            "List some fruits as JSON.",
            json!({"type": "object", "properties": {"fruits": {"type": "array", "items": {"type": "string", "maxLength": 30},
                   "minItems": 2, "maxItems": 3}}, "required": ["fruits"], "additionalProperties": false}),
        ),
        (
            "Is the sky blue? Answer as JSON.",
            json!({"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "confidence": {"type": "integer", "minimum": 0, "maximum": 100}},
                   "required": ["answer"], "additionalProperties": false}),
        ),
        (
            "Give a date as JSON.",
            json!({"type": "object", "properties": {"when": {"type": "string", "format": "date"}},
                   "required": ["when"], "additionalProperties": false}),
        ),
    ]
}

/// The checks that need no JSON-schema library: parses, the required keys, no others, the
/// bounds. (Bounded numbers and strings: under a schema without bounds a small model may write
/// digits until `max_tokens`, which is valid but not an answer.)
fn check(schema: &Value, text: &str) {
    let v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("not an object: {text}"));
    for k in schema["required"].as_array().unwrap() {
        assert!(obj.contains_key(k.as_str().unwrap()), "{k} missing: {text}");
    }
    let props = schema["properties"].as_object().unwrap();
    assert!(obj.keys().all(|k| props.contains_key(k)), "an extra key: {text}");
    if let Some(items) = obj.get("fruits").and_then(Value::as_array) {
        assert!((2..=3).contains(&items.len()), "{text}");
    }
    if let Some(age) = obj.get("age") {
        assert!(age.as_u64().is_some_and(|a| a <= 150), "{text}");
    }
    if let Some(a) = obj.get("answer") {
        assert!(a == "yes" || a == "no", "{text}");
    }
}

#[test]
fn session_answers_match_their_schema_on_both_models() {
    for name in [SMOLLM2, GEMMA3] {
        let e = engine(name);
        for (k, (user, schema)) in schemas().into_iter().enumerate() {
            for greedy in [true, false] {
                let req =
                    request(&e, user, ConstraintSpec::JsonSchema(schema.clone()), greedy, k as u64);
                let (text, finish, _) = alone(&e, &req);
                assert_eq!(finish, FinishReason::Eog, "{name}: {text}");
                check(&schema, &text);
            }
        }
    }
}

#[test]
fn regex_and_grammar_answers_match() {
    let e = engine(SMOLLM2);
    let req =
        request(&e, "What is 12 times 12?", ConstraintSpec::Regex("[0-9]{1,4}".into()), true, 0);
    let (text, _, _) = alone(&e, &req);
    assert!(
        !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| b.is_ascii_digit()),
        "{text:?}"
    );

    let gbnf = "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= [0-9]{1,3} | \"(\" expr \")\"\n";
    let req =
        request(&e, "Write an arithmetic expression.", ConstraintSpec::Gbnf(gbnf.into()), false, 3);
    let (text, _, _) = alone(&e, &req);
    let ok = text.chars().all(|c| c.is_ascii_digit() || "+-()".contains(c));
    assert!(ok && !text.is_empty(), "{text:?}");
    let depth = text.chars().try_fold(0i32, |d, c| match c {
        '(' => Some(d + 1),
        ')' if d > 0 => Some(d - 1),
        ')' => None,
        _ => Some(d),
    });
    // max_tokens may cut it, but never with a ')' too many
    assert!(depth.is_some(), "{text:?}");
}

/// Runs `reqs` at once on a scheduler: each answer matches its schema and is the same as the
/// request alone in a `Session`. Returns the scheduler (for its stats).
fn batch_matches_alone(e: Engine, reqs: &[(Value, GenerateRequest)]) -> Scheduler {
    let expected: Vec<_> = reqs.iter().map(|(_, r)| alone(&e, r)).collect();
    let s = Scheduler::start(e, SchedulerConfig::default()).unwrap();
    let handles: Vec<_> = reqs.iter().map(|(_, r)| s.submit(r.clone()).unwrap()).collect();
    for (k, h) in handles.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(300);
        let done = loop {
            match h.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap() {
                SeqEvent::Done(c) => break c,
                SeqEvent::Failed(f) => panic!("request {k} failed: {f}"),
                _ => {}
            }
        };
        check(&reqs[k].0, &done.text);
        assert_eq!((done.text, done.finish, done.tokens), expected[k], "request {k}");
    }
    s
}

#[test]
fn a_batch_with_different_schemas_gives_each_its_own_answer() {
    let e = engine(SMOLLM2);
    let reqs: Vec<(Value, GenerateRequest)> = schemas()
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
        .map(|(i, (user, schema))| {
            let req =
                request(&e, user, ConstraintSpec::JsonSchema(schema.clone()), i % 2 == 0, i as u64);
            (schema, req)
        })
        .collect();
    let s = batch_matches_alone(e, &reqs);
    let st = s.stats();
    assert!(st.masks > 0 && st.mask_seconds > 0.0, "{st:?}");
    // An invalid schema is refused at submit, naming the problem.
    let bad = GenerateRequest::new(
        vec![1, 2, 3],
        RequestOptions {
            constraint: Some(ConstraintSpec::JsonSchema(json!({"type": "nope"}))),
            ..Default::default()
        },
    );
    match s.submit(bad) {
        Err(e @ RuntimeError::Grammar(_)) => assert_eq!(e.code(), "invalid-argument"),
        other => panic!("{:?}", other.map(|h| h.id())),
    }
}

/// A batch of greedy requests under constraints reads no logits with its steps (the argmax
/// alone, checked against each constraint); a row whose argmax is refused is read after the
/// step. The answers are the same as alone, where every row's logits are read.
#[test]
fn a_greedy_constrained_batch_reads_only_refused_rows() {
    let e = engine(SMOLLM2);
    let reqs: Vec<(Value, GenerateRequest)> = schemas()
        .into_iter()
        .enumerate()
        .map(|(i, (user, schema))| {
            (schema.clone(), request(&e, user, ConstraintSpec::JsonSchema(schema), true, i as u64))
        })
        .collect();
    let s = batch_matches_alone(e, &reqs);
    let st = s.stats();
    // Greedy picks compute no masks beside the step; some best tokens were refused.
    assert!(st.masks == 0 && st.refused > 0, "{st:?}");
}
