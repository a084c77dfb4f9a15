//! The doubly linked symbol list both merge tokenizers (BPE and SPM) start from: one symbol per
//! UTF-8 character of the text, as llama.cpp's `llm_symbol` (commit 0c1e570).

use crate::unicode::utf8_len;

/// A span of the text (`start .. start + len`) with its neighbours in the current segmentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Symbol {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) prev: Option<usize>,
    pub(crate) next: Option<usize>,
}

/// Append one symbol per UTF-8 character of `text` (a truncated last sequence stays one symbol).
pub(crate) fn push_chars(text: &[u8], out: &mut Vec<Symbol>) {
    let mut offset = 0;
    while offset < text.len() {
        let len = utf8_len(text[offset]).min(text.len() - offset);
        let index = out.len();
        out.push(Symbol {
            start: offset,
            len,
            prev: index.checked_sub(1),
            next: (offset + len < text.len()).then_some(index + 1),
        });
        offset += len;
    }
}
