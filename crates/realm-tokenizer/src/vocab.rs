//! The vocabulary from `tokenizer.ggml.*`, with llama.cpp's defaults, special-token detection and
//! per-token attributes.
//!
//! Follows `llama_vocab::impl::load` in llama.cpp `src/llama-vocab.cpp` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f). Where llama.cpp walks an `unordered_map` (EOT/FIM
//! auto-detection, first match wins) this takes the lowest matching id, so the pick among several
//! candidates is deterministic; EOG membership does not depend on it.
//!
//! Storage is compact ([`StrTable`], [`Scores`], `u16` attributes): Gemma 3's 262,144 tokens take
//! about 5.4 MiB.

use std::collections::BTreeSet;

use realm_gguf::{Array, Gguf, GgufError, Value, ValueType, keys};

use crate::attr::{self, TokenAttr};
use crate::error::{Result, TokenizerError};
use crate::pretokenize::{self, PreTokenizer};
use crate::scores::Scores;
use crate::strtab::{Rejected, StrTable};

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

// Attributes are stored as `u16`: every `llama_token_attr` bit is below 1 << 10.
const _: () = assert!(TokenAttr::SINGLE_WORD.0 < 1 << 15);

fn attr_bits(a: TokenAttr) -> u16 {
    (a.0 & 0xFFFF) as u16
}

/// BPE merges: `"left right"` -> merge rank (first occurrence wins, like `bpe_ranks.emplace`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Merges {
    keys: StrTable,
    /// Rank of each key, by key id (keys that repeat an earlier one are not stored).
    ranks: Vec<u32>,
}

impl Merges {
    pub fn rank(&self, pair: &[u8]) -> Option<u32> {
        self.keys.find(pair).and_then(|i| self.ranks.get(i as usize).copied())
    }
}

/// Everything llama.cpp's `llama_vocab` holds that tokenizing needs.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    pub kind: VocabKind,
    /// Token texts by id, and the id of each text.
    texts: StrTable,
    /// Scores by id (SPM merge priority); empty when the file has none (all 0.0).
    scores: Scores,
    /// [`TokenAttr`] bits by id.
    attrs: Vec<u16>,
    pub merges: Merges,
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

/// The elements of a string array, borrowed from the file (none are collected: a 262k-token
/// vocabulary would need 4 MiB of slices just to walk it).
fn byte_strs<'a>(arr: &Array<'a>, key: &'static str) -> Result<impl Iterator<Item = &'a [u8]>> {
    if arr.elem_type() != ValueType::String {
        return Err(bad(key, "not an array of strings".into()));
    }
    Ok(arr.iter().map(|v| match v {
        Value::String(b) => b,
        _ => &[],
    }))
}

/// Merges keyed by `"first second"`; an entry without a space after its first byte is keyed
/// `" "`, as llama.cpp's split leaves it.
fn merge_key(word: &[u8]) -> &[u8] {
    if word.iter().skip(1).any(|&b| b == b' ') { word } else { b" " }
}

fn load_merges(g: &Gguf<'_>) -> Result<Merges> {
    let key = keys::TOKENIZER_MERGES;
    let arr = g.get_array(key)?.ok_or(TokenizerError::MissingKey { key })?;
    let total: u64 = byte_strs(&arr, key)?.map(|w| merge_key(w).len() as u64).sum();
    let too_many = || bad(key, "too many merges".into());
    let n = usize::try_from(arr.len()).map_err(|_| too_many())?;
    let total = usize::try_from(total).map_err(|_| too_many())?;
    let mut keys = StrTable::with_capacity(n, total).ok_or_else(too_many)?;
    let mut ranks = Vec::with_capacity(n);
    for (rank, word) in byte_strs(&arr, key)?.enumerate() {
        match keys.insert(merge_key(word)) {
            Ok(_) => ranks.push(u32::try_from(rank).map_err(|_| too_many())?),
            Err(Rejected::Duplicate(_)) => {}
            Err(Rejected::Full) => return Err(too_many()),
        }
    }
    keys.shrink_to_fit();
    ranks.shrink_to_fit();
    Ok(Merges { keys, ranks })
}

/// The text llama.cpp gives a token whose text is empty.
fn empty_token_text(id: usize) -> String {
    format!("[EMPTY_{id}]")
}

/// The token array and its length (which must fit token ids).
fn token_array<'a>(g: &Gguf<'a>) -> Result<(Array<'a>, usize)> {
    let key = keys::TOKENIZER_TOKENS;
    let arr = g.get_array(key)?.ok_or(TokenizerError::MissingKey { key })?;
    if arr.elem_type() != ValueType::String {
        return Err(bad(key, "not an array of strings".into()));
    }
    let n = arr.len();
    let n = u32::try_from(n).map_err(|_| bad(key, format!("{n} tokens do not fit token ids")))?;
    Ok((arr, n as usize))
}

/// Token texts in one arena, sized by a first pass so it is allocated once.
fn load_texts(arr: &Array<'_>, n: usize) -> Result<StrTable> {
    let key = keys::TOKENIZER_TOKENS;
    let mut total: u64 = 0;
    for (i, text) in byte_strs(arr, key)?.enumerate() {
        let len = if text.is_empty() { empty_token_text(i).len() } else { text.len() };
        total += len as u64;
    }
    let too_big = || bad(key, format!("{n} tokens with {total} bytes of text are too many"));
    let total_bytes = usize::try_from(total).map_err(|_| too_big())?;
    let mut table = StrTable::with_capacity(n, total_bytes).ok_or_else(too_big)?;
    for (i, text) in byte_strs(arr, key)?.enumerate() {
        let empty;
        let text = if text.is_empty() {
            empty = empty_token_text(i);
            empty.as_bytes()
        } else {
            text
        };
        match table.insert(text) {
            Ok(_) => {}
            Err(Rejected::Duplicate(first)) => {
                let text = String::from_utf8_lossy(text).into_owned();
                return Err(TokenizerError::DuplicateToken { text, first, second: i as u32 });
            }
            Err(Rejected::Full) => return Err(too_big()),
        }
    }
    if table.len() != n {
        return Err(bad(key, format!("{} of {n} tokens readable", table.len())));
    }
    Ok(table)
}

/// Scores by id, or empty when the file has none.
fn load_scores(g: &Gguf<'_>, n: usize) -> Result<Scores> {
    let Some(scores) = g.get_f32_array(keys::TOKENIZER_SCORES)? else {
        return Ok(Scores::default());
    };
    match scores.get(..n) {
        Some(scores) => Ok(Scores::new(scores)),
        None => {
            let reason = format!("{} scores for {n} tokens", scores.len());
            Err(bad(keys::TOKENIZER_SCORES, reason))
        }
    }
}

/// Attributes by id from `tokenizer.ggml.token_type` (all NORMAL when absent). Every element
/// must be an integer that fits `i64`, as for `Gguf::get_i64_array`.
fn load_attrs(g: &Gguf<'_>, n: usize) -> Result<Vec<u16>> {
    let key = keys::TOKENIZER_TOKEN_TYPE;
    let Some(arr) = g.get_array(key)? else { return Ok(vec![attr_bits(TokenAttr::NORMAL); n]) };
    let mut attrs = Vec::with_capacity(n);
    for v in arr.iter() {
        let Some(t) = v.as_i128().and_then(|x| i64::try_from(x).ok()) else {
            let found = arr.elem_type().name();
            let reason = format!("expected an array of integers, found {found}s");
            return Err(GgufError::BadValue { key: key.into(), reason }.into());
        };
        if attrs.len() < n {
            attrs.push(attr_bits(TokenAttr::from_token_type(t)));
        }
    }
    if attrs.len() < n {
        return Err(bad(key, format!("{} token types for {n} tokens", arr.len())));
    }
    Ok(attrs)
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
        let merges = if d.kind == VocabKind::Bpe { load_merges(g)? } else { Merges::default() };
        let add_space_prefix =
            g.get_bool(keys::TOKENIZER_ADD_PREFIX)?.unwrap_or(d.add_space_prefix);
        let remove_extra_whitespaces =
            g.get_bool(keys::TOKENIZER_REMOVE_EXTRA_WS)?.unwrap_or(false);
        let (token_arr, n) = token_array(g)?;
        let scores = load_scores(g, n)?;
        let attrs = load_attrs(g, n)?;
        let texts = load_texts(&token_arr, n)?;
        let special = read_specials(g, d.special, n)?;
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
            texts,
            scores,
            attrs,
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
        self.texts.len()
    }

    /// The vocabulary text of `id`.
    pub fn text(&self, id: u32) -> Option<&[u8]> {
        self.texts.get(id)
    }

    pub fn text_to_token(&self, text: &[u8]) -> Option<u32> {
        self.texts.find(text)
    }

    /// The score of `id` (0.0 where the file has no scores).
    pub fn score(&self, id: u32) -> Option<f32> {
        ((id as usize) < self.n_tokens()).then(|| self.scores.get(id).unwrap_or(0.0))
    }

    pub fn attr(&self, id: u32) -> TokenAttr {
        self.attrs.get(id as usize).map_or(TokenAttr::UNDEFINED, |&a| TokenAttr(a.into()))
    }

    fn set_attr(&mut self, id: u32, a: TokenAttr) {
        if let Some(slot) = self.attrs.get_mut(id as usize) {
            *slot = attr_bits(a);
        }
    }

    /// The token of a raw byte (`llama_vocab::byte_to_token`): `<0xXX>` for SPM (else the byte
    /// itself as a one-byte token), the GPT-2 encoded byte for BPE. `None` where llama.cpp throws.
    pub fn byte_to_token(&self, b: u8) -> Option<u32> {
        match self.kind {
            VocabKind::Spm => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                let hex =
                    [b'<', b'0', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)], b'>'];
                self.text_to_token(&hex).or_else(|| self.text_to_token(&[b]))
            }
            VocabKind::Bpe => {
                let mut enc = Vec::with_capacity(2);
                crate::unicode::push_gpt2_encoded(&[b], &mut enc);
                self.text_to_token(&enc)
            }
        }
    }

    fn mark_control(&mut self, id: u32) {
        self.set_attr(id, self.attr(id) | TokenAttr::CONTROL);
    }

    /// The lowest id whose text is one of `texts` (texts are unique, so this is the first
    /// match in id order).
    fn first_of(&self, texts: &[&str]) -> Option<u32> {
        texts.iter().filter_map(|t| self.text_to_token(t.as_bytes())).min()
    }

    /// EOT/EOM/FIM auto-detection by text, and `unused` control tokens.
    fn detect_special_tokens(&mut self) {
        let mut s = self.special;
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
        for (slot, texts) in slots {
            if slot.is_none()
                && let Some(id) = self.first_of(texts)
            {
                *slot = Some(id);
                self.mark_control(id);
            }
        }
        self.special = s;
        for id in 0..self.n_tokens() as u32 {
            let a = self.attr(id);
            let unused = |t: &[u8]| t.windows(6).any(|w| w == b"unused");
            if a.has(TokenAttr::CONTROL) && self.text(id).is_some_and(unused) {
                self.set_attr(id, a | TokenAttr::UNUSED);
            }
        }
    }

    /// The end-of-generation set, with llama.cpp's text list and workarounds.
    fn build_eog(&mut self) {
        let s = self.special;
        self.eog.extend([s.fim_pad, s.fim_rep, s.fim_sep].into_iter().flatten());
        for text in attr::EOG_TEXTS {
            if let Some(id) = self.text_to_token(text.as_bytes()) {
                self.eog.insert(id);
                self.mark_control(id);
            }
        }
        for text in attr::ALWAYS_RENDERED {
            if let Some(id) = self.text_to_token(text.as_bytes()) {
                self.set_attr(id, TokenAttr::USER_DEFINED);
            }
        }
        self.eog.extend([s.eos, s.eot, s.eom].into_iter().flatten());
        let find = |v: &Vocab, text: &str| {
            v.text_to_token(text.as_bytes()).filter(|id| v.eog.contains(id))
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
            self.set_attr(end, TokenAttr::USER_DEFINED);
        }
        if find(self, "<|tool_response>").is_some()
            && let Some(s_id) = find(self, "</s>")
        {
            self.eog.remove(&s_id);
            self.set_attr(s_id, TokenAttr::NORMAL);
        }
    }

    fn build_special_cache(&mut self) {
        let special = TokenAttr::CONTROL | TokenAttr::USER_DEFINED | TokenAttr::UNKNOWN;
        let mut cache: Vec<u32> =
            (0..self.n_tokens() as u32).filter(|&id| self.attr(id).has(special)).collect();
        // llama.cpp uses an unstable std::sort by length; ties are kept in id order here.
        cache.sort_by_key(|&id| std::cmp::Reverse(self.text(id).map_or(0, <[u8]>::len)));
        self.special_cache = cache;
    }

    fn set_attr_bit(&mut self, text: &str, bit: TokenAttr, on: bool) {
        if let Some(id) = self.text_to_token(text.as_bytes()) {
            let a = self.attr(id);
            self.set_attr(id, if on { a | bit } else { TokenAttr(a.0 & !bit.0) });
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
            self.set_attr_bit("<mask>", TokenAttr::LSTRIP, true);
        } else if any(&name, &["phi-3", "phi3"]) {
            for id in self.special_cache.clone() {
                self.set_attr(id, self.attr(id) | TokenAttr::RSTRIP);
            }
            self.set_attr_bit("</s>", TokenAttr::RSTRIP, true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                self.set_attr_bit(t, TokenAttr::RSTRIP, false);
            }
        } else if any(&name, &["modern-bert"]) {
            self.set_attr_bit("[MASK]", TokenAttr::LSTRIP, true);
        }
    }
}
