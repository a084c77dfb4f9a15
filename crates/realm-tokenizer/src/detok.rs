//! Token -> text: `token_to_piece`, `detokenize`, and a UTF-8-safe streaming decoder.
//!
//! Follows `llama_vocab::impl::token_to_piece` and `llama_vocab::impl::detokenize` in llama.cpp
//! `src/llama-vocab.cpp` (commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f), including the
//! `clean_spaces` passes (" ?" -> "?", " ' " -> "'", " 's" -> "'s", ...) for vocabularies that set it.

use crate::Tokenizer;
use crate::attr::TokenAttr;
use crate::unicode::{decode_cpts, gpt2_cpt_to_byte, push_cpt_utf8};
use crate::vocab::VocabKind;

/// Parse the two hex digits of a `<0xXX>` byte token like `strtol(text.substr(3, 2), 16)`.
fn byte_token_value(text: &[u8]) -> u8 {
    let mut v: u32 = 0;
    for &b in text.iter().skip(3).take(2) {
        match char::from(b).to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    v as u8 // at most 0xFF
}

/// GPT-2 byte-level text back to bytes (`llama_decode_text`), keeping llama.cpp's marker for
/// code points outside the byte table.
fn decode_gpt2(text: &[u8], out: &mut Vec<u8>) {
    for cpt in decode_cpts(text) {
        match gpt2_cpt_to_byte(cpt) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::new();
                push_cpt_utf8(cpt, &mut utf8);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
}

/// `▁` -> ` ` (`llama_unescape_whitespace`).
fn unescape_spaces(text: &[u8], out: &mut Vec<u8>) {
    const SPACE: &[u8] = "\u{2581}".as_bytes();
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(SPACE) {
            out.push(b' ');
            i += SPACE.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
}

impl Tokenizer {
    /// Append the piece of `id`, skipping one leading space when `lstrip`. Unknown ids and
    /// control/unknown tokens without `special` add nothing.
    pub(crate) fn push_piece(&self, id: u32, special: bool, lstrip: bool, out: &mut Vec<u8>) {
        let v = &self.vocab;
        let Some(text) = v.text(id) else { return };
        let attr = v.attr(id);
        if !special && attr.has(TokenAttr::UNKNOWN | TokenAttr::CONTROL) {
            return;
        }
        let start = out.len();
        if attr.has(TokenAttr::UNKNOWN | TokenAttr::CONTROL | TokenAttr::USER_DEFINED) {
            out.extend_from_slice(text);
        } else if attr.has(TokenAttr::NORMAL) {
            match v.kind {
                VocabKind::Spm => unescape_spaces(text, out),
                VocabKind::Bpe => decode_gpt2(text, out),
            }
        } else if attr.has(TokenAttr::BYTE) {
            out.push(byte_token_value(text));
        }
        if lstrip && out.get(start) == Some(&b' ') {
            out.remove(start);
        }
    }

    /// The bytes of one token (`llama_token_to_piece` with `lstrip = 0`). A piece may be part
    /// of a UTF-8 character (byte tokens); `special` renders control tokens such as `<bos>`.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.push_piece(id, special, false, &mut out);
        out
    }

    /// `llama_detokenize`: concatenated pieces, the first one without its leading space when
    /// the vocab adds a space prefix, then `clean_spaces` if the vocab asks for it.
    /// `remove_special` drops a leading BOS / trailing EOS the vocab would have added.
    pub fn detokenize_bytes(
        &self,
        tokens: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Vec<u8> {
        let v = &self.vocab;
        let mut tokens = tokens;
        let mut remove_space = v.add_space_prefix;
        if remove_special && v.add_bos && tokens.first().is_some_and(|&t| Some(t) == v.special.bos)
        {
            remove_space = false;
            tokens = &tokens[1..];
        }
        if remove_special && v.add_eos && tokens.last().is_some_and(|&t| Some(t) == v.special.eos) {
            tokens = &tokens[..tokens.len() - 1];
        }
        let mut out = Vec::new();
        for &t in tokens {
            self.push_piece(t, unparse_special, remove_space, &mut out);
            remove_space = false;
        }
        if v.clean_spaces { clean_spaces(&out) } else { out }
    }

    /// Detokenize to a `String` like llama.cpp's `common_detokenize(tokens, special)`
    /// (`remove_special = false`); invalid UTF-8 becomes U+FFFD.
    pub fn detokenize(&self, tokens: &[u32], special: bool) -> String {
        String::from_utf8_lossy(&self.detokenize_bytes(tokens, false, special)).into_owned()
    }
}

/// The three `clean_spaces` passes of `llama_vocab::impl::detokenize`, byte for byte.
pub(crate) fn clean_spaces(text: &[u8]) -> Vec<u8> {
    // Pass 1: " ?", " !", " .", " ," lose the space.
    let mut p1: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            p1.pop();
        }
        p1.push(x);
    }
    // Pass 2: " ' " -> "'"; the skipped space is overwritten with NUL in llama.cpp, which the
    // next step then sees as its predecessor.
    let mut src = p1;
    let mut p2: Vec<u8> = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let x = src[i];
        if i > 0 && x == b'\'' && i + 1 < src.len() && src[i - 1] == b' ' && src[i + 1] == b' ' {
            p2.pop();
            i += 1;
            src[i] = 0;
        }
        p2.push(x);
        i += 1;
    }
    // Pass 3: " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
    let mut p3: Vec<u8> = Vec::with_capacity(p2.len());
    for (i, &x) in p2.iter().enumerate() {
        if i > 0 && p2[i - 1] == b' ' && x == b'\'' && i + 1 < p2.len() {
            let x1 = p2[i + 1];
            let x2 = p2.get(i + 2).copied();
            let drop = matches!(x1, b's' | b'm')
                || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')));
            if drop {
                p3.pop();
            }
        }
        p3.push(x);
    }
    p3
}

/// Whether a `clean_spaces` pass could look across `tail[..cut]` | `tail[cut..]`: the three
/// bytes before the cut must be neither spaces nor apostrophes (see [`StreamDecoder`]).
fn is_clean_cut(tail: &[u8], cut: usize) -> bool {
    cut >= 3 && tail[cut - 3..cut].iter().all(|&b| b != b' ' && b != b'\'')
}

/// Incremental detokenizer for streaming generation: never emits half a UTF-8 character, and
/// the concatenation of everything it returns equals [`Tokenizer::detokenize`] of all tokens
/// pushed (first-token space stripping and `clean_spaces` included).
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    special: bool,
    started: bool,
    /// Raw piece bytes not yet run through `clean_spaces` (only used when the vocab cleans).
    raw: Vec<u8>,
    /// Final bytes that do not yet form complete UTF-8 characters.
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder; `special` renders control tokens like [`Tokenizer::detokenize`]'s `special`.
    pub fn new(special: bool) -> StreamDecoder {
        StreamDecoder { special, ..StreamDecoder::default() }
    }

    /// Add one token; returns the text that became complete (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        let lstrip = !self.started && tokenizer.vocab.add_space_prefix;
        self.started = true;
        if tokenizer.vocab.clean_spaces {
            let old = self.raw.len();
            tokenizer.push_piece(id, self.special, lstrip, &mut self.raw);
            // Clean everything up to the last cut no later byte can influence; cuts at or
            // before `old` were already tried (and failed) on earlier pushes.
            let first = (old + 1).max(3);
            if let Some(cut) = (first..=self.raw.len()).rev().find(|&c| is_clean_cut(&self.raw, c))
            {
                let cleaned = clean_spaces(&self.raw[..cut]);
                self.pending.extend_from_slice(&cleaned);
                self.raw.drain(..cut);
            }
        } else {
            tokenizer.push_piece(id, self.special, lstrip, &mut self.pending);
        }
        self.take_complete()
    }

    /// Flush at end of stream: leftover bytes, incomplete sequences as U+FFFD.
    pub fn finish(&mut self) -> String {
        if !self.raw.is_empty() {
            let cleaned = clean_spaces(&self.raw);
            self.pending.extend_from_slice(&cleaned);
            self.raw.clear();
        }
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        self.started = false;
        out
    }

    /// Decode the complete prefix of `pending`; invalid sequences (that no later byte can
    /// repair) become U+FFFD, an incomplete tail stays.
    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut at = 0;
        loop {
            match std::str::from_utf8(&self.pending[at..]) {
                Ok(s) => {
                    out.push_str(s);
                    at = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[at..at + valid]));
                    at += valid;
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            at += n;
                        }
                        None => break,
                    }
                }
            }
        }
        self.pending.drain(..at);
        out
    }
}
