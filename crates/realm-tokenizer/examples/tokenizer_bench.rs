//! Tokenizer load and throughput on real models (not a test: prints timings).
//!
//! `cargo run --release -p realm-tokenizer --example tokenizer_bench -- MODEL.gguf [MODEL.gguf ...]`
#![allow(clippy::unwrap_used)]

use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let t0 = Instant::now();
        let map = realm_gguf::MappedFile::open(&path).unwrap();
        let g = map.gguf().unwrap();
        let tok = realm_tokenizer::Tokenizer::from_gguf(&g).unwrap();
        println!("{path}: {} tokens, load {:?}", tok.n_vocab(), t0.elapsed());
        let base = "The quick brown fox jumps over the lazy dog. 日本語のテキスト 1234567 <|im_start|> naïve 🚀 fn(x) {}\n";
        let cases = [
            ("100 KB mixed text", base.repeat(100_000 / base.len() + 1)),
            ("100 KB single word", "a".repeat(100_000)),
            ("100 KB of spaces", " ".repeat(100_000) + "x"),
        ];
        for (name, text) in cases {
            let t0 = Instant::now();
            let ids = tok.tokenize(&text, true, true);
            let tokenize = t0.elapsed();
            let t0 = Instant::now();
            let back = tok.detokenize(&ids, false);
            println!(
                "  {name}: {} tokens, tokenize {tokenize:?}, detokenize {:?} ({} bytes)",
                ids.len(),
                t0.elapsed(),
                back.len()
            );
        }
    }
}
