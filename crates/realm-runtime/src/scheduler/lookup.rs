//! Prompt lookup decoding: drafts taken from the sequence's own tokens. When the last `n`
//! tokens (the longest `n` from `ngram_max` down to `ngram_min`; 3 by default) occurred before, the tokens
//! that followed that earlier occurrence are proposed as the next ones; one forward pass
//! computes the pending token and every draft token, and the drafts are kept while each is
//! the model's own pick after the one before. Answers that quote or rework their input
//! (extracting fields, editing code, summarising with quotes) repeat long runs of it, and get
//! several tokens per pass; other text rarely matches, and a sequence whose drafts keep
//! failing stops drafting for a while and drafts less after that ([`Backoff`]). Drafts only
//! fill a step up to `step_rows` rows: a few more rows cost little while a step is bound by
//! reading the weights (one or two sequences), but in a large batch the extra rows are compute
//! that the accepted tokens do not pay back.

/// The drafting settings (the serving engine's; see [`super::SchedulerConfig::lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupConfig {
    /// Most draft tokens per step and sequence.
    pub draft_max: usize,
    /// The n-gram sizes tried, longest first.
    pub ngram_max: usize,
    pub ngram_min: usize,
    /// Drafts are added only while the step has fewer rows than this (all sequences' rows).
    pub step_rows: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig { draft_max: 8, ngram_max: 3, ngram_min: 3, step_rows: 16 }
    }
}

/// Up to `max` tokens that followed the latest earlier occurrence of `tokens`' last n-gram.
pub(crate) fn draft(tokens: &[u32], c: &LookupConfig, max: usize) -> Vec<u32> {
    let max = max.min(c.draft_max);
    if max == 0 {
        return Vec::new();
    }
    let len = tokens.len();
    for n in (c.ngram_min.max(1)..=c.ngram_max).rev() {
        if len <= n {
            continue;
        }
        let tail = &tokens[len - n..];
        // The latest start before the tail itself, scanning backwards.
        let mut start = len - n;
        while start > 0 {
            start -= 1;
            if &tokens[start..start + n] == tail {
                let from = start + n;
                let to = (from + max).min(len);
                if to > from {
                    return tokens[from..to].to_vec();
                }
            }
        }
    }
    Vec::new()
}

/// Drafting backs off after drafts that were all rejected: it pauses for 2, 4, … up to 32
/// steps, and resumes at once after a draft that was (partly) accepted. The next draft's
/// length follows the last one's fate: twice the tokens accepted, plus one (a fully accepted
/// draft grows back to the maximum quickly, a mostly rejected one stays short).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    failures: u32,
    pause: u32,
    /// Most tokens of the next draft.
    pub(crate) len: usize,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { failures: 0, pause: 0, len: usize::MAX }
    }
}

impl Backoff {
    /// Whether to draft this step (a paused sequence counts the step).
    pub(crate) fn ready(&mut self) -> bool {
        if self.pause > 0 {
            self.pause -= 1;
            return false;
        }
        true
    }

    pub(crate) fn record(&mut self, accepted: usize) {
        self.len = accepted.saturating_mul(2).saturating_add(1);
        if accepted > 0 {
            self.failures = 0;
        } else {
            self.failures = (self.failures + 1).min(5);
            self.pause = 1 << self.failures;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_follow_the_latest_earlier_ngram() {
        let c = LookupConfig::default();
        // ... 5 6 7 8 9 ... 5 6 7 → 8 9 (the continuation after the earlier 5 6 7)
        let t = [1, 5, 6, 7, 8, 9, 2, 3, 5, 6, 7];
        assert_eq!(draft(&t, &c, 8), vec![8, 9, 2, 3, 5, 6, 7]);
        assert_eq!(draft(&t, &c, 2), vec![8, 9]);
        // the latest occurrence wins
        let t = [5, 6, 7, 1, 5, 6, 7, 2, 5, 6, 7];
        assert_eq!(draft(&t, &c, 1), vec![2]);
        // no repeat of the last three: nothing (shorter n-grams are not matched by default:
        // in free text they propose drafts that mostly fail)
        assert!(draft(&[1, 2, 3, 4, 5], &c, 8).is_empty());
        assert!(draft(&[1, 2, 3, 9, 2, 3], &c, 8).is_empty());
        let two = LookupConfig { ngram_min: 2, ..c };
        assert_eq!(draft(&[1, 2, 3, 9, 2, 3], &two, 8), vec![9, 2, 3]);
        assert!(draft(&[1, 2], &c, 8).is_empty());
        assert!(draft(&[1, 2, 3, 1, 2], &c, 0).is_empty());
    }

    #[test]
    fn backoff_pauses_longer_after_each_failure() {
        let mut b = Backoff::default();
        assert!(b.ready());
        b.record(0);
        assert!(!b.ready());
        assert!(!b.ready());
        assert!(b.ready());
        b.record(0);
        let paused = (0..10).take_while(|_| !b.ready()).count();
        assert_eq!(paused, 4);
        b.record(3);
        assert!(b.ready());
    }
}
