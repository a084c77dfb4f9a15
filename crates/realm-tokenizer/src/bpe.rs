//! GPT-2 byte-level BPE: pre-tokenize, then merge adjacent symbols by rank within each word.
//!
//! Follows `llm_tokenizer_bpe_session::tokenize` in llama.cpp `src/llama-vocab.cpp` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f): symbols start as single (byte-encoded) characters,
//! a priority queue pops the lowest merge rank (ties: leftmost), stale entries are skipped, and
//! a final symbol that is not a token falls back to one token per byte (dropped if absent).
//! O(n log n) per word.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::symbol::{self, Symbol};
use crate::vocab::Vocab;

/// A candidate merge; ordered so the max-heap pops the lowest rank, then the leftmost pair.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Bigram {
    key: Reverse<(u32, usize)>, // (rank, left)
    right: usize,
    left_len: usize,
    right_len: usize,
}

struct Session<'v> {
    vocab: &'v Vocab,
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
    scratch: Vec<u8>,
}

impl Session<'_> {
    fn add_bigram(&mut self, word: &[u8], left: Option<usize>, right: Option<usize>) {
        let (Some(l), Some(r)) = (left, right) else { return };
        let (ls, rs) = (self.symbols[l], self.symbols[r]);
        self.scratch.clear();
        self.scratch.extend_from_slice(&word[ls.start..ls.start + ls.len]);
        self.scratch.push(b' ');
        self.scratch.extend_from_slice(&word[rs.start..rs.start + rs.len]);
        if let Some(rank) = self.vocab.merges.rank(&self.scratch) {
            self.queue.push(Bigram {
                key: Reverse((rank, l)),
                right: r,
                left_len: ls.len,
                right_len: rs.len,
            });
        }
    }

    /// Merge one word; appends the surviving symbols' byte ranges to `out`.
    fn word(&mut self, word: &[u8], out: &mut Vec<(usize, usize)>) {
        self.symbols.clear();
        self.queue.clear();
        if self.vocab.ignore_merges && self.vocab.text_to_token(word).is_some() {
            out.push((0, word.len()));
            return;
        }
        symbol::push_chars(word, &mut self.symbols);
        for i in 1..self.symbols.len() {
            self.add_bigram(word, Some(i - 1), Some(i));
        }
        while let Some(b) = self.queue.pop() {
            let Reverse((_, l)) = b.key;
            let r = b.right;
            let (ls, rs) = (self.symbols[l], self.symbols[r]);
            // Lengths only grow (or drop to 0), so equal lengths mean the pair text is unchanged.
            if ls.len == 0 || rs.len == 0 || ls.len != b.left_len || rs.len != b.right_len {
                continue;
            }
            self.symbols[l].len += rs.len;
            self.symbols[r].len = 0;
            self.symbols[l].next = rs.next;
            if let Some(n) = rs.next {
                self.symbols[n].prev = Some(l);
            }
            self.add_bigram(word, self.symbols[l].prev, Some(l));
            self.add_bigram(word, Some(l), self.symbols[l].next);
        }
        out.extend(self.symbols.iter().filter(|s| s.len > 0).map(|s| (s.start, s.start + s.len)));
    }
}

/// Tokenize one text fragment (no special tokens inside) and append the ids.
pub(crate) fn tokenize(vocab: &Vocab, text: &[u8], output: &mut Vec<u32>) {
    let Some(pre) = &vocab.pre else { return };
    let words = pre.split_encoded(text);
    let mut session =
        Session { vocab, symbols: Vec::new(), queue: BinaryHeap::new(), scratch: Vec::new() };
    let mut ranges = Vec::new();
    for word in &words {
        ranges.clear();
        session.word(word, &mut ranges);
        for &(a, b) in &ranges {
            let piece = &word[a..b];
            match vocab.text_to_token(piece) {
                Some(id) => output.push(id),
                // Each byte of the encoded text on its own: only ASCII can exist as a token.
                None => {
                    output.extend(piece.iter().filter_map(|&byte| vocab.text_to_token(&[byte])))
                }
            }
        }
    }
}
