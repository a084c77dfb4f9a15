//! The vocabulary from `tokenizer.ggml.*`, with llama.cpp's defaults, special-token detection and
//! per-token attributes.
//!
//! Follows `llama_vocab::impl::load` in llama.cpp `src/llama-vocab.cpp` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f). Where llama.cpp walks an `unordered_map` (EOT/FIM
//! auto-detection, first match wins) this walks ids in ascending order, so the pick among several
//! candidates is deterministic; EOG membership does not depend on it.

use std::collections::{BTreeSet, HashMap};

use realm_gguf::{Gguf, keys};

use crate::attr::{self, TokenAttr};
use crate::error::{Result, TokenizerError};
use crate::pretokenize::{self, PreTokenizer};

/// Which tokenizer algorithm the vocabulary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// SentencePiece BPE (`tokenizer.ggml.model = "llama"`): score-driven merges, byte fallback.
    Spm,
    /// GPT-2 byte-level BPE (`tokenizer.ggml.model = "gpt2"`): ranked merges after pre-tokenizing.
    Bpe,
}

/// Special token ids (`None` = `LLAMA_TOKEN_NULL`): beginning/end of sequence, end of turn and
/// of message, unknown, separator, padding, mask, and the fill-in-the-middle family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
    /// The newline token.
    pub nl: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenData {
    pub text: Box<[u8]>,
    pub score: f32,
    pub attr: TokenAttr,
}

/// Everything llama.cpp's `llama_vocab` holds that tokenizing needs.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    pub kind: VocabKind,
    pub tokens: Vec<TokenData>,
    pub token_to_id: HashMap<Box<[u8]>, u32>,
    /// `"left right"` -> merge rank (first occurrence wins, like `bpe_ranks.emplace`).
    pub merges: HashMap<Box<[u8]>, u32>,
    pub pre: Option<PreTokenizer>,
    pub special: SpecialTokens,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_sep: bool,
    pub add_space_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub eog: BTreeSet<u32>,
    /// Control, user-defined and unknown tokens, longest text first (`cache_special_tokens`).
    pub special_cache: Vec<u32>,
    pub model: String,
    pub pre_name: Option<String>,
}

/// Flags and defaults that depend on the tokenizer model and pre-tokenizer.
struct Defaults {
    kind: VocabKind,
    special: SpecialTokens,
    pre: Option<PreTokenizer>,
    add_bos: bool,
    add_eos: bool,
    add_sep: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    ignore_merges: bool,
}

fn defaults(model: &str, pre: Option<&str>) -> Result<Defaults> {
    match model {
        "llama" => Ok(Defaults {
            kind: VocabKind::Spm,
            special: SpecialTokens {
                bos: Some(1),
                eos: Some(2),
                unk: Some(0),
                ..Default::default()
            },
            pre: None,
            add_bos: true,
            add_eos: false,
            add_sep: false,
            add_space_prefix: true,
            clean_spaces: false,
            ignore_merges: false,
        }),
        "gpt2" => {
            let spec = pretokenize::lookup(pre)?;
            let pretok = PreTokenizer::from_regexes(spec.regexes)?;
            let bos = if spec.no_bos { None } else { Some(11) };
            Ok(Defaults {
                kind: VocabKind::Bpe,
                special: SpecialTokens { bos, eos: Some(11), ..Default::default() },
                pre: Some(pretok),
                add_bos: spec.add_bos,
                add_eos: false,
                add_sep: spec.add_sep,
                add_space_prefix: false,
                clean_spaces: spec.clean_spaces,
                ignore_merges: spec.ignore_merges,
            })
        }
        "no_vocab" | "none" | "bert" | "t5" | "rwkv" | "plamo2" | "gemma4" | "hybriddna"
        | "whitespace" => Err(TokenizerError::UnsupportedModel { model: model.into() }),
        other => Err(TokenizerError::UnknownModel { model: other.into() }),
    }
}

fn bad(key: &'static str, reason: String) -> TokenizerError {
    TokenizerError::BadMetadata { key, reason }
}

/// Merges keyed by `"first second"`, split at the first space after the first byte.
fn load_merges(g: &Gguf<'_>) -> Result<HashMap<Box<[u8]>, u32>> {
    let key = keys::TOKENIZER_MERGES;
    let arr = g.get_array(key)?.ok_or(TokenizerError::MissingKey { key })?;
    let items = arr.to_byte_strs().ok_or_else(|| bad(key, "not an array of strings".into()))?;
    let mut merges = HashMap::with_capacity(items.len());
    for (rank, word) in items.iter().enumerate() {
        let rank = u32::try_from(rank).map_err(|_| bad(key, "too many merges".into()))?;
        let split = word.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1);
        let k: Box<[u8]> = match split {
            Some(_) => Box::from(*word),
            None => Box::from(&b" "[..]),
        };
        merges.entry(k).or_insert(rank);
    }
    Ok(merges)
}

/// Token texts -> ids.
type TokenMap = HashMap<Box<[u8]>, u32>;

fn load_tokens(g: &Gguf<'_>) -> Result<(Vec<TokenData>, TokenMap)> {
    let key = keys::TOKENIZER_TOKENS;
    let arr = g.get_array(key)?.ok_or(TokenizerError::MissingKey { key })?;
    let texts = arr.to_byte_strs().ok_or_else(|| bad(key, "not an array of strings".into()))?;
    let n = texts.len();
    if u32::try_from(n).is_err() {
        return Err(bad(key, format!("{n} tokens do not fit token ids")));
    }
    let scores = g.get_f32_array(keys::TOKENIZER_SCORES)?;
    if let Some(s) = &scores
        && s.len() < n
    {
        return Err(bad(keys::TOKENIZER_SCORES, format!("{} scores for {n} tokens", s.len())));
    }
    let types = g.get_i64_array(keys::TOKENIZER_TOKEN_TYPE)?;
    if let Some(t) = &types
        && t.len() < n
    {
        return Err(bad(
            keys::TOKENIZER_TOKEN_TYPE,
            format!("{} token types for {n} tokens", t.len()),
        ));
    }
    let mut tokens = Vec::with_capacity(n);
    let mut map: HashMap<Box<[u8]>, u32> = HashMap::with_capacity(n);
    for (i, text) in texts.into_iter().enumerate() {
        let id = i as u32; // fits: checked above
        let text: Box<[u8]> = if text.is_empty() {
            format!("[EMPTY_{i}]").into_bytes().into_boxed_slice()
        } else {
            Box::from(text)
        };
        if let Some(&first) = map.get(&text) {
            let text = String::from_utf8_lossy(&text).into_owned();
            return Err(TokenizerError::DuplicateToken { text, first, second: id });
        }
        map.insert(text.clone(), id);
        let score = scores.as_ref().map_or(0.0, |s| s[i]);
        let attr = types.as_ref().map_or(TokenAttr::NORMAL, |t| TokenAttr::from_token_type(t[i]));
        tokens.push(TokenData { text, score, attr });
    }
    Ok((tokens, map))
}

/// A special id from metadata: out-of-range defaults are disabled, out-of-range keys ignored.
fn special_id(g: &Gguf<'_>, key: &str, default: Option<u32>, n: usize) -> Result<Option<u32>> {
    let default = default.filter(|&id| (id as usize) < n);
    Ok(match g.get_int::<i64>(key)? {
        Some(v) if v >= 0 && (v as u64) < n as u64 => Some(v as u32),
        _ => default,
    })
}

fn read_specials(g: &Gguf<'_>, d: SpecialTokens, n: usize) -> Result<SpecialTokens> {
    let mut s = d;
    s.bos = special_id(g, keys::TOKENIZER_BOS_ID, d.bos, n)?;
    s.eos = special_id(g, keys::TOKENIZER_EOS_ID, d.eos, n)?;
    s.eot = special_id(g, keys::TOKENIZER_EOT_ID, d.eot, n)?;
    s.eom = special_id(g, keys::TOKENIZER_EOM_ID, d.eom, n)?;
    s.unk = special_id(g, keys::TOKENIZER_UNK_ID, d.unk, n)?;
    s.sep = special_id(g, keys::TOKENIZER_SEP_ID, d.sep, n)?;
    s.pad = special_id(g, keys::TOKENIZER_PAD_ID, d.pad, n)?;
    s.mask = special_id(g, keys::TOKENIZER_MASK_ID, d.mask, n)?;
    s.fim_pre = special_id(g, keys::TOKENIZER_FIM_PRE_ID, d.fim_pre, n)?;
    s.fim_suf = special_id(g, keys::TOKENIZER_FIM_SUF_ID, d.fim_suf, n)?;
    s.fim_mid = special_id(g, keys::TOKENIZER_FIM_MID_ID, d.fim_mid, n)?;
    s.fim_pad = special_id(g, keys::TOKENIZER_FIM_PAD_ID, d.fim_pad, n)?;
    s.fim_rep = special_id(g, keys::TOKENIZER_FIM_REP_ID, d.fim_rep, n)?;
    s.fim_sep = special_id(g, keys::TOKENIZER_FIM_SEP_ID, d.fim_sep, n)?;
    s.fim_pre = special_id(g, keys::TOKENIZER_PREFIX_ID, s.fim_pre, n)?;
    s.fim_suf = special_id(g, keys::TOKENIZER_SUFFIX_ID, s.fim_suf, n)?;
    s.fim_mid = special_id(g, keys::TOKENIZER_MIDDLE_ID, s.fim_mid, n)?;
    Ok(s)
}

impl Vocab {
    /// Load the vocabulary the way `llama_vocab::impl::load` does.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Vocab> {
        let model_key = keys::TOKENIZER_MODEL;
        let model = g.get_str(model_key)?.ok_or(TokenizerError::MissingKey { key: model_key })?;
        let pre_name = g.get_str(keys::TOKENIZER_PRE)?;
        let d = defaults(model, pre_name)?;
        let merges = if d.kind == VocabKind::Bpe { load_merges(g)? } else { HashMap::new() };
        let add_space_prefix =
            g.get_bool(keys::TOKENIZER_ADD_PREFIX)?.unwrap_or(d.add_space_prefix);
        let remove_extra_whitespaces =
            g.get_bool(keys::TOKENIZER_REMOVE_EXTRA_WS)?.unwrap_or(false);
        let (tokens, token_to_id) = load_tokens(g)?;
        let special = read_specials(g, d.special, tokens.len())?;
        let add_bos = g.get_bool(keys::TOKENIZER_ADD_BOS)?.unwrap_or(d.add_bos);
        let add_eos = g.get_bool(keys::TOKENIZER_ADD_EOS)?.unwrap_or(d.add_eos);
        let add_sep = g.get_bool(keys::TOKENIZER_ADD_SEP)?.unwrap_or(d.add_sep);
        let checks = [
            (add_bos, special.bos, keys::TOKENIZER_ADD_BOS, keys::TOKENIZER_BOS_ID),
            (add_eos, special.eos, keys::TOKENIZER_ADD_EOS, keys::TOKENIZER_EOS_ID),
            (add_sep, special.sep, keys::TOKENIZER_ADD_SEP, keys::TOKENIZER_SEP_ID),
        ];
        for (flag, id, flag_key, id_key) in checks {
            if flag && id.is_none() {
                return Err(TokenizerError::MissingSpecialToken { flag: flag_key, id_key });
            }
        }
        let mut v = Vocab {
            kind: d.kind,
            tokens,
            token_to_id,
            merges,
            pre: d.pre,
            special,
            add_bos,
            add_eos,
            add_sep,
            add_space_prefix,
            remove_extra_whitespaces,
            clean_spaces: d.clean_spaces,
            ignore_merges: d.ignore_merges,
            eog: BTreeSet::new(),
            special_cache: Vec::new(),
            model: model.into(),
            pre_name: pre_name.map(str::to_owned),
        };
        if v.kind == VocabKind::Spm {
            v.special.nl = v.byte_to_token(b'\n').or(v.special.pad);
        }
        v.detect_special_tokens();
        v.build_eog();
        v.build_special_cache();
        v.apply_model_attrs(g.get_str(keys::GENERAL_NAME)?, g.get_str(keys::GENERAL_ARCHITECTURE)?);
        Ok(v)
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn text_to_token(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub fn attr(&self, id: u32) -> TokenAttr {
        self.tokens.get(id as usize).map_or(TokenAttr::UNDEFINED, |t| t.attr)
    }

    /// The token of a raw byte (`llama_vocab::byte_to_token`): `<0xXX>` for SPM (else the byte
    /// itself as a one-byte token), the GPT-2 encoded byte for BPE. `None` where llama.cpp throws.
    pub fn byte_to_token(&self, b: u8) -> Option<u32> {
        match self.kind {
            VocabKind::Spm => {
                let hex = format!("<0x{b:02X}>");
                self.text_to_token(hex.as_bytes()).or_else(|| self.text_to_token(&[b]))
            }
            VocabKind::Bpe => {
                let mut enc = Vec::with_capacity(2);
                crate::unicode::push_gpt2_encoded(&[b], &mut enc);
                self.text_to_token(&enc)
            }
        }
    }

    fn mark_control(&mut self, id: u32) {
        if let Some(t) = self.tokens.get_mut(id as usize)
            && !t.attr.has(TokenAttr::CONTROL)
        {
            t.attr = t.attr | TokenAttr::CONTROL;
        }
    }

    /// EOT/EOM/FIM auto-detection by text, and `unused` control tokens.
    fn detect_special_tokens(&mut self) {
        let s = &mut self.special;
        let slots: [(&mut Option<u32>, &[&str]); 8] = [
            (&mut s.eot, attr::EOT_TEXTS),
            (&mut s.eom, attr::EOM_TEXTS),
            (&mut s.fim_pre, attr::FIM_PRE_TEXTS),
            (&mut s.fim_suf, attr::FIM_SUF_TEXTS),
            (&mut s.fim_mid, attr::FIM_MID_TEXTS),
            (&mut s.fim_pad, attr::FIM_PAD_TEXTS),
            (&mut s.fim_rep, attr::FIM_REP_TEXTS),
            (&mut s.fim_sep, attr::FIM_SEP_TEXTS),
        ];
        let mut found = Vec::new();
        for (slot, texts) in slots {
            if slot.is_none() {
                let hit = (0..self.tokens.len())
                    .find(|&i| texts.iter().any(|t| t.as_bytes() == &*self.tokens[i].text))
                    .map(|i| i as u32);
                if let Some(id) = hit {
                    *slot = Some(id);
                    found.push(id);
                }
            }
        }
        for id in found {
            self.mark_control(id);
        }
        for t in &mut self.tokens {
            if t.attr.has(TokenAttr::CONTROL) && t.text.windows(6).any(|w| w == b"unused") {
                t.attr = t.attr | TokenAttr::UNUSED;
            }
        }
    }

    /// The end-of-generation set, with llama.cpp's text list and workarounds.
    fn build_eog(&mut self) {
        let s = self.special;
        self.eog.extend([s.fim_pad, s.fim_rep, s.fim_sep].into_iter().flatten());
        for id in 0..self.tokens.len() as u32 {
            let text = &self.tokens[id as usize].text;
            if attr::EOG_TEXTS.iter().any(|t| t.as_bytes() == &**text) {
                self.eog.insert(id);
                self.mark_control(id);
            }
        }
        for id in 0..self.tokens.len() {
            if attr::ALWAYS_RENDERED.iter().any(|t| t.as_bytes() == &*self.tokens[id].text) {
                self.tokens[id].attr = TokenAttr::USER_DEFINED;
            }
        }
        self.eog.extend([s.eos, s.eot, s.eom].into_iter().flatten());
        let find = |v: &Vocab, text: &str| {
            v.eog.iter().copied().find(|&id| &*v.tokens[id as usize].text == text.as_bytes())
        };
        let (ret, call, calls, flush, end) = (
            find(self, "<|return|>"),
            find(self, "<|call|>"),
            find(self, "<|calls|>"),
            find(self, "<|flush|>"),
            find(self, "<|end|>"),
        );
        let has_call = call.is_some() || calls.is_some();
        if let Some(end) = end
            && has_call
            && (ret.is_some() || flush.is_some())
        {
            self.eog.remove(&end);
            self.tokens[end as usize].attr = TokenAttr::USER_DEFINED;
        }
        if find(self, "<|tool_response>").is_some()
            && let Some(s_id) = find(self, "</s>")
        {
            self.eog.remove(&s_id);
            self.tokens[s_id as usize].attr = TokenAttr::NORMAL;
        }
    }

    fn build_special_cache(&mut self) {
        let special = TokenAttr::CONTROL | TokenAttr::USER_DEFINED | TokenAttr::UNKNOWN;
        let mut cache: Vec<u32> = (0..self.tokens.len() as u32)
            .filter(|&id| self.tokens[id as usize].attr.has(special))
            .collect();
        // llama.cpp uses an unstable std::sort by length; ties are kept in id order here.
        cache.sort_by_key(|&id| std::cmp::Reverse(self.tokens[id as usize].text.len()));
        self.special_cache = cache;
    }

    fn set_attr(&mut self, text: &str, bit: TokenAttr, on: bool) {
        if let Some(id) = self.text_to_token(text.as_bytes()) {
            let a = &mut self.tokens[id as usize].attr;
            *a = if on { *a | bit } else { TokenAttr(a.0 & !bit.0) };
        }
    }

    /// Per-model lstrip/rstrip attributes llama.cpp sets by model, pre-tokenizer or architecture.
    fn apply_model_attrs(&mut self, name: Option<&str>, arch: Option<&str>) {
        let name = name.unwrap_or("").to_ascii_lowercase();
        let pre = self.pre_name.clone().unwrap_or_default();
        let arch = arch.unwrap_or("");
        let any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
        if any(&pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
            || any(arch, &["nomic-bert-moe", "jina-bert-v3"])
        {
            self.set_attr("<mask>", TokenAttr::LSTRIP, true);
        } else if any(&name, &["phi-3", "phi3"]) {
            for id in self.special_cache.clone() {
                let a = &mut self.tokens[id as usize].attr;
                *a = *a | TokenAttr::RSTRIP;
            }
            self.set_attr("</s>", TokenAttr::RSTRIP, true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                self.set_attr(t, TokenAttr::RSTRIP, false);
            }
        } else if any(&name, &["modern-bert"]) {
            self.set_attr("[MASK]", TokenAttr::LSTRIP, true);
        }
    }
}
