//! llama.cpp's own output on the two real models (tests/fixtures/oracle/, see SOURCE.md there):
//! every prompt and tokenizer case, both `parse_special` settings, pieces and round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::MappedFile;
use realm_tokenizer::{ChatMessage, ChatTemplate, StreamDecoder, Tokenizer};
use serde_json::Value;

fn load(model: &str) -> (Tokenizer, ChatTemplate) {
    let map = MappedFile::open(realm_testdata::model(model)).expect("open model");
    let g = map.gguf().expect("parse gguf");
    let t = Tokenizer::from_gguf(&g).expect("tokenizer");
    let c = ChatTemplate::from_gguf(&g, &t).expect("chat template");
    (t, c)
}

fn oracle(file: &str) -> Value {
    let path = realm_testdata::fixture(&format!("oracle/{file}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

fn pieces(t: &Tokenizer, tokens: &[u32]) -> Vec<String> {
    tokens
        .iter()
        .map(|&id| String::from_utf8_lossy(&t.token_to_piece(id, true)).into_owned())
        .collect()
}

/// Every case of one oracle file; returns the failures instead of stopping at the first.
fn check_file(model: &str, file: &str) {
    let (t, _) = load(model);
    let o = oracle(file);
    let mut failures = Vec::new();
    let mut cases = 0;
    let entries =
        o["prompts"].as_array().unwrap().iter().chain(o["tokenize_only"].as_array().unwrap());
    for case in entries {
        let name = case["name"].as_str().unwrap();
        let text = case["text"].as_str().unwrap();
        for (parse, key, pieces_key) in [
            (false, "tokens_parse_special_false", "pieces_parse_special_false"),
            (true, "tokens_parse_special_true", "pieces_parse_special_true"),
        ] {
            cases += 1;
            let want = ids(&case[key]);
            let got = t.tokenize(text, true, parse);
            if got != want {
                failures.push(format!(
                    "{name} parse_special={parse}\n  want {want:?}\n  got  {got:?}\n  want pieces {:?}\n  got pieces  {:?}",
                    pieces(&t, &want),
                    pieces(&t, &got)
                ));
                continue;
            }
            if let Some(p) = case.get(pieces_key) {
                assert_eq!(pieces(&t, &want), strs(p), "{name}: pieces ({key})");
            }
        }
        if let Some(prompt_tokens) = case.get("prompt_tokens") {
            let toks = ids(prompt_tokens);
            let parse = case["parse_special"].as_bool().unwrap();
            assert_eq!(t.tokenize(text, true, parse), toks, "{name}: prompt_tokens");
            assert_eq!(pieces(&t, &toks), strs(&case["prompt_pieces"]), "{name}: prompt_pieces");
            // The oracle's flag: llama.cpp's detokenize(prompt_tokens, special = true) == text.
            let flag = case["detokenized_roundtrip_equal"].as_bool().unwrap();
            assert_eq!(t.detokenize(&toks, true) == text, flag, "{name}: roundtrip flag");
        }
        // Without special rendering, the text comes back exactly (no model here cleans spaces).
        let toks = t.tokenize(text, true, false);
        assert_eq!(t.detokenize(&toks, false), text, "{name}: detokenize round trip");
        let mut dec = StreamDecoder::new(false);
        let mut streamed = String::new();
        for &id in &toks {
            streamed += &dec.push(&t, id);
        }
        streamed += &dec.finish();
        assert_eq!(streamed, text, "{name}: stream round trip");
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} tokenizations differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cases, 52, "expected 26 cases x 2 settings");
}

#[test]
fn smollm2_matches_llama_cpp() {
    check_file(realm_testdata::SMOLLM2, "oracle_smollm2.json");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check_file(realm_testdata::GEMMA3, "oracle_gemma3.json");
}

#[test]
fn metadata_matches_llama_cpp() {
    for (model, file) in [
        (realm_testdata::SMOLLM2, "oracle_smollm2.json"),
        (realm_testdata::GEMMA3, "oracle_gemma3.json"),
    ] {
        let (t, _) = load(model);
        let m = &oracle(file)["model"];
        assert_eq!(t.n_vocab() as u64, m["n_vocab"].as_u64().unwrap(), "{model}");
        assert_eq!(t.bos().map(u64::from), m["bos_id"].as_u64(), "{model}");
        assert_eq!(t.eos().map(u64::from), m["eos_id"].as_u64(), "{model}");
        assert_eq!(t.add_bos(), m["vocab_get_add_bos"].as_bool().unwrap(), "{model}");
        assert_eq!(t.add_eos(), m["vocab_get_add_eos"].as_bool().unwrap(), "{model}");
        let eog: Vec<u32> = m["eog_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap() as u32)
            .collect();
        assert_eq!(t.eog_tokens().collect::<Vec<_>>(), eog, "{model}");
        for e in m["eog_tokens"].as_array().unwrap() {
            let id = e["id"].as_u64().unwrap() as u32;
            assert!(t.is_eog(id));
            assert_eq!(
                String::from_utf8_lossy(&t.token_to_piece(id, true)),
                e["piece"].as_str().unwrap()
            );
        }
    }
}

/// The oracle's chat prompt (prompt 5) is what each model's template produces.
#[test]
fn chat_templates_reproduce_the_oracle_prompts() {
    let question = "What is the capital of France? Answer in one sentence.";

    let (_, smol) = load(realm_testdata::SMOLLM2);
    let want = oracle("oracle_smollm2.json")["prompts"][5]["text"].as_str().unwrap().to_owned();
    assert!(smol.source().is_some(), "SmolLM2 embeds a Jinja template");
    let system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
    let msgs = [ChatMessage::system(system), ChatMessage::user(question)];
    assert_eq!(smol.render(&msgs, true).unwrap(), want);
    // The template inserts that same system prompt when none is given.
    assert_eq!(smol.render(&[ChatMessage::user(question)], true).unwrap(), want);
    let jinja = smol.render_jinja(smol.source().unwrap(), &msgs, true).unwrap();
    assert_eq!(jinja, want, "the Jinja path itself, not the fallback");

    let (_, gemma) = load(realm_testdata::GEMMA3);
    let want = oracle("oracle_gemma3.json")["prompts"][5]["text"].as_str().unwrap().to_owned();
    assert!(gemma.source().is_none(), "this Gemma GGUF has no tokenizer.chat_template");
    assert_eq!(gemma.builtin(), Some(realm_tokenizer::BuiltinTemplate::Gemma));
    assert_eq!(gemma.render(&[ChatMessage::user(question)], true).unwrap(), want);
}

#[test]
fn special_literals_render_only_with_special() {
    let (t, _) = load(realm_testdata::SMOLLM2);
    let toks = t.tokenize("<|im_start|>user\nhi<|im_end|>", false, true);
    assert_eq!(toks.first(), Some(&1));
    assert_eq!(t.detokenize(&toks, true), "<|im_start|>user\nhi<|im_end|>");
    assert_eq!(t.detokenize(&toks, false), "user\nhi");
}
