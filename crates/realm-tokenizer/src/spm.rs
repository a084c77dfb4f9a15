//! SentencePiece-style BPE: merge the adjacent pair whose merged text is the highest-scoring
//! token, then resegment anything left that is not a token into byte tokens.
//!
//! Follows `llm_tokenizer_spm_session` in llama.cpp `src/llama-vocab.cpp` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f), including its `rev_merge` map keyed by text (last
//! pair wins) and byte fallback through `<0xXX>` tokens. O(n log n) in the text length.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

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
    rev_merge: HashMap<&'t [u8], (usize, usize)>,
}

impl<'t> Session<'_, 't> {
    fn try_add_bigram(&mut self, left: Option<usize>, right: Option<usize>) {
        let (Some(l), Some(r)) = (left, right) else { return };
        let start = self.symbols[l].start;
        let size = self.symbols[l].len + self.symbols[r].len;
        let text: &'t [u8] = &self.text[start..start + size];
        let Some(id) = self.vocab.text_to_token(text) else { return };
        let score = self.vocab.tokens[id as usize].score;
        self.queue.push(Bigram { left: l, right: r, score, size });
        self.rev_merge.insert(text, (l, r));
    }

    /// Append the tokens of symbol `root`, splitting it along `rev_merge` when it is not a
    /// token and falling back to bytes (`resegment`, made iterative).
    fn resegment(&self, root: usize, output: &mut Vec<u32>) {
        let mut stack = vec![root];
        // llama.cpp recurses without a bound; a hostile vocab could loop, so cap the work.
        let mut budget = 4 * self.text.len() + 16;
        while let Some(i) = stack.pop() {
            budget = budget.saturating_sub(1);
            let s = self.symbols[i];
            let text = &self.text[s.start..s.start + s.len];
            if let Some(id) = self.vocab.text_to_token(text) {
                output.push(id);
                continue;
            }
            match self.rev_merge.get(text) {
                Some(&(l, r)) if budget > 0 => {
                    stack.push(r);
                    stack.push(l);
                }
                _ => output.extend(text.iter().filter_map(|&b| self.vocab.byte_to_token(b))),
            }
        }
    }
}

/// Tokenize one already-escaped (`' '` -> `▁`) text fragment and append the ids.
pub(crate) fn tokenize(vocab: &Vocab, text: &[u8], output: &mut Vec<u32>) {
    let mut s = Session {
        vocab,
        text,
        symbols: Vec::new(),
        queue: BinaryHeap::new(),
        rev_merge: HashMap::new(),
    };
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
