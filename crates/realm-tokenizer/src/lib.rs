//! realm-tokenizer: tokenize exactly like llama.cpp (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f) from a GGUF file's `tokenizer.*` metadata.
//!
//! - [`Tokenizer`]: SPM (`tokenizer.ggml.model = "llama"`) and GPT-2 byte-level BPE (`"gpt2"`)
//!   with the pre-tokenizer `tokenizer.ggml.pre` selects, special-token parsing, BOS/EOS rules.
//! - Detokenizing: [`Tokenizer::token_to_piece`], [`Tokenizer::detokenize`] and the UTF-8-safe
//!   [`StreamDecoder`].
//! - [`ChatTemplate`]: `tokenizer.chat_template` rendered with minijinja, with llama.cpp's
//!   built-in templates as fallback.
//!
//! The tokenizer owns its vocabulary, so it outlives the mapped file. Pure Rust; builds for
//! `wasm32-unknown-unknown`.

mod attr;
mod bpe;
mod chat;
mod chat_builtin;
mod detok;
pub mod error;
mod pretokenize;
mod regex;
mod scores;
mod special;
mod spm;
mod strtab;
mod symbol;
mod unicode;
mod vocab;

pub use attr::TokenAttr;
pub use chat::{ChatMessage, ChatTemplate};
pub use chat_builtin::BuiltinTemplate;
pub use detok::StreamDecoder;
pub use error::{Result, TokenizerError};
pub use pretokenize::PreTokenizer;
pub use vocab::{SpecialTokens, VocabKind};

/// The general-category flag llama.cpp's `unicode_cpt_flags_from_cpt` gives a code point
/// (0x01 unassigned, 0x02 number, 0x04 letter, 0x08 separator, 0x10 mark, 0x20 punctuation,
/// 0x40 symbol, 0x80 other), whitespace bit excluded.
pub fn unicode_category_flags(cpt: u32) -> u16 {
    unicode::cpt_flags(cpt).category()
}

use realm_gguf::Gguf;

use special::Fragment;
use vocab::Vocab;

/// A tokenizer built from GGUF metadata, behaving like llama.cpp's `llama_vocab`.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Vocab,
}

impl Tokenizer {
    /// Build from `tokenizer.ggml.*` metadata with llama.cpp's defaults for absent keys.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<Tokenizer> {
        let mut t = Tokenizer { vocab: Vocab::from_gguf(gguf)? };
        if t.vocab.kind == VocabKind::Bpe {
            let nl = t.tokenize("\n", false, false).first().copied();
            t.vocab.special.nl = nl.or(t.vocab.special.pad);
        }
        Ok(t)
    }

    /// `llama_tokenize(text, add_special, parse_special)`.
    ///
    /// `add_special` adds BOS/EOS where the vocab asks for them; `parse_special` lets control
    /// tokens written in the text (e.g. `<|im_start|>`) become those tokens. User-defined
    /// tokens are always matched.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        self.tokenize_bytes(text.as_bytes(), add_special, parse_special)
    }

    /// [`Tokenizer::tokenize`] over raw bytes; invalid UTF-8 is handled like llama.cpp does
    /// (byte fallback in SPM, U+FFFD per bad byte in BPE pre-tokenization).
    pub fn tokenize_bytes(&self, text: &[u8], add_special: bool, parse_special: bool) -> Vec<u32> {
        let v = &self.vocab;
        let fragments = special::partition(v, text, parse_special);
        let mut out = Vec::new();
        if add_special && v.add_bos {
            out.extend(v.special.bos);
        }
        match v.kind {
            VocabKind::Spm => {
                let mut prev_special = true;
                let mut buf = Vec::new();
                for frag in fragments {
                    match frag {
                        Fragment::Text(a, b) => {
                            buf.clear();
                            if v.add_space_prefix && prev_special {
                                buf.extend_from_slice("\u{2581}".as_bytes());
                            }
                            escape_spaces(&text[a..b], &mut buf);
                            spm::tokenize(v, &buf, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            VocabKind::Bpe => {
                for frag in fragments {
                    match frag {
                        Fragment::Text(a, b) => bpe::tokenize(v, &text[a..b], &mut out),
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && v.add_eos {
            out.extend(v.special.eos);
        }
        out
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.n_tokens()
    }

    /// The algorithm: SPM or BPE.
    pub fn kind(&self) -> VocabKind {
        self.vocab.kind
    }

    /// `tokenizer.ggml.model` as found in the file.
    pub fn model(&self) -> &str {
        &self.vocab.model
    }

    /// `tokenizer.ggml.pre` as found in the file.
    pub fn pre(&self) -> Option<&str> {
        self.vocab.pre_name.as_deref()
    }

    /// All special token ids.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.vocab.special
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.special.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.special.eos
    }

    /// End-of-turn token (from metadata or detected by text, e.g. `<|im_end|>`).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.special.eot
    }

    /// Whether `tokenize(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// Whether `tokenize(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// `tokenizer.ggml.add_sep_token` (BERT-style vocabularies; informational here).
    pub fn add_sep(&self) -> bool {
        self.vocab.add_sep
    }

    /// Whether SPM text gets a leading space (`tokenizer.ggml.add_space_prefix`).
    pub fn add_space_prefix(&self) -> bool {
        self.vocab.add_space_prefix
    }

    /// `tokenizer.ggml.remove_extra_whitespaces` (read, but llama.cpp's SPM does not use it).
    pub fn remove_extra_whitespaces(&self) -> bool {
        self.vocab.remove_extra_whitespaces
    }

    /// Whether generation should stop at `id` (EOS, EOT, EOM and llama.cpp's end-of-turn list).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.contains(&id)
    }

    /// All end-of-generation ids, ascending.
    pub fn eog_tokens(&self) -> impl Iterator<Item = u32> + '_ {
        self.vocab.eog.iter().copied()
    }

    /// The vocabulary text of a token (GPT-2 byte-level or `▁`-escaped; not a piece).
    pub fn token_text(&self, id: u32) -> Option<&[u8]> {
        self.vocab.text(id)
    }

    /// The score of a token (SPM merge priority).
    pub fn token_score(&self, id: u32) -> Option<f32> {
        self.vocab.score(id)
    }

    /// The attributes of a token (`UNDEFINED` for an out-of-range id).
    pub fn token_attr(&self, id: u32) -> TokenAttr {
        self.vocab.attr(id)
    }

    /// The id of the token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.text_to_token(text.as_bytes())
    }

    /// The BPE pre-tokenizer, if this is a BPE vocabulary.
    pub fn pre_tokenizer(&self) -> Option<&PreTokenizer> {
        self.vocab.pre.as_ref()
    }
}

/// `' '` -> `▁` (`llama_escape_whitespace`).
fn escape_spaces(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        if b == b' ' {
            out.extend_from_slice("\u{2581}".as_bytes());
        } else {
            out.push(b);
        }
    }
}
