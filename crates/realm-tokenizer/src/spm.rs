//! SentencePiece-style BPE: merge the adjacent pair whose merged text is the highest-scoring
//! token, then resegment anything left that is not a token into byte tokens.
//!
//! Follows `llm_tokenizer_spm_session` in llama.cpp `src/llama-vocab.cpp` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f), with byte fallback through `<0xXX>` tokens.
//! llama.cpp's `rev_merge` map is left out: its `resegment` consults it only for a symbol whose
//! text is not a token, and it only ever holds texts that are tokens (`try_add_bigram` returns
//! before recording a pair whose text is not), so that lookup never succeeds. Every symbol is
//! therefore one token or falls back to bytes. O(n log n) in the text length.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::symbol::{self, Symbol};
use crate::vocab::Vocab;

#[derive(Debug)]
struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Highest score first; equal scores: the leftmost pair first (`llm_bigram_spm::comparator`).
    /// Compared like C++ `<` on floats: -0.0 equals 0.0, NaN ties.
    fn cmp(&self, other: &Self) -> Ordering {
        let by_score = self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal);
        by_score.then_with(|| other.left.cmp(&self.left))
    }
}

struct Session<'v, 't> {
    vocab: &'v Vocab,
    text: &'t [u8],
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

impl Session<'_, '_> {
    fn try_add_bigram(&mut self, left: Option<usize>, right: Option<usize>) {
        let (Some(l), Some(r)) = (left, right) else { return };
        let start = self.symbols[l].start;
        let size = self.symbols[l].len + self.symbols[r].len;
        let Some(id) = self.vocab.text_to_token(&self.text[start..start + size]) else { return };
        let score = self.vocab.score(id).unwrap_or(0.0);
        self.queue.push(Bigram { left: l, right: r, score, size });
    }

    /// Append the token of symbol `i`, or one token per byte where its text is not a token
    /// (`resegment`).
    fn resegment(&self, i: usize, output: &mut Vec<u32>) {
        let s = self.symbols[i];
        let text = &self.text[s.start..s.start + s.len];
        match self.vocab.text_to_token(text) {
            Some(id) => output.push(id),
            None => output.extend(text.iter().filter_map(|&b| self.vocab.byte_to_token(b))),
        }
    }
}

/// Tokenize one already-escaped (`' '` -> `▁`) text fragment and append the ids.
pub(crate) fn tokenize(vocab: &Vocab, text: &[u8], output: &mut Vec<u32>) {
    let mut s = Session { vocab, text, symbols: Vec::new(), queue: BinaryHeap::new() };
    symbol::push_chars(text, &mut s.symbols);
    for i in 1..s.symbols.len() {
        s.try_add_bigram(Some(i - 1), Some(i));
    }
    while let Some(b) = s.queue.pop() {
        let (ls, rs) = (s.symbols[b.left], s.symbols[b.right]);
        if ls.len == 0 || rs.len == 0 || ls.len + rs.len != b.size {
            continue;
        }
        s.symbols[b.left].len += rs.len;
        s.symbols[b.right].len = 0;
        s.symbols[b.left].next = rs.next;
        if let Some(n) = rs.next {
            s.symbols[n].prev = Some(b.left);
        }
        s.try_add_bigram(s.symbols[b.left].prev, Some(b.left));
        s.try_add_bigram(Some(b.left), s.symbols[b.left].next);
    }
    let mut i = if s.symbols.is_empty() { None } else { Some(0) };
    while let Some(k) = i {
        s.resegment(k, output);
        i = s.symbols[k].next;
    }
}
