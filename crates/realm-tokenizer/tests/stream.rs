//! Streaming detokenization on the real models: characters split across byte tokens come out
//! whole, and the stream always adds up to `detokenize`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::MappedFile;
use realm_tokenizer::{StreamDecoder, Tokenizer};

fn load(model: &str) -> Tokenizer {
    let map = MappedFile::open(realm_testdata::model(model)).expect("open model");
    Tokenizer::from_gguf(&map.gguf().expect("parse")).expect("tokenizer")
}

fn stream(t: &Tokenizer, ids: &[u32], special: bool) -> (Vec<String>, String) {
    let mut dec = StreamDecoder::new(special);
    let parts: Vec<String> = ids.iter().map(|&id| dec.push(t, id)).collect();
    let tail = dec.finish();
    (parts, tail)
}

#[test]
fn byte_tokens_never_yield_half_a_character() {
    for model in realm_testdata::MODELS {
        let t = load(model);
        // Hieroglyph and a rare Cyrillic letter fall back to bytes in Gemma; BPE splits all of
        // these into byte-level pieces that are not characters on their own.
        let text = "x 𓀀ꙮ🫠 y\u{10FFFD}";
        let ids = t.tokenize(text, false, false);
        let (parts, tail) = stream(&t, &ids, false);
        assert!(
            ids.len() > parts.iter().filter(|p| !p.is_empty()).count(),
            "{model}: some pushes wait for more bytes"
        );
        for p in &parts {
            assert!(!p.contains('\u{FFFD}'), "{model}: partial character emitted: {parts:?}");
        }
        assert_eq!(parts.concat() + &tail, text, "{model}");
    }
}

#[test]
fn stream_equals_detokenize_for_arbitrary_ids() {
    for model in realm_testdata::MODELS {
        let t = load(model);
        let n = t.n_vocab() as u64;
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let len = 1 + (next() % 40) as usize;
            // Mix random ids with the low ids (byte and control tokens live there).
            let ids: Vec<u32> = (0..len)
                .map(|_| if next() % 3 == 0 { (next() % 600) as u32 } else { (next() % n) as u32 })
                .collect();
            for special in [false, true] {
                let (parts, tail) = stream(&t, &ids, special);
                assert_eq!(
                    parts.concat() + &tail,
                    t.detokenize(&ids, special),
                    "{model} round {round} {ids:?}"
                );
            }
        }
    }
}

/// Not a timed test: 100 KB of mixed text and a 100 KB single word go through both models
/// (BPE and SPM merge with priority queues, so neither is quadratic) and come back intact.
#[test]
fn hundred_kilobytes_round_trip() {
    let base = "The quick brown fox, naïve café — 日本語のテキスト 1234567 🚀 fn(x) {}\n\n   ";
    let mixed = base.repeat(100_000 / base.len() + 1);
    let word = "ab".repeat(50_000);
    for model in realm_testdata::MODELS {
        let t = load(model);
        for text in [&mixed, &word] {
            let ids = t.tokenize(text, false, false);
            assert!(ids.len() < text.len(), "{model}");
            assert_eq!(&t.detokenize(&ids, false), text, "{model}");
        }
    }
}
