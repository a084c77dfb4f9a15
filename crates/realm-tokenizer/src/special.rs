//! Splitting raw text around special tokens before the model tokenizer runs.
//!
//! Follows `llama_vocab::impl::tokenizer_st_partition` in llama.cpp `src/llama-vocab.cpp` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f): special tokens are tried one at a time, longest
//! text first; each one splits every text fragment at all its (non-overlapping, leftmost-first)
//! occurrences. With `parse_special == false` control and unknown tokens are skipped but
//! user-defined tokens still match. LSTRIP/RSTRIP tokens eat adjacent ASCII whitespace.

use crate::attr::TokenAttr;
use crate::vocab::Vocab;

/// A piece of the input: raw text (a byte range) or an already-decided token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    Text(usize, usize),
    Token(u32),
}

/// C `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    b == b' ' || (0x09..=0x0D).contains(&b)
}

/// Positions of every byte value in the text, for fast first-byte candidate lookup.
struct ByteIndex {
    positions: Vec<Vec<usize>>,
}

impl ByteIndex {
    fn new(text: &[u8]) -> ByteIndex {
        let mut positions = vec![Vec::new(); 256];
        for (i, &b) in text.iter().enumerate() {
            positions[usize::from(b)].push(i);
        }
        ByteIndex { positions }
    }

    /// First occurrence of `needle` inside `text[lo..hi]` (`std::string_view::find`).
    fn find(&self, text: &[u8], needle: &[u8], lo: usize, hi: usize) -> Option<usize> {
        let first = *needle.first()?;
        let list = &self.positions[usize::from(first)];
        let from = list.partition_point(|&p| p < lo);
        list[from..]
            .iter()
            .copied()
            .take_while(|&p| p + needle.len() <= hi)
            .find(|&p| &text[p..p + needle.len()] == needle)
    }
}

/// Split `text` into fragments (`parse_special` as in `llama_tokenize`).
pub(crate) fn partition(vocab: &Vocab, text: &[u8], parse_special: bool) -> Vec<Fragment> {
    let mut buffer = Vec::new();
    if text.is_empty() {
        return buffer;
    }
    buffer.push(Fragment::Text(0, text.len()));
    let index = ByteIndex::new(text);
    let mut next = Vec::new();
    for &id in &vocab.special_cache {
        let attr = vocab.attr(id);
        if !parse_special && attr.has(TokenAttr::CONTROL | TokenAttr::UNKNOWN) {
            continue;
        }
        let Some(needle) = vocab.text(id) else { continue };
        // A token absent from the whole text leaves every fragment as it is; skipping its pass
        // saves copying the fragment list once per special token (Gemma 3 has 6,414).
        if index.find(text, needle, 0, text.len()).is_none() {
            continue;
        }
        let lstrip = attr.has(TokenAttr::LSTRIP);
        let rstrip = attr.has(TokenAttr::RSTRIP);
        next.clear();
        for &frag in &buffer {
            let Fragment::Text(mut lo, hi) = frag else {
                next.push(frag);
                continue;
            };
            loop {
                let Some(m) = index.find(text, needle, lo, hi) else {
                    if hi > lo {
                        next.push(Fragment::Text(lo, hi));
                    }
                    break;
                };
                let mut left_end = m;
                if lstrip {
                    while left_end > lo && is_c_space(text[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > lo {
                    next.push(Fragment::Text(lo, left_end));
                }
                next.push(Fragment::Token(id));
                let mut right = m + needle.len();
                if right >= hi {
                    break;
                }
                if rstrip {
                    while right < hi && is_c_space(text[right]) {
                        right += 1;
                    }
                }
                lo = right;
            }
        }
        std::mem::swap(&mut buffer, &mut next);
    }
    buffer
}
