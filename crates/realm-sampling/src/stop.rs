//! Stop strings for streamed output: detect a match across chunk boundaries and never let
//! the user see part of a stop string.
//!
//! The caller keeps the whole generated text and how much of it it has emitted. After
//! appending each decoded chunk it calls [`StopStrings::scan`]:
//!
//! - [`StopScan::Stop`]: a stop string starts at byte `at`; emit `text[emitted..at]` and
//!   stop generating. The stop string itself is not part of the output.
//! - [`StopScan::Continue`]: emit `text[emitted..safe_len]` and set `emitted = safe_len`.
//!   `text[safe_len..]` is held back: it is the longest suffix of the text that is also the
//!   start of some stop string, so it may still turn into one (`<` or `</` while waiting for
//!   `</s>`). If the next chunk breaks the pattern, the held text is emitted then.
//!
//! Matching is on exact bytes of UTF-8 text, so every position returned is a char boundary.
//! When several stop strings complete, the one that starts first wins; at the same start,
//! the one listed first. A complete match always wins over a longer stop string that is
//! still only partly there (llama.cpp's server does the same).

/// The outcome of [`StopStrings::scan`]; byte offsets into the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopScan {
    /// No stop string has matched; `text[..safe_len]` may be shown.
    Continue {
        /// End of the text that is safe to emit; the rest is held back.
        safe_len: usize,
    },
    /// Stop string number `index` (as given to [`StopStrings::new`]) starts at byte `at`.
    Stop {
        /// Where the match starts: `text[..at]` is the final output.
        at: usize,
        /// Which stop string matched.
        index: usize,
    },
}

/// A set of stop strings. Empty strings are kept (so indices match the caller's list) but
/// never match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopStrings {
    stops: Vec<String>,
    /// Length in bytes of the longest stop string.
    longest: usize,
}

impl StopStrings {
    /// Takes the stop strings in priority order.
    pub fn new(stops: Vec<String>) -> Self {
        let longest = stops.iter().map(String::len).max().unwrap_or(0);
        Self { stops, longest }
    }

    /// The stop strings, as given.
    pub fn stops(&self) -> &[String] {
        &self.stops
    }

    /// Whether no stop string can ever match.
    pub fn is_empty(&self) -> bool {
        self.longest == 0
    }

    /// Scans `text`, the whole text generated so far, of which the first `emitted` bytes
    /// have been shown already (`0` at first, then the last `safe_len`). Only
    /// `text[emitted..]` is searched: the hold-back guarantees no stop string starts
    /// earlier. Each call costs O((text.len() - emitted) × total stop length).
    ///
    /// `emitted` past the end is clamped to `text.len()`, and one inside a character is
    /// moved back to that character's start.
    pub fn scan(&self, text: &str, emitted: usize) -> StopScan {
        let mut from = emitted.min(text.len());
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        if let Some((at, index)) = self.first_match(text, from) {
            return StopScan::Stop { at, index };
        }
        StopScan::Continue { safe_len: text.len() - self.held_back(text.as_bytes(), from) }
    }

    /// The earliest complete match at or after `from`, ties to the lower index.
    fn first_match(&self, text: &str, from: usize) -> Option<(usize, usize)> {
        let tail = &text[from..];
        let mut best: Option<(usize, usize)> = None;
        for (index, stop) in self.stops.iter().enumerate() {
            if stop.is_empty() {
                continue;
            }
            if let Some(pos) = tail.find(stop.as_str())
                && best.is_none_or(|(at, _)| from + pos < at)
            {
                best = Some((from + pos, index));
            }
        }
        best
    }

    /// Length of the longest suffix of `text[from..]` that is a proper prefix of a stop
    /// string.
    fn held_back(&self, text: &[u8], from: usize) -> usize {
        let max = self.longest.saturating_sub(1).min(text.len() - from);
        (1..=max)
            .rev()
            .find(|&k| {
                let suffix = &text[text.len() - k..];
                self.stops.iter().any(|s| s.len() > k && s.as_bytes().starts_with(suffix))
            })
            .unwrap_or(0)
    }
}
