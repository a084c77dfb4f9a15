//! The crate dependency direction of ARCHITECTURE.md, checked by machine over `cargo metadata`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

/// Which workspace crates each workspace crate may depend on (normal and build dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("realm-quant", &[]),
    ("realm-gguf", &["realm-quant"]),
    ("realm-tokenizer", &["realm-gguf", "realm-quant"]),
    ("realm-cli", &["realm-quant", "realm-gguf", "realm-tokenizer", "realm-runtime"]),
    (
        "realm-runtime",
        &[
            "realm-core",
            "realm-gguf",
            "realm-model",
            "realm-tokenizer",
            "realm-sampling",
            "realm-grammar",
            "realm-backend-cpu",
            "realm-backend-wgpu",
            "realm-quant",
        ],
    ),
    ("realm-testdata", &[]),
    ("realm-sampling", &[]),
    // Structured output: llguidance over the tokenizer's vocabulary.
    ("realm-grammar", &["realm-tokenizer", "realm-gguf", "realm-quant"]),
    ("realm-core", &["realm-quant"]),
    ("realm-backend-cpu", &["realm-core", "realm-quant"]),
    ("realm-conformance", &["realm-core", "realm-quant", "realm-backend-cpu"]),
    ("realm-model", &["realm-core", "realm-gguf", "realm-quant"]),
    ("realm-shaders", &[]),
    ("realm-backend-wgpu", &["realm-core", "realm-quant", "realm-shaders"]),
    ("realm-wasm", &["realm-runtime"]),
    // The wire types depend on nothing of Realm; the server only on the engine and them.
    ("realm-protocol", &[]),
    ("realm-server", &["realm-runtime", "realm-protocol"]),
    ("realm-client", &["realm-protocol"]),
];

#[test]
fn crate_dependencies_point_one_way() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let packages = meta["packages"].as_array().unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let Some(ok) = allowed.get(name) else {
            problems.push(format!("{name} is not in the dependency table of this test"));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let dev = d["kind"].as_str() == Some("dev");
            if names.contains(&dep) && !dev && !ok.contains(&dep) {
                problems.push(format!("{name} must not depend on {dep}"));
            }
            if dep == "realm-testdata" && !dev {
                problems.push(format!("{name} uses realm-testdata outside tests"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
