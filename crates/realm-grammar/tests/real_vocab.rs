//! realm-grammar over the real models' vocabularies: what a constraint allows, token by token,
//! for answers that match and answers that do not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use realm_gguf::MappedFile;
use realm_grammar::{GrammarError, Grammars, Spec};
use realm_tokenizer::Tokenizer;
use serde_json::json;

fn grammars(model: &str) -> (Arc<Tokenizer>, Grammars) {
    let map = MappedFile::open(realm_testdata::model(model)).expect("open model");
    let tok = Arc::new(Tokenizer::from_gguf(&map.gguf().expect("gguf")).expect("tokenizer"));
    let g = Grammars::new(tok.clone()).expect("grammars");
    (tok, g)
}

const MODELS: [&str; 2] = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-Q4_K_M.gguf"];

/// Feeds `text`'s tokens through a constraint of `spec`; how many were accepted, and whether
/// the end-of-generation token is allowed after them.
fn feed(tok: &Tokenizer, g: &Grammars, spec: &Spec, text: &str) -> (usize, usize, bool) {
    let ids = tok.tokenize(text, false, false);
    let mut c = g.compile(spec).unwrap();
    let mut logits = vec![0f32; g.n_vocab()];
    for (k, &id) in ids.iter().enumerate() {
        // Checking tokens one by one (before the mask exists) agrees with the mask.
        let step = (g.n_vocab() / 61).max(1);
        let sample: Vec<u32> =
            (0..g.n_vocab() as u32).step_by(step).chain([id]).filter(|&t| t != g.eos()).collect();
        let checked: Vec<bool> = sample.iter().map(|&t| c.check(t).unwrap()).collect();
        let masked: Vec<bool> = sample.iter().map(|&t| c.allows(t).unwrap()).collect();
        assert_eq!(checked, masked, "at token {k} of {text:?}");
        if !c.allows(id).unwrap() {
            return (k, ids.len(), false);
        }
        // apply() agrees with allows()
        logits.fill(0.0);
        c.apply(&mut logits).unwrap();
        assert!(logits[id as usize].is_finite());
        c.commit(id).unwrap();
    }
    let eos_ok = c.allows(g.eos()).unwrap();
    (ids.len(), ids.len(), eos_ok)
}

#[test]
fn json_schema_accepts_valid_answers_and_stops_invalid_ones() {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2}
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": false
    });
    let spec = Spec::JsonSchema(schema);
    for m in MODELS {
        let (tok, g) = grammars(m);
        let (ok, n, eos) =
            feed(&tok, &g, &spec, r#"{"name": "Ada", "age": 36, "tags": ["a", "b"]}"#);
        assert_eq!((ok, eos), (n, true), "{m}: a valid answer");
        // wrong type, extra key, too many items, not JSON: stopped before the end
        for bad in [
            r#"{"name": 5"#,
            r#"{"name": "A", "age": 1, "tags": ["a"], "x": 1}"#,
            r#"{"name": "A", "age": 1, "tags": ["a", "b", "a"]}"#,
            "Sure! Here is",
        ] {
            let (ok, n, _) = feed(&tok, &g, &spec, bad);
            assert!(ok < n, "{m}: {bad} was accepted");
        }
        // incomplete: no end-of-generation yet
        let (ok, n, eos) = feed(&tok, &g, &spec, r#"{"name": "Ada", "age": 36"#);
        assert_eq!((ok, eos), (n, false), "{m}");
    }
}

#[test]
fn json_object_regex_lark_and_gbnf() {
    for m in MODELS {
        let (tok, g) = grammars(m);
        let (ok, n, eos) = feed(&tok, &g, &Spec::JsonObject, r#"{"a": [1, 2, {"b": null}]}"#);
        assert_eq!((ok, eos), (n, true), "{m}");
        assert!(feed(&tok, &g, &Spec::JsonObject, "[1]").0 == 0, "{m}: an array is not an object");

        let rx = Spec::Regex(r"\d{3}-\d{4}".into());
        assert!(feed(&tok, &g, &rx, "555-1234").2);
        let (ok, n, _) = feed(&tok, &g, &rx, "555-12a4");
        assert!(ok < n);

        let arith =
            "start: expr\nexpr: term ((\"+\" | \"-\") term)*\nterm: /[0-9]+/ | \"(\" expr \")\"\n";
        let (ok, n, eos) = feed(&tok, &g, &Spec::Lark(arith.into()), "(1+2)-30");
        assert_eq!((ok, eos), (n, true), "{m}");
        let gbnf = "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\nterm ::= [0-9]+ | \"(\" expr \")\"\n";
        let (ok, n, eos) = feed(&tok, &g, &Spec::Gbnf(gbnf.into()), "(1+2)-30");
        assert_eq!((ok, eos), (n, true), "{m}");
        let (ok, n, _) = feed(&tok, &g, &Spec::Gbnf(gbnf.into()), "(1+)");
        assert!(ok < n);
    }
}

#[test]
fn a_complete_answer_allows_only_the_end() {
    let (tok, g) = grammars(MODELS[0]);
    let mut c = g.compile(&Spec::Regex("yes|no".into())).unwrap();
    for id in tok.tokenize("yes", false, false) {
        c.commit(id).unwrap();
    }
    assert!(c.is_complete());
    let mut logits = vec![0f32; g.n_vocab()];
    assert_eq!(c.apply(&mut logits).unwrap(), 1);
    assert!(logits[g.eos() as usize].is_finite());
    c.commit(g.eos()).unwrap();
}

#[test]
fn invalid_specs_are_errors_that_say_why() {
    let (_, g) = grammars(MODELS[0]);
    for spec in [
        Spec::JsonSchema(json!({"type": "no-such-type"})),
        Spec::JsonSchema(json!([1, 2])),
        Spec::JsonSchema(json!({"type": "string", "minLength": 5, "maxLength": 2})),
        Spec::Regex("(unclosed".into()),
        Spec::Lark("start: undefined_rule".into()),
        Spec::Gbnf("root ::= (".into()),
    ] {
        match g.compile(&spec) {
            Err(GrammarError::Invalid { kind, message }) => {
                assert_eq!(kind, spec.kind());
                assert!(!message.is_empty());
            }
            other => panic!("{spec:?}: {other:?}"),
        }
    }
}
