//! `realm tokenize --json` equals llama.cpp's ids (tests/fixtures/oracle) on every prompt and
//! tokenize-only case of both models, with and without `--special`; `realm detokenize` inverts it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use realm_testdata::{GEMMA3, SMOLLM2, fixture, model};
use serde_json::Value;

fn realm(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_realm")).args(args).output().unwrap();
    assert!(out.status.success(), "realm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

fn check_model(model_name: &str, oracle: &str) {
    let m = model(model_name);
    let m = m.to_str().unwrap();
    let o: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(oracle)).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("realm-tok-{}-{model_name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases =
        o["prompts"].as_array().unwrap().iter().chain(o["tokenize_only"].as_array().unwrap());
    let mut failures = Vec::new();
    let mut n = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let file = dir.join("prompt.txt");
        std::fs::write(&file, text).unwrap();
        let file = file.to_str().unwrap();
        for (flag, key) in
            [(None, "tokens_parse_special_false"), (Some("--special"), "tokens_parse_special_true")]
        {
            let mut args = vec!["tokenize", m, "--file", file, "--json"];
            args.extend(flag);
            let got: Vec<u64> = serde_json::from_str(realm(&args).trim()).unwrap();
            let want = ids(&case[key]);
            n += 1;
            if got != want {
                failures.push(format!("{} {key}: got {got:?}, want {want:?}", case["name"]));
            }
        }
    }
    let _ = std::fs::remove_dir_all(Path::new(&dir));
    assert!(n >= 50, "only {n} cases");
    assert!(
        failures.is_empty(),
        "{model_name}: {} of {n} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_tokenize_matches_llama_cpp() {
    check_model(SMOLLM2, "oracle/oracle_smollm2.json");
}

#[test]
fn gemma3_tokenize_matches_llama_cpp() {
    check_model(GEMMA3, "oracle/oracle_gemma3.json");
}

#[test]
fn detokenize_inverts_tokenize() {
    let m = model(SMOLLM2);
    let m = m.to_str().unwrap();
    let text = "Hello, wörld! 🚀 <|im_start|>";
    let ids = realm(&["tokenize", m, "--text", text, "--json"]);
    assert_eq!(realm(&["detokenize", m, "--ids", ids.trim()]).trim_end_matches('\n'), text);
}

#[test]
fn cli_errors_are_one_line() {
    let m = model(SMOLLM2);
    // Never written: both synth calls fail before creating the output.
    let out_path =
        std::env::temp_dir().join(format!("realm-never-written-{}.gguf", std::process::id()));
    let out_path = out_path.to_str().unwrap();
    for args in [
        vec!["detokenize", m.to_str().unwrap(), "--ids", "1, 99999999"],
        vec!["detokenize", m.to_str().unwrap(), "--ids", "abc"],
        vec!["tokenize", m.to_str().unwrap(), "--file", "/nonexistent/file.txt"],
        vec![
            "synth",
            "--shape",
            "nope",
            "--quant",
            "q4_0",
            "--vocab-from",
            m.to_str().unwrap(),
            "--out",
            out_path,
        ],
        vec![
            "synth",
            "--shape",
            "llama-7b",
            "--quant",
            "iq2_xs",
            "--vocab-from",
            m.to_str().unwrap(),
            "--out",
            out_path,
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_realm")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: ") && !err.contains("internal error"), "{args:?}: {err}");
        assert!(!std::path::Path::new(out_path).exists(), "{args:?} wrote its output");
    }
}
