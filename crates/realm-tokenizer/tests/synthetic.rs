//! Small hand-made vocabularies written as GGUF metadata: merge order, defaults for absent
//! keys, special-token attributes, byte fallback, errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::{Gguf, GgufWriter, OwnedValue, ValueType, keys};
use realm_tokenizer::{StreamDecoder, TokenAttr, Tokenizer, TokenizerError};

/// GPT-2 byte-level encoding of a string (the inverse of what detokenizing undoes).
fn enc(s: &str) -> String {
    let mut table = [0u32; 256];
    let mut n = 0;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        table[b as usize] = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
    }
    s.bytes().map(|b| char::from_u32(table[b as usize]).unwrap()).collect()
}

fn strings(items: &[String]) -> OwnedValue {
    OwnedValue::Array(ValueType::String, items.iter().map(|s| OwnedValue::str(s)).collect())
}

struct Spec {
    model: &'static str,
    pre: Option<&'static str>,
    tokens: Vec<String>,
    types: Vec<i32>,
    scores: Vec<f32>,
    merges: Option<Vec<String>>,
    extra: Vec<(&'static str, OwnedValue)>,
}

impl Spec {
    fn bpe(pre: Option<&'static str>, tokens: &[&str], merges: &[&str]) -> Spec {
        Spec {
            model: "gpt2",
            pre,
            tokens: tokens.iter().map(|t| enc(t)).collect(),
            types: vec![1; tokens.len()],
            scores: Vec::new(),
            merges: Some(
                merges
                    .iter()
                    .map(|m| m.split(' ').map(enc).collect::<Vec<_>>().join(" "))
                    .collect(),
            ),
            extra: Vec::new(),
        }
    }

    /// `<unk>`, `<s>`, `</s>`, 256 byte tokens, then `pieces` (text, score).
    fn spm(pieces: &[(&str, f32)]) -> Spec {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        let mut scores = vec![0.0, 0.0, 0.0];
        for b in 0..256 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
            scores.push(0.0);
        }
        for &(p, s) in pieces {
            tokens.push(p.to_string());
            types.push(1);
            scores.push(s);
        }
        Spec { model: "llama", pre: None, tokens, types, scores, merges: None, extra: Vec::new() }
    }

    fn with(mut self, key: &'static str, v: OwnedValue) -> Spec {
        self.extra.push((key, v));
        self
    }

    fn add_token(&mut self, text: &str, ty: i32) -> u32 {
        self.tokens.push(text.to_string());
        self.types.push(ty);
        if !self.scores.is_empty() {
            self.scores.push(0.0);
        }
        (self.tokens.len() - 1) as u32
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.add_kv(keys::GENERAL_ARCHITECTURE, OwnedValue::str("llama")).unwrap();
        w.add_kv(keys::TOKENIZER_MODEL, OwnedValue::str(self.model)).unwrap();
        if let Some(pre) = self.pre {
            w.add_kv(keys::TOKENIZER_PRE, OwnedValue::str(pre)).unwrap();
        }
        w.add_kv(keys::TOKENIZER_TOKENS, strings(&self.tokens)).unwrap();
        let types = self.types.iter().map(|&t| OwnedValue::I32(t)).collect();
        w.add_kv(keys::TOKENIZER_TOKEN_TYPE, OwnedValue::Array(ValueType::I32, types)).unwrap();
        if !self.scores.is_empty() {
            let s = self.scores.iter().map(|&x| OwnedValue::F32(x)).collect();
            w.add_kv(keys::TOKENIZER_SCORES, OwnedValue::Array(ValueType::F32, s)).unwrap();
        }
        if let Some(m) = &self.merges {
            w.add_kv(keys::TOKENIZER_MERGES, strings(m)).unwrap();
        }
        for (k, v) in &self.extra {
            w.add_kv(k, v.clone()).unwrap();
        }
        w.to_bytes(&[]).unwrap()
    }

    fn build(&self) -> Result<Tokenizer, TokenizerError> {
        let bytes = self.bytes();
        Tokenizer::from_gguf(&Gguf::parse(&bytes).unwrap())
    }
}

fn texts(t: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&i| String::from_utf8_lossy(&t.token_to_piece(i, true)).into_owned()).collect()
}

const ALPHABET: [&str; 7] = ["a", "b", "c", " ", "?", "'", "s"];

#[test]
fn bpe_merges_lowest_rank_first() {
    let mut tokens = ALPHABET.to_vec();
    tokens.extend(["ab", "aa", "ca"]);
    // "a b" outranks "a a": "aab" -> a + ab, not aa + b.
    let t = Spec::bpe(Some("gpt-2"), &tokens, &["a b", "a a"]).build().unwrap();
    assert_eq!(texts(&t, &t.tokenize("aab", false, false)), ["a", "ab"]);
    // Equal ranks do not exist; leftmost wins among pairs of the same merge: "aaa" -> aa + a.
    assert_eq!(texts(&t, &t.tokenize("aaa", false, false)), ["aa", "a"]);
    // Absent pre-tokenizer means "default"; a BPE vocab does not add BOS by default.
    let t = Spec::bpe(None, &tokens, &["a b"]).build().unwrap();
    assert!(!t.add_bos());
    assert_eq!(t.bos(), None, "default BOS id 11 is out of this vocab's range");
}

#[test]
fn repeated_merges_keep_their_first_rank_and_empty_tokens_get_a_name() {
    let mut tokens = ALPHABET.to_vec();
    tokens.extend(["ab", "aa", ""]);
    // The second "a a" (rank 2) is ignored: "a a" keeps rank 0 and beats "a b".
    let t = Spec::bpe(Some("gpt-2"), &tokens, &["a a", "a b", "a a"]).build().unwrap();
    assert_eq!(texts(&t, &t.tokenize("aab", false, false)), ["aa", "b"]);
    assert_eq!(t.token_text(9), Some(&b"[EMPTY_9]"[..]));
    assert_eq!(t.token_id("[EMPTY_9]"), Some(9));
    assert_eq!((t.token_text(10), t.token_score(10), t.token_score(9)), (None, None, Some(0.0)));
}

#[test]
fn llama3_ignores_merges_for_whole_words() {
    let mut tokens = ALPHABET.to_vec();
    tokens.push("abc");
    let spec =
        Spec::bpe(Some("llama-bpe"), &tokens, &[]).with(keys::TOKENIZER_BOS_ID, OwnedValue::U32(0));
    let t = spec.build().unwrap();
    assert!(t.add_bos(), "llama3 pre-tokenizers add BOS");
    assert_eq!(texts(&t, &t.tokenize("abc", false, false)), ["abc"]);
    let t = Spec::bpe(Some("gpt-2"), &tokens, &[]).build().unwrap();
    assert_eq!(texts(&t, &t.tokenize("abc", false, false)), ["a", "b", "c"]);
}

#[test]
fn bpe_drops_characters_missing_from_the_vocab() {
    let t = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]).build().unwrap();
    // "é" encodes to two code points that are not tokens, and no single byte of them is either.
    assert_eq!(texts(&t, &t.tokenize("aéb", false, false)), ["a", "b"]);
}

#[test]
fn vocab_errors_are_typed() {
    let spec = Spec::bpe(Some("definitely-not-a-pre"), &ALPHABET, &[]);
    assert!(matches!(spec.build(), Err(TokenizerError::UnknownPreTokenizer { .. })));
    let mut spec = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]);
    spec.merges = None;
    assert!(
        matches!(spec.build(), Err(TokenizerError::MissingKey { key }) if key == keys::TOKENIZER_MERGES)
    );
    let mut spec = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]);
    spec.model = "bert";
    assert!(matches!(spec.build(), Err(TokenizerError::UnsupportedModel { .. })));
    spec.model = "nope";
    assert!(matches!(spec.build(), Err(TokenizerError::UnknownModel { .. })));
    // chatglm clears the default BOS, so asking for BOS without an id fails like llama.cpp.
    let spec = Spec::bpe(Some("chatglm-bpe"), &ALPHABET, &[])
        .with(keys::TOKENIZER_ADD_BOS, OwnedValue::Bool(true));
    assert!(matches!(spec.build(), Err(TokenizerError::MissingSpecialToken { .. })));
    let mut spec = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]);
    spec.tokens.push(enc("a"));
    spec.types.push(1);
    assert!(matches!(spec.build(), Err(TokenizerError::DuplicateToken { first: 0, .. })));
}

#[test]
fn eog_and_control_detection_by_text() {
    let mut spec = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]);
    let eot = spec.add_token("<|eot_id|>", 1); // NORMAL in the file
    let user = spec.add_token("<|user|>", 4);
    let fim = spec.add_token("<|fim_pad|>", 3);
    let t = spec.build().unwrap();
    assert_eq!(t.eot(), Some(eot));
    assert!(t.token_attr(eot).has(TokenAttr::CONTROL), "promoted to control");
    assert!(t.is_eog(eot) && t.is_eog(fim) && !t.is_eog(user));
    // Control tokens need parse_special; user-defined ones always match.
    assert_eq!(t.tokenize("a<|eot_id|>", false, true).len(), 2);
    assert!(!t.tokenize("a<|eot_id|>", false, false).contains(&eot));
    assert_eq!(t.tokenize("<|user|>a", false, false)[0], user);
    // Control pieces only render with `special`; user-defined always.
    assert!(t.token_to_piece(eot, false).is_empty());
    assert_eq!(t.token_to_piece(user, false), b"<|user|>");
}

#[test]
fn phi3_special_tokens_eat_following_whitespace() {
    let mut spec = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]);
    let user = spec.add_token("<|user|>", 4);
    let with_name = spec.with(keys::GENERAL_NAME, OwnedValue::str("Phi-3 mini"));
    let t = with_name.build().unwrap();
    assert!(t.token_attr(user).has(TokenAttr::RSTRIP));
    assert_eq!(t.tokenize("<|user|>  a", false, false), t.tokenize("<|user|>a", false, false));
}

#[test]
fn longest_special_token_wins() {
    let mut spec = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]);
    let short = spec.add_token("<a>", 4);
    let long = spec.add_token("<a><b>", 4);
    let t = spec.build().unwrap();
    assert_eq!(t.tokenize("<a><b><a>", false, false), [long, short]);
}

fn spm_vocab() -> Spec {
    Spec::spm(&[
        ("\u{2581}", -1.0),
        ("a", -2.0),
        ("b", -2.0),
        ("\u{2581}a", -1.5),
        ("ab", -0.5),
        ("\u{2581}ab", -0.1),
        ("aa", -3.0),
    ])
}

#[test]
fn spm_merges_by_score_with_space_prefix_and_bos() {
    let t = spm_vocab().build().unwrap();
    assert!(t.add_bos() && t.add_space_prefix(), "SPM defaults");
    let ids = t.tokenize("ab ab", true, false);
    assert_eq!(texts(&t, &ids), ["<s>", " ab", " ab"]);
    // The prefix space is removed again when detokenizing, but only from the first token: a
    // leading BOS takes that turn (llama.cpp's `remove_space` is cleared after any token).
    assert_eq!(t.detokenize(&ids[1..], false), "ab ab");
    assert_eq!(t.detokenize(&ids, false), " ab ab");
    // "aaa": equal scores, leftmost pair first.
    assert_eq!(texts(&t, &t.tokenize("aaa", false, false)), [" a", "aa"]);
    let t = spm_vocab().with(keys::TOKENIZER_ADD_PREFIX, OwnedValue::Bool(false)).build().unwrap();
    assert_eq!(texts(&t, &t.tokenize("ab", false, false)), ["ab"]);
}

#[test]
fn spm_byte_fallback_and_streaming_never_splits_a_character() {
    let t = spm_vocab().with(keys::TOKENIZER_ADD_PREFIX, OwnedValue::Bool(false)).build().unwrap();
    let ids = t.tokenize("a😀b", false, false);
    assert_eq!(ids.len(), 6, "a + four byte tokens + b");
    let mut dec = StreamDecoder::new(false);
    let outs: Vec<String> = ids.iter().map(|&id| dec.push(&t, id)).collect();
    assert_eq!(outs, ["a", "", "", "", "😀", "b"]);
    assert_eq!(dec.finish(), "");
    // A truncated sequence is replaced, at the latest when the stream ends.
    let byte = |b: u8| t.token_id(&format!("<0x{b:02X}>")).unwrap();
    let mut dec = StreamDecoder::new(false);
    assert_eq!(dec.push(&t, byte(0xF0)), "");
    assert_eq!(dec.push(&t, byte(0x9F)), "");
    assert_eq!(dec.finish(), "\u{FFFD}");
    // An invalid byte followed by ASCII is replaced as soon as it cannot be completed.
    let mut dec = StreamDecoder::new(false);
    assert_eq!(dec.push(&t, byte(0xC3)), "");
    assert_eq!(dec.push(&t, t.token_id("a").unwrap()), "\u{FFFD}a");
}

/// BPE vocabularies with `clean_spaces` (pre "default" / "gpt-2") clean " ?" and " 's" when
/// detokenizing; the stream must produce the same text.
#[test]
fn clean_spaces_detokenize_and_stream_agree() {
    let t = Spec::bpe(Some("gpt-2"), &ALPHABET, &[]).build().unwrap();
    let id = |s: &str| t.token_id(&enc(s)).unwrap();
    // " ?" loses its space, " ' " collapses to "'", " 's" loses its space, " 'b" keeps it.
    let seq: Vec<u32> = "a ? b ' c 's a 'b".chars().map(|c| id(&c.to_string())).collect();
    assert_eq!(t.detokenize(&seq, false), "a? b'c's a 'b");
    // Pseudo-random sequences over the alphabet: stream == detokenize.
    let mut state = 0x1234_5678_u64;
    for _ in 0..300 {
        let len = 1 + (state % 20) as usize;
        let mut toks = Vec::with_capacity(len);
        for _ in 0..len {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            toks.push(((state >> 33) % ALPHABET.len() as u64) as u32);
        }
        let mut dec = StreamDecoder::new(false);
        let mut out: String = toks.iter().map(|&i| dec.push(&t, i)).collect();
        out += &dec.finish();
        assert_eq!(out, t.detokenize(&toks, false), "tokens {toks:?}");
    }
}
