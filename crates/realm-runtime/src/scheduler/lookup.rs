//! Prompt lookup decoding: drafts taken from the sequence's own tokens. When the last `n`
//! tokens (the longest `n` from `ngram_max` down to `ngram_min`; 3 by default) occurred before, the tokens
//! that followed that earlier occurrence are proposed as the next ones; one forward pass
//! computes the pending token and every draft token, and the drafts are kept while each is
//! the model's own pick after the one before. Answers that quote or rework their input
//! (extracting fields, editing code, summarising with quotes) repeat long runs of it, and get
//! several tokens per pass; other text rarely matches, and a sequence whose drafts keep
//! failing stops drafting for a while and drafts less after that ([`Backoff`]). Drafts only
//! fill a step up to `step_rows` rows, and only where they pay: a few more rows cost little
//! while a step is bound by reading the weights (one or two sequences), but in a large batch
//! each extra row is compute that only a likely draft pays back. [`StepCost`] measures what a
//! row more costs against what a token of the step is worth, and a sequence drafts a token
//! only while the chance that it is accepted (its own rate so far, [`Backoff::rate`]) is
//! higher than that ratio.

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
    /// Weigh each draft token's chance against what its row costs ([`StepCost`]); `false`
    /// drafts whenever the n-gram matches (up to `step_rows`).
    pub measured: bool,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig { draft_max: 8, ngram_max: 3, ngram_min: 3, step_rows: 16, measured: true }
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
/// draft grows back to the maximum quickly, a mostly rejected one stays short). Each draft
/// position is also counted, accepted or not, into a running rate (recent positions weigh
/// most); a sequence that does not draft because the rate is too low for the step still has
/// its would-be draft token checked against its pick ([`Backoff::observe`]), so the rate
/// follows the text (an answer that starts to quote or repeat itself drafts again).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    failures: u32,
    pause: u32,
    /// Most tokens of the next draft.
    pub(crate) len: usize,
    /// Decayed counts of draft positions accepted and tried.
    hits: f64,
    tries: f64,
    /// The first token of a draft not sent (too unlikely for the step): compared with the
    /// sequence's next pick.
    pub(crate) shadow: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        // A prior of 4 positions, 3 accepted: a new sequence drafts unless the step is so
        // large that only very likely drafts pay, and its own record soon replaces the prior.
        Backoff { failures: 0, pause: 0, len: usize::MAX, hits: 3.0, tries: 4.0, shadow: None }
    }
}

/// How much the counts of earlier draft positions weigh against a new one.
const DECAY: f64 = 0.9;

/// Step times by row count: what a row more costs a step, against what one of the step's
/// tokens is worth. A decayed mean per row count, of steps that only decode (prompt rows cost
/// differently).
#[derive(Debug, Clone)]
pub(crate) struct StepCost {
    seconds: Vec<Option<f64>>,
}

/// Most rows [`StepCost`] keeps times for; the slope is taken over up to this many more rows.
const COST_ROWS: usize = 64;
const SLOPE_SPAN: usize = 8;

impl Default for StepCost {
    fn default() -> Self {
        StepCost { seconds: vec![None; COST_ROWS + 1] }
    }
}

impl StepCost {
    pub(crate) fn record(&mut self, rows: usize, seconds: f64) {
        if let Some(slot) = self.seconds.get_mut(rows).filter(|_| rows > 0) {
            let s = seconds.max(0.0);
            *slot = Some(slot.map_or(s, |old| 0.8 * old + 0.2 * s));
        }
    }

    /// The acceptance rate a draft token needs to pay for its row in a step of `n` rows: the
    /// cost of a row more over the cost per token of the step (a row of an `n`-row step that
    /// is compute-bound costs about `1 / n` of it, and then only a near-certain draft pays).
    /// 0 while the times around `n` are not measured yet: drafting measures them.
    pub(crate) fn threshold(&self, n: usize) -> f64 {
        let at = |r: usize| self.seconds.get(r).copied().flatten();
        let lo = (n.saturating_sub(SLOPE_SPAN).max(1)..=n).rev().find_map(|r| Some((r, at(r)?)));
        let hi = (n + 1..=n + SLOPE_SPAN).rev().find_map(|r| Some((r, at(r)?)));
        let (Some((lo, t_lo)), Some((hi, t_hi))) = (lo, hi) else { return 0.0 };
        let slope = ((t_hi - t_lo) / (hi - lo) as f64).max(0.0);
        let t_n = t_lo + slope * (n - lo) as f64;
        if t_n <= 0.0 {
            return 0.0;
        }
        (slope * n as f64 / t_n).min(1.0)
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

    /// The accepted share of recent draft positions.
    pub(crate) fn rate(&self) -> f64 {
        self.hits / self.tries
    }

    /// Most draft tokens worth a row each where a draft token needs a chance of `threshold`:
    /// the `k`-th is kept only if the `k - 1` before it are, with a chance of `rate^k`.
    pub(crate) fn worth(&self, threshold: f64) -> usize {
        let (p, mut chance, mut k) = (self.rate(), 1.0, 0);
        while k < 64 {
            chance *= p;
            if chance <= threshold {
                break;
            }
            k += 1;
        }
        k
    }

    fn count(&mut self, hits: usize, tries: usize) {
        for i in 0..tries {
            self.hits = self.hits * DECAY + if i < hits { 1.0 } else { 0.0 };
            self.tries = self.tries * DECAY + 1.0;
        }
    }

    /// The pick after a step without a draft, when a draft token was left out: counted as a
    /// draft position (accepted if it is that token).
    pub(crate) fn observe(&mut self, picked: u32) {
        if let Some(t) = self.shadow.take() {
            self.count(usize::from(t == picked), 1);
        }
    }

    /// A draft of `drafted` tokens of which the first `accepted` were kept.
    pub(crate) fn record(&mut self, drafted: usize, accepted: usize) {
        // The positions up to the first rejected one were tried; the rest were not reached.
        self.count(accepted, (accepted + 1).min(drafted));
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
        b.record(4, 0);
        assert!(!b.ready());
        assert!(!b.ready());
        assert!(b.ready());
        b.record(4, 0);
        let paused = (0..10).take_while(|_| !b.ready()).count();
        assert_eq!(paused, 4);
        b.record(4, 3);
        assert!(b.ready());
    }

    #[test]
    fn the_rate_follows_accepted_positions_and_sets_the_draft_length() {
        let mut b = Backoff::default();
        assert_eq!(b.rate(), 0.75);
        // No threshold: as long as chances stay above 0.
        assert_eq!(b.worth(0.0), 64);
        // 0.75, 0.56, 0.42, 0.32 > 0.3 ≥ 0.24
        assert_eq!(b.worth(0.3), 4);
        for _ in 0..30 {
            b.record(8, 0);
        }
        assert!(b.rate() < 0.05, "{}", b.rate());
        assert_eq!(b.worth(0.1), 0);
        // Drafts left out still count: the text starts to repeat itself, the rate comes back.
        for _ in 0..30 {
            b.shadow = Some(7);
            b.observe(7);
        }
        assert!(b.rate() > 0.9, "{}", b.rate());
        assert_eq!(b.shadow, None);
        // A draft accepted whole counts every position; one rejected at the third counts three.
        let mut a = Backoff::default();
        a.record(4, 4);
        let mut c = Backoff::default();
        c.record(4, 2);
        assert!(a.rate() > c.rate());
    }

    #[test]
    fn the_threshold_is_a_rows_cost_over_a_tokens_share() {
        let mut c = StepCost::default();
        assert_eq!(c.threshold(8), 0.0);
        // 1 ms + 0.5 ms per row: at 8 rows a row more costs 0.5 ms, a token's share is
        // 5 ms / 8.
        for r in 1..=16 {
            c.record(r, 0.001 + 0.0005 * r as f64);
        }
        assert!((c.threshold(8) - 0.8).abs() < 1e-9, "{}", c.threshold(8));
        assert!((c.threshold(1) - 0.5 / 1.5).abs() < 1e-9, "{}", c.threshold(1));
        // Weight-bound: rows cost nothing more, every draft pays.
        let mut flat = StepCost::default();
        flat.record(1, 0.004);
        flat.record(9, 0.004);
        assert_eq!(flat.threshold(1), 0.0);
        // Nothing measured above n: 0, drafting finds out.
        assert_eq!(c.threshold(16), 0.0);
        // Row counts out of the table are not kept (and do not panic).
        c.record(0, 1.0);
        c.record(10_000, 1.0);
        assert!((c.threshold(8) - 0.8).abs() < 1e-9);
    }
}
