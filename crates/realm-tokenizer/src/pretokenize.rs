//! BPE pre-tokenizers: the regex list llama.cpp picks from `tokenizer.ggml.pre`, and the way it
//! applies them.
//!
//! Follows llama.cpp `src/llama-vocab.cpp` (`llm_tokenizer_bpe` regex table and the
//! `tokenizer_pre` -> pre-type mapping in `llama_vocab::impl::load`) and `src/unicode.cpp`
//! (`unicode_regex_split`, `unicode_regex_split_custom_gpt2`, `unicode_regex_split_custom_llama3`),
//! commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f. Each regex in the list splits every piece the
//! previous ones produced; the GPT-2 and Llama-3 regexes run as llama.cpp's hand-written
//! splitters (which differ from a true regex in corner cases, so they are mirrored, not replaced),
//! every other regex runs on [`crate::regex`] with `std::regex` semantics.

use crate::error::{Result, TokenizerError};
use crate::regex::{self, Mode, Regex};
use crate::unicode::{self, CptFlags, cpt_flags, decode_cpts, push_cpt_utf8, push_gpt2_encoded};

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_ORIGINAL: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const JAIS2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}";
const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
const BAILINGMOE: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
const UFAKZEKA: &str =
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const EXAONE_MOE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+";
const MINICPM5: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DEEPSEEK3_MAIN: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
const SPARK_MAIN: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+";
const CJK_KANA: &str = "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+";
const DEEPSEEK_CJK: &str = "[\u{4E00}-\u{9FA5}\u{0800}-\u{4E00}\u{AC00}-\u{D7FF}]+";
// The cased-letter class of deepseek-llm, written with escapes: several of its code points
// (U+2126, U+212A, U+1FBE, ...) have canonical singletons that an editor would silently replace.
const DEEPSEEK_LETTERS: &str = "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+";
const DEEPSEEK_PUNCT: &str =
    "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+";
const PORO: &str = " ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{0964}\u{06D4}\u{060C})]+";

const R_DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
const R_GPT2: &[&str] = &[GPT2];
const R_LLAMA3: &[&str] = &[LLAMA3];
const R_QWEN2: &[&str] = &[QWEN2];
const R_STARCODER: &[&str] = &[r"\p{N}", GPT2];
const R_FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
const R_DEEPSEEK_LLM: &[&str] =
    &["[\r\n]", DEEPSEEK_LETTERS, DEEPSEEK_PUNCT, r"\s+$", DEEPSEEK_CJK, r"\p{N}+"];
const R_DEEPSEEK_CODER: &[&str] = &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DEEPSEEK_CJK, r"\p{N}"];
const R_DEEPSEEK3: &[&str] = &[r"\p{N}{1,3}", CJK_KANA, DEEPSEEK3_MAIN];
const R_SPARK: &[&str] = &[r"\p{N}{1,3}", CJK_KANA, SPARK_MAIN, r"\p{N}"];
const R_PORO: &[&str] = &[PORO];
const R_VIKING: &[&str] = &[PORO, r"\p{N}"];
const R_CHAMELEON: &[&str] = &[
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    r"\p{N}",
    r"[\p{P}!-/:-@\[-`{-~]",
    GPT2,
];
const R_LAGUNA: &[&str] = &["[^\\n]+|[\\n]+", QWEN2];
const R_MINICPM5: &[&str] = &[r"\p{N}{1,3}", MINICPM5];

/// What a `tokenizer.ggml.pre` value selects: its regexes and the vocab flags it changes.
#[derive(Debug)]
pub(crate) struct PreSpec {
    pub regexes: &'static [&'static str],
    /// `clean_spaces` for detokenization (BPE default: true).
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub add_bos: bool,
    pub add_sep: bool,
    /// The pre-type clears the default BOS id (chatglm).
    pub no_bos: bool,
}

const fn spec(regexes: &'static [&'static str], clean_spaces: bool) -> PreSpec {
    PreSpec {
        regexes,
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
        add_sep: false,
        no_bos: false,
    }
}

/// Names llama.cpp knows but this crate does not implement (custom splitters, raw-UTF-8 BPE, ...).
const UNSUPPORTED: &[&str] = &[
    "gemma4",
    "granite-embed-multi-311m",
    "granite-embed-multi-97m",
    "sarvam-moe",
    "whitespace",
    "youtu",
    "tiny_aya",
    "cohere2moe",
    "superbpe",
    "kimi-k2",
    "afmoe",
];

/// The pre-tokenizer spec for a `tokenizer.ggml.pre` value (`None`/empty means "default", as in
/// llama.cpp, which warns that quality will be degraded).
pub(crate) fn lookup(pre: Option<&str>) -> Result<PreSpec> {
    let name = pre.unwrap_or("");
    let s = match name {
        "" | "default" => spec(R_DEFAULT, true),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => {
            PreSpec { ignore_merges: true, add_bos: true, ..spec(R_LLAMA3, true) }
        }
        "tekken" => PreSpec { ignore_merges: true, add_bos: true, ..spec(&[TEKKEN], false) },
        "minicpm5" => PreSpec { ignore_merges: true, ..spec(R_MINICPM5, true) },
        "deepseek-llm" => spec(R_DEEPSEEK_LLM, false),
        "deepseek-coder" => spec(R_DEEPSEEK_CODER, false),
        "deepseek-v3" | "hunyuan-dense" | "hy_v4" | "joyai-llm" => spec(R_DEEPSEEK3, false),
        "spark2_5" => spec(R_SPARK, false),
        "falcon" => spec(R_FALCON, true),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            spec(R_STARCODER, true)
        }
        "smollm" | "command-r" => spec(R_STARCODER, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "exaone4" => {
            spec(R_GPT2, true)
        }
        "trillion" | "granite-docling" => spec(R_GPT2, false),
        "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => {
            PreSpec { add_sep: true, ..spec(R_GPT2, true) }
        }
        "jais-2" => spec(&[JAIS2], true),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "grok-2"
        | "solar-open" => spec(R_QWEN2, false),
        "stablelm2" | "megrez" => spec(R_QWEN2, true),
        "qwen35" => spec(&[QWEN35], false),
        "dbrx" | "smaug-bpe" => spec(R_LLAMA3, true),
        "poro-chat" => spec(R_PORO, false),
        "bloom" | "gpt3-finnish" => spec(R_PORO, true),
        "viking" => spec(R_VIKING, false),
        "glm4" | "chatglm-bpe" => PreSpec { no_bos: true, ..spec(R_LLAMA3, true) },
        "chameleon" => PreSpec { add_bos: true, ..spec(R_CHAMELEON, false) },
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => spec(&[GPT4O], false),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => spec(&[BAILINGMOE], false),
        "seed-coder" => spec(&[SEED_CODER], false),
        "ufakzeka" => spec(&[UFAKZEKA], false),
        "laguna" => spec(R_LAGUNA, false),
        "exaone-moe" => spec(&[EXAONE_MOE], true),
        other if UNSUPPORTED.contains(&other) => {
            return Err(TokenizerError::UnsupportedPreTokenizer { pre: other.into() });
        }
        other => return Err(TokenizerError::UnknownPreTokenizer { pre: other.into() }),
    };
    Ok(s)
}

#[derive(Debug, Clone)]
enum Step {
    Gpt2,
    Llama3,
    Regex(Box<Regex>, Mode),
}

/// A compiled pre-tokenizer: splits text into the words BPE merges within.
#[derive(Debug, Clone)]
pub struct PreTokenizer {
    steps: Vec<Step>,
    need_collapsed: bool,
    need_wide: bool,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp selects for a `tokenizer.ggml.pre` value.
    pub fn from_name(pre: Option<&str>) -> Result<PreTokenizer> {
        PreTokenizer::from_regexes(lookup(pre)?.regexes)
    }

    pub(crate) fn from_regexes(regexes: &[&str]) -> Result<PreTokenizer> {
        let mut steps = Vec::with_capacity(regexes.len());
        for &pattern in regexes {
            let step = if pattern == GPT2 {
                Step::Gpt2
            } else if pattern == LLAMA3 || pattern == LLAMA3_ORIGINAL {
                Step::Llama3
            } else {
                let mode = if pattern.contains(r"\p{") { Mode::Collapsed } else { Mode::Wide };
                let re = Regex::new(pattern, mode)
                    .map_err(|reason| TokenizerError::Regex { pattern: pattern.into(), reason })?;
                Step::Regex(Box::new(re), mode)
            };
            steps.push(step);
        }
        let need_collapsed = steps.iter().any(|s| matches!(s, Step::Regex(_, Mode::Collapsed)));
        let need_wide = steps.iter().any(|s| matches!(s, Step::Regex(_, Mode::Wide)));
        Ok(PreTokenizer { steps, need_collapsed, need_wide })
    }

    /// Piece lengths (in code points) of `cpts` after every step.
    fn offsets(&self, cpts: &[u32]) -> Vec<usize> {
        let collapsed = if self.need_collapsed { collapse(cpts) } else { Vec::new() };
        let wide = if self.need_wide { widen(cpts) } else { Vec::new() };
        let mut offsets = vec![cpts.len()];
        for step in &self.steps {
            let mut next = Vec::with_capacity(offsets.len());
            let mut start = 0;
            for &len in &offsets {
                let (lo, hi) = (start, start + len);
                match step {
                    Step::Gpt2 => split_gpt2(cpts, lo, hi, &mut next),
                    Step::Llama3 => split_llama3(cpts, lo, hi, &mut next),
                    Step::Regex(re, Mode::Collapsed) => re.split(&collapsed, lo, hi, &mut next),
                    Step::Regex(re, Mode::Wide) => re.split(&wide, lo, hi, &mut next),
                }
                start = hi;
            }
            offsets = next;
        }
        offsets
    }

    /// The words of `text` before byte-level encoding (handy to inspect a pre-tokenizer).
    pub fn split(&self, text: &str) -> Vec<String> {
        let cpts = decode_cpts(text.as_bytes());
        let mut words = Vec::new();
        let mut start = 0;
        for len in self.offsets(&cpts) {
            let mut bytes = Vec::new();
            for &c in &cpts[start..start + len] {
                push_cpt_utf8(c, &mut bytes);
            }
            words.push(String::from_utf8_lossy(&bytes).into_owned());
            start += len;
        }
        words
    }

    /// The words of `text`, each GPT-2 byte-level encoded (`unicode_regex_split` with
    /// `byte_encode = true`): what BPE merges run on.
    pub(crate) fn split_encoded(&self, text: &[u8]) -> Vec<Vec<u8>> {
        let cpts = decode_cpts(text);
        let mut words = Vec::new();
        let mut start = 0;
        let mut utf8 = Vec::new();
        for len in self.offsets(&cpts) {
            utf8.clear();
            for &c in &cpts[start..start + len] {
                push_cpt_utf8(c, &mut utf8);
            }
            let mut word = Vec::with_capacity(utf8.len() * 2);
            push_gpt2_encoded(&utf8, &mut word);
            words.push(word);
            start += len;
        }
        words
    }
}

/// The collapsed text of `unicode_regex_split`: one symbol per code point.
fn collapse(cpts: &[u32]) -> Vec<u32> {
    cpts.iter()
        .map(|&c| {
            if c < 128 {
                return c;
            }
            let f = cpt_flags(c);
            if f.is_whitespace() {
                return 0x0B;
            }
            match f.category() {
                CptFlags::NUMBER => regex::COLLAPSED_NUMBER,
                CptFlags::LETTER => regex::COLLAPSED_LETTER,
                CptFlags::PUNCTUATION => regex::COLLAPSED_PUNCTUATION,
                CptFlags::ACCENT_MARK => regex::COLLAPSED_ACCENT_MARK,
                CptFlags::SYMBOL => regex::COLLAPSED_SYMBOL,
                _ => regex::COLLAPSED_OTHER,
            }
        })
        .collect()
}

/// The `std::wregex` input: code points, non-ASCII whitespace replaced by 0x0B.
fn widen(cpts: &[u32]) -> Vec<u32> {
    cpts.iter().map(|&c| if c > 0x7F && cpt_flags(c).is_whitespace() { 0x0B } else { c }).collect()
}

/// Cursor over one segment `[lo, hi)` with out-of-range positions reading as "nothing".
struct Seg<'a> {
    cpts: &'a [u32],
    lo: usize,
    hi: usize,
    prev_end: usize,
}

const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;

impl<'a> Seg<'a> {
    fn new(cpts: &'a [u32], lo: usize, hi: usize) -> Self {
        Seg { cpts, lo, hi, prev_end: lo }
    }
    fn cpt(&self, pos: usize) -> u32 {
        if self.lo <= pos && pos < self.hi { self.cpts[pos] } else { OUT_OF_RANGE }
    }
    fn flags(&self, pos: usize) -> CptFlags {
        if self.lo <= pos && pos < self.hi { cpt_flags(self.cpts[pos]) } else { CptFlags::NONE }
    }
    /// Close the current piece at `end`; returns its length.
    fn add(&mut self, end: usize, out: &mut Vec<usize>) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            out.push(len);
        }
        self.prev_end = end;
        len
    }
    /// Length of the contraction (`'s`, `'t`, `'re`, ...) at `pos`, if any.
    fn contraction(&self, pos: usize, lower: fn(u32) -> u32) -> Option<usize> {
        if self.cpt(pos) != u32::from(b'\'') || pos + 1 >= self.hi {
            return None;
        }
        let is = |c: u32, b: u8| c == u32::from(b);
        let n1 = lower(self.cpt(pos + 1));
        if is(n1, b's') || is(n1, b't') || is(n1, b'm') || is(n1, b'd') {
            return Some(2);
        }
        if pos + 2 < self.hi {
            let n2 = lower(self.cpt(pos + 2));
            if (is(n1, b'r') && is(n2, b'e'))
                || (is(n1, b'v') && is(n2, b'e'))
                || (is(n1, b'l') && is(n2, b'l'))
            {
                return Some(3);
            }
        }
        None
    }
    /// Number of whitespace code points from `pos` on, and the end of the last `\r`/`\n` among them.
    fn whitespace_run(&self, pos: usize) -> (usize, usize) {
        let (mut n, mut last_rn) = (0, 0);
        while self.flags(pos + n).is_whitespace() {
            let c = self.cpt(pos + n);
            if c == 0x0D || c == 0x0A {
                last_rn = pos + n + 1;
            }
            n += 1;
        }
        (n, last_rn)
    }
}

fn not_wln(f: CptFlags) -> bool {
    !(f.is_whitespace() || f.is_letter() || f.is_number())
}

/// `unicode_regex_split_custom_gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn split_gpt2(cpts: &[u32], lo: usize, hi: usize, out: &mut Vec<usize>) {
    let mut s = Seg::new(cpts, lo, hi);
    let mut pos = lo;
    while pos < hi {
        let cpt = s.cpt(pos);
        let flags = s.flags(pos);
        if let Some(n) = s.contraction(pos, |c| c) {
            pos += s.add(pos + n, out);
            continue;
        }
        let space = cpt == u32::from(b' ');
        let mut f2 = if space { s.flags(pos + 1) } else { flags };
        type Pred = fn(CptFlags) -> bool;
        let classes: [Pred; 3] =
            [CptFlags::is_letter, CptFlags::is_number, |f| not_wln(f) && f.bits() != 0];
        if let Some(pred) = classes.into_iter().find(|p| p(f2)) {
            pos += usize::from(space);
            while pred(f2) {
                pos += 1;
                f2 = s.flags(pos);
            }
            s.add(pos, out);
            continue;
        }
        let (n, _) = s.whitespace_run(pos);
        if n > 1 && s.cpt(pos + n) != OUT_OF_RANGE {
            pos += n - 1;
            s.add(pos, out);
            continue;
        }
        if n > 0 {
            pos += n;
            s.add(pos, out);
            continue;
        }
        pos += 1;
        s.add(pos, out);
    }
}

/// `unicode_regex_split_custom_llama3`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
/// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
fn split_llama3(cpts: &[u32], lo: usize, hi: usize, out: &mut Vec<usize>) {
    let mut s = Seg::new(cpts, lo, hi);
    let mut pos = lo;
    let is_rn = |c: u32| c == 0x0D || c == 0x0A;
    while pos < hi {
        let cpt = s.cpt(pos);
        let flags = s.flags(pos);
        if let Some(n) = s.contraction(pos, unicode::to_lower) {
            pos += s.add(pos + n, out);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(is_rn(cpt) || flags.is_number()) && (flags.is_letter() || s.flags(pos + 1).is_letter())
        {
            pos += 1;
            while s.flags(pos).is_letter() {
                pos += 1;
            }
            s.add(pos, out);
            continue;
        }
        // \p{N}{1,3}
        if flags.is_number() {
            let mut ini = pos;
            while s.flags(pos).is_number() {
                pos += 1;
                if pos - ini >= 3 {
                    s.add(pos, out);
                    ini = pos;
                }
            }
            s.add(pos, out);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*  (llama.cpp tests the first code point's flags here)
        let space = cpt == u32::from(b' ');
        let mut f2 = if space { s.flags(pos + 1) } else { flags };
        if not_wln(f2) && flags.bits() != 0 {
            pos += usize::from(space);
            while not_wln(f2) && f2.bits() != 0 {
                pos += 1;
                f2 = s.flags(pos);
            }
            while is_rn(s.cpt(pos)) {
                pos += 1;
            }
            s.add(pos, out);
            continue;
        }
        let (n, last_rn) = s.whitespace_run(pos);
        // \s*[\r\n]+
        if last_rn > 0 {
            pos = last_rn;
            s.add(pos, out);
            continue;
        }
        // \s+(?!\S)
        if n > 1 && s.cpt(pos + n) != OUT_OF_RANGE {
            pos += n - 1;
            s.add(pos, out);
            continue;
        }
        // \s+
        if n > 0 {
            pos += n;
            s.add(pos, out);
            continue;
        }
        pos += 1;
        s.add(pos, out);
    }
}
