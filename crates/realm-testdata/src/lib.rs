//! Test-only helpers: the real models fetched by `scripts/fetch-models.sh` and the committed
//! fixtures. A missing model fails the test with a message saying how to fetch it: tests that
//! need real data never pass silently without it.
#![allow(clippy::panic)]

use std::path::PathBuf;

/// SmolLM2-135M-Instruct Q4_1: llama architecture, GPT-2 BPE tokenizer (pre `smollm`).
pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Gemma 3 270M Q4_K_M: gemma3 architecture, SPM tokenizer.
pub const GEMMA3: &str = "gemma-3-270m-Q4_K_M.gguf";
/// Both real models.
pub const MODELS: [&str; 2] = [SMOLLM2, GEMMA3];

/// The model cache: `$REALM_CACHE_DIR/models`, default `~/.cache/realm/models`.
pub fn models_dir() -> PathBuf {
    let cache = std::env::var_os("REALM_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache").join("realm")
    });
    cache.join("models")
}

/// Path of a real model; panics (fails the test) if it has not been fetched.
pub fn model(name: &str) -> PathBuf {
    let p = models_dir().join(name);
    if !p.is_file() {
        panic!("model {} is missing: run scripts/fetch-models.sh first", p.display());
    }
    p
}

/// Path of a committed fixture under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel)
}
