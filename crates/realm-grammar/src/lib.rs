//! Constrained decoding: the tokens a model may sample next, so that its answer matches a JSON
//! schema, a regular expression or a grammar. The work is llguidance's (the structured-output
//! engine llama.cpp and vLLM can use); this crate gives it Realm's vocabulary and a small
//! surface:
//!
//! - [`Grammars`]: built once per model from its [`Tokenizer`] (a token trie of every token's
//!   bytes); compiles a [`Spec`] into a [`Constraint`], or says what is wrong with it.
//! - [`Constraint`]: one answer's state. [`Constraint::compute_mask`] (the slow part, ~0.1–1
//!   ms; run it while the model computes the step), then [`Constraint::apply`] to the logits
//!   before sampling, then [`Constraint::commit`] the sampled token.
//!
//! [`Spec::Gbnf`] takes llama.cpp's GBNF, converted to llguidance's Lark dialect by [`gbnf`].

pub mod gbnf;

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{self, SimpleVob, TokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use realm_tokenizer::{TokenAttr, Tokenizer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an answer must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spec {
    /// JSON valid under this JSON schema (OpenAI's `response_format: json_schema`).
    JsonSchema(Value),
    /// Any JSON object (OpenAI's `response_format: json_object`).
    JsonObject,
    /// Text matching this regular expression (whole).
    Regex(String),
    /// A grammar in llguidance's Lark dialect (`start: …`).
    Lark(String),
    /// A grammar in llama.cpp's GBNF (`root ::= …`).
    Gbnf(String),
}

impl Spec {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::JsonSchema(_) => "json_schema",
            Spec::JsonObject => "json_object",
            Spec::Regex(_) => "regex",
            Spec::Lark(_) => "lark",
            Spec::Gbnf(_) => "gbnf",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrammarError {
    /// The schema, expression or grammar is not valid (or not supported): the message says
    /// where and why.
    #[error("invalid {kind}: {message}")]
    Invalid { kind: &'static str, message: String },
    /// The constraint failed while generating (a limit of the parser was reached, or the
    /// sampled token was not allowed).
    #[error("constrained decoding failed: {0}")]
    Failed(String),
    /// The model's vocabulary could not be read into a token trie.
    #[error("cannot build the token trie: {0}")]
    Vocabulary(String),
}

/// The model's vocabulary as llguidance sees it, and its parser factory.
pub struct Grammars {
    factory: ParserFactory,
    n_vocab: usize,
    eos: u32,
}

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammars").field("n_vocab", &self.n_vocab).field("eos", &self.eos).finish()
    }
}

/// llguidance's view of Realm's tokenizer.
struct Env {
    trie: TokTrie,
    tok: Arc<Tokenizer>,
}

impl toktrie::TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.tok.tokenize_bytes(s, false, false)
    }
}

impl Grammars {
    /// The token trie of `tok`'s vocabulary: each token's bytes, control tokens as llguidance
    /// marks special ones (`\xFF` and their text), so a grammar never produces them by
    /// accident. The end-of-generation token the constraint allows once an answer is complete
    /// is the model's end-of-turn token, else its end-of-sequence token.
    pub fn new(tok: Arc<Tokenizer>) -> Result<Grammars, GrammarError> {
        // llguidance reads the clock while computing masks; on wasm64 (the browser's Memory64
        // build) the only clock it has is std's, which panics there.
        if cfg!(target_arch = "wasm64") {
            return Err(GrammarError::Vocabulary(
                "constrained decoding is not available in the Memory64 (wasm64) build".into(),
            ));
        }
        let n_vocab = tok.n_vocab();
        let eos = tok.eot().or(tok.eos()).or_else(|| tok.eog_tokens().next()).ok_or_else(|| {
            GrammarError::Vocabulary("the model has no end-of-generation token".into())
        })?;
        let mut words = Vec::with_capacity(n_vocab);
        for id in 0..n_vocab as u32 {
            let attr = tok.token_attr(id);
            let special = attr.has(TokenAttr::CONTROL)
                || attr.has(TokenAttr::UNKNOWN)
                || attr.has(TokenAttr::UNUSED)
                || tok.is_eog(id);
            if special {
                let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                w.extend_from_slice(tok.token_text(id).unwrap_or_default());
                words.push(w);
            } else {
                words.push(tok.token_to_piece(id, false));
            }
        }
        let info = TokRxInfo {
            vocab_size: n_vocab as u32,
            tok_eos: eos,
            tok_bos: tok.bos(),
            tok_pad: None,
            tok_unk: None,
            tok_end_of_turn: tok.eot(),
        };
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(Env { trie, tok });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| GrammarError::Vocabulary(e.to_string()))?;
        factory.quiet();
        Ok(Grammars { factory, n_vocab, eos })
    }

    /// The vocabulary size the masks cover.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// The end-of-generation token a complete answer may end with.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// Compiles `spec`: an error names what is wrong (before any token is generated).
    pub fn compile(&self, spec: &Spec) -> Result<Constraint, GrammarError> {
        let kind = spec.kind();
        let invalid = |message: String| GrammarError::Invalid { kind, message };
        let grammar = match spec {
            Spec::JsonSchema(schema) => {
                if !schema.is_object() && !schema.is_boolean() {
                    return Err(invalid("a JSON schema is an object (or true/false)".into()));
                }
                TopLevelGrammar::from_json_schema(with_compact_whitespace(schema.clone()))
            }
            Spec::JsonObject => TopLevelGrammar::from_json_schema(with_compact_whitespace(
                serde_json::json!({"type": "object"}),
            )),
            Spec::Regex(rx) => TopLevelGrammar::from_regex(rx),
            Spec::Lark(g) => TopLevelGrammar::from_lark(g.clone()),
            Spec::Gbnf(g) => TopLevelGrammar::from_lark(gbnf::to_lark(g).map_err(invalid)?),
        };
        let parser = self.factory.create_parser(grammar).map_err(|e| invalid(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(invalid(e));
        }
        Ok(Constraint { matcher, mask: None, eos: self.eos, kind })
    }
}

/// JSON on one line with a space after `,` and `:` (`{"a": 1, "b": [2, 3]}`), unless the
/// schema sets its own layout (`x-guidance`): free whitespace lets a small model pad an answer
/// with newlines until `max_tokens`.
fn with_compact_whitespace(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
        });
    }
    schema
}

/// One answer's constraint.
pub struct Constraint {
    matcher: Matcher,
    /// The mask for the next token, computed ahead ([`Constraint::compute_mask`]).
    mask: Option<SimpleVob>,
    eos: u32,
    kind: &'static str,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("kind", &self.kind)
            .field("masked", &self.mask.is_some())
            .finish()
    }
}

impl Constraint {
    /// Computes the set of tokens allowed next, if it is not computed yet. Once the answer is
    /// complete, only the end-of-generation token is allowed.
    pub fn compute_mask(&mut self) -> Result<(), GrammarError> {
        if self.mask.is_none() {
            let m = self
                .matcher
                .compute_mask_or_eos()
                .map_err(|e| GrammarError::Failed(e.to_string()))?;
            self.mask = Some(m);
        }
        Ok(())
    }

    /// Sets every logit of a token the constraint does not allow to −∞ (computing the mask
    /// first if needed). Returns how many tokens are allowed.
    pub fn apply(&mut self, logits: &mut [f32]) -> Result<usize, GrammarError> {
        self.compute_mask()?;
        let Some(mask) = &self.mask else { return Ok(0) };
        let n = logits.len();
        mask.iter_unset_entries(|i| {
            if let Some(l) = logits.get_mut(i) {
                *l = f32::NEG_INFINITY;
            }
        });
        // Tokens past the mask's end (a vocabulary padded beyond the tokenizer's) are never
        // allowed.
        for l in logits.iter_mut().skip(mask.len()) {
            *l = f32::NEG_INFINITY;
        }
        Ok(mask.num_set().min(n))
    }

    /// The allowed token with the highest logit (the lowest id among equals), or `None` when
    /// nothing is allowed: greedy decoding under the constraint, without touching the logits.
    pub fn masked_argmax(&mut self, logits: &[f32]) -> Result<Option<u32>, GrammarError> {
        self.compute_mask()?;
        let Some(mask) = &self.mask else { return Ok(None) };
        let mut best: Option<(u32, f32)> = None;
        mask.iter_set_entries(|i| {
            if let Some(&l) = logits.get(i)
                && best.is_none_or(|(_, b)| l > b)
            {
                best = Some((i as u32, l));
            }
        });
        Ok(best.map(|(i, _)| i))
    }

    /// Whether `id` is allowed next, without computing the whole mask where it can: checking
    /// one token is far cheaper than a mask (greedy decoding mostly takes the model's best
    /// token, which mostly is allowed). The end-of-generation token is checked on the mask.
    pub fn check(&mut self, id: u32) -> Result<bool, GrammarError> {
        if let Some(m) = &self.mask {
            return Ok(m.is_allowed(id));
        }
        if id == self.eos || self.matcher.is_stopped() {
            return self.allows(id);
        }
        let n =
            self.matcher.validate_tokens(&[id]).map_err(|e| GrammarError::Failed(e.to_string()))?;
        Ok(n == 1)
    }

    /// Whether `id` is allowed next (computing the mask if needed).
    pub fn allows(&mut self, id: u32) -> Result<bool, GrammarError> {
        self.compute_mask()?;
        Ok(self.mask.as_ref().is_some_and(|m| m.is_allowed(id)))
    }

    /// Advances past the sampled token `id`.
    pub fn commit(&mut self, id: u32) -> Result<(), GrammarError> {
        self.mask = None;
        if id == self.eos && self.matcher.is_stopped() {
            return Ok(());
        }
        self.matcher.consume_token(id).map_err(|e| GrammarError::Failed(e.to_string()))
    }

    /// Whether the answer is complete and nothing may follow it (the grammar allows only the
    /// end-of-generation token now).
    pub fn is_complete(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// The kind of constraint (`json_schema`, `regex`, …).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}
