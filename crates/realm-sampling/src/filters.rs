//! The stages of the chain, each over the candidate scratch.
//!
//! Semantics follow llama.cpp `src/llama-sampling.cpp` (penalties, top-k, top-p, min-p,
//! temp, dist) at commit `0344068cf112e524eb3fbdbd58c171870b63e56c`; the code is written
//! independently. Where llama.cpp leaves an order unspecified (`std::partial_sort` on equal
//! logits), Realm ranks by logit descending, then token id ascending, so the kept set and the
//! draw are a pure function of the inputs on every platform.

use std::cmp::Ordering;

use crate::math::exp;
use crate::{SamplingError, SamplingParams};

/// One token still in the running: its id and its (penalized) logit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// The logit after the penalties, before temperature.
    pub logit: f32,
}

/// The candidates and whether they are in [`rank`] order.
#[derive(Debug, Clone, Default)]
pub(crate) struct CandidateSet {
    pub(crate) items: Vec<Candidate>,
    pub(crate) sorted: bool,
}

/// Descending logit, ties to the lower id. Logits are never NaN here, so comparing with
/// `partial_cmp` is a total order, and `-0.0` ties with `+0.0` as it does in a greedy `>`.
pub(crate) fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.partial_cmp(&a.logit).unwrap_or(Ordering::Equal).then(a.id.cmp(&b.id))
}

/// Top-p on unsorted candidates buckets them by logit below the max, so that only the
/// bucket holding the cut is sorted (llama.cpp `llama_token_data_array_partial_sort` buckets
/// too, over a fixed range). Buckets span the candidates' logit range, at most
/// `TOP_P_RANGE` (e^-64 ≈ 1.6e-28: anything lower shares the last bucket).
const TOP_P_BUCKETS: usize = 256;
const TOP_P_RANGE: f32 = 64.0;

impl CandidateSet {
    /// Loads `logits` as candidates in id order, applying the penalties on the way and
    /// leaving out banned (`-inf`) tokens, which could never be drawn. `window` holds the
    /// recent tokens sorted ascending (empty when the penalties are off). NaN or `+inf` in
    /// the input, or produced by a penalty, is an error; so is having nothing left.
    pub(crate) fn load(
        &mut self,
        op: &'static str,
        logits: &[f32],
        window: &[u32],
        params: &SamplingParams,
    ) -> Result<(), SamplingError> {
        self.items.clear();
        self.sorted = false;
        // Ids and window both ascend, so one merge walk finds each penalized token; window
        // ids `>= n_vocab` (a caller's mistake in `accept`) are simply never reached.
        let mut pending = window;
        for (id, &raw) in (0u32..).zip(logits) {
            if raw.is_nan() || raw == f32::INFINITY {
                return Err(SamplingError::NonFiniteLogit { op, token: id, value: raw });
            }
            let mut logit = raw;
            if pending.first() == Some(&id) {
                let count = pending.iter().take_while(|&&t| t == id).count();
                pending = &pending[count..];
                logit = penalized(raw, count, params);
                if logit.is_nan() || logit == f32::INFINITY {
                    return Err(SamplingError::PenaltyOverflow { op, token: id, value: logit });
                }
            }
            if logit > f32::NEG_INFINITY {
                self.items.push(Candidate { id, logit });
            }
        }
        if self.items.is_empty() { Err(SamplingError::NoCandidates { op }) } else { Ok(()) }
    }

    /// The first candidate with the highest logit; in id order that is the lowest id.
    pub(crate) fn argmax(&self) -> Option<u32> {
        let mut best = self.items.first()?;
        for c in &self.items[1..] {
            if c.logit > best.logit {
                best = c;
            }
        }
        Some(best.id)
    }

    /// Sorts everything into [`rank`] order, if not already.
    pub(crate) fn sort(&mut self) {
        if !self.sorted {
            self.items.sort_unstable_by(rank);
            self.sorted = true;
        }
    }

    /// Keeps the `k` best candidates, sorted; `0` or `k >= len` = off (no sorting).
    pub(crate) fn top_k(&mut self, k: u32) {
        let k = k as usize;
        if k == 0 || k >= self.items.len() {
            return;
        }
        select_prefix(&mut self.items, k);
        self.items.truncate(k);
        self.sorted = true;
    }

    /// Keeps the smallest best-first prefix whose softmax mass (temperature 1, over the
    /// current candidates) reaches `p`; `p >= 1` = off.
    ///
    /// Mass is summed unnormalized and compared with `p * total`; llama.cpp sums normalized
    /// probabilities. The two differ only in rounding, at a knife-edge cut.
    pub(crate) fn top_p(&mut self, p: f32) {
        if p >= 1.0 || self.items.len() <= 1 {
            return;
        }
        if self.sorted {
            let max = self.max_logit();
            let mut total = 0.0;
            for c in &self.items {
                total += exp(f64::from(c.logit) - max);
            }
            self.cut_at_mass(0, 0.0, f64::from(p) * total, max);
        } else {
            self.top_p_unsorted(f64::from(p));
        }
    }

    /// Top-p without a full sort: one pass sums the mass per logit bucket, the bucket where
    /// the running mass reaches the target holds the cut, and only that bucket is sorted.
    /// The kept candidates are left unsorted.
    fn top_p_unsorted(&mut self, p: f64) {
        let (mut max, mut min) = (f32::NEG_INFINITY, f32::INFINITY);
        for c in &self.items {
            max = max.max(c.logit);
            min = min.min(c.logit);
        }
        let range = (max - min).min(TOP_P_RANGE);
        let width = if range > 0.0 { range / TOP_P_BUCKETS as f32 } else { 1.0 };
        // max - l >= 0; a float-to-int cast saturates, so a huge gap lands in the last bucket.
        let bucket = |l: f32| (((max - l) / width) as usize).min(TOP_P_BUCKETS - 1);

        let mut mass = [0.0f64; TOP_P_BUCKETS];
        let mut total = 0.0;
        for c in &self.items {
            let w = exp(f64::from(c.logit) - f64::from(max));
            total += w;
            mass[bucket(c.logit)] += w;
        }
        let target = p * total;
        let mut above = 0.0;
        let mut cut = TOP_P_BUCKETS - 1;
        for (b, &m) in mass.iter().enumerate() {
            if above + m >= target {
                cut = b;
                break;
            }
            above += m;
        }
        // [buckets above the cut | the cut bucket, sorted | the rest]
        let kept = partition(&mut self.items, |c| bucket(c.logit) < cut);
        let end = kept + partition(&mut self.items[kept..], |c| bucket(c.logit) == cut);
        self.items[kept..end].sort_unstable_by(rank);
        if !self.cut_at_mass(kept, above, target, f64::from(max)) {
            // Rounding put the target just past the cut bucket: walk on, in rank order.
            self.items[end..].sort_unstable_by(rank);
            self.cut_at_mass(end, above + mass[cut], target, f64::from(max));
        }
        self.sorted = false;
    }

    /// Walks `items[start..]` (in rank order) adding e^(logit - max) to `mass`; truncates
    /// after the candidate where it reaches `target` and returns whether that happened.
    fn cut_at_mass(&mut self, start: usize, mut mass: f64, target: f64, max: f64) -> bool {
        for i in start..self.items.len() {
            mass += exp(f64::from(self.items[i].logit) - max);
            if mass >= target {
                self.items.truncate(i + 1);
                return true;
            }
        }
        false
    }

    /// Keeps candidates whose probability is at least `min_p` times the best one's, i.e.
    /// `logit >= max + ln(min_p)`; `ln_min_p == -inf` (min_p = 0) = off. Keeps the order.
    pub(crate) fn min_p(&mut self, ln_min_p: f64) {
        if ln_min_p == f64::NEG_INFINITY || self.items.len() <= 1 {
            return;
        }
        let max = self.max_logit();
        self.items.retain(|c| f64::from(c.logit) - max >= ln_min_p);
    }

    /// Draws a candidate with probability softmax(logit / temperature), `temperature > 0`,
    /// from `u` uniform in `[0, 1)`. Returns `None` only for an empty set. Overwrites the
    /// logits with the unnormalized weights.
    pub(crate) fn draw(&mut self, temperature: f32, u: f64) -> Option<u32> {
        if self.items.len() == 1 {
            return self.items.first().map(|c| c.id);
        }
        let max = self.max_logit();
        let t = f64::from(temperature);
        let mut sum = 0.0;
        for c in &mut self.items {
            // (l - max) / t rather than l / t - max / t: never NaN, and the best weight is 1.
            c.logit = exp((f64::from(c.logit) - max) / t) as f32;
            sum += f64::from(c.logit);
        }
        // Walk the same f32 weights in the same order, so `cum` ends exactly at `sum`.
        let target = u * sum;
        let mut cum = 0.0;
        let mut last = None;
        for c in &self.items {
            if c.logit > 0.0 {
                cum += f64::from(c.logit);
                last = Some(c.id);
                if cum > target {
                    return last;
                }
            }
        }
        // Only reachable if u * sum rounded up to sum: the last drawable token.
        last
    }

    fn max_logit(&self) -> f64 {
        if self.sorted {
            return self.items.first().map_or(f64::NEG_INFINITY, |c| f64::from(c.logit));
        }
        let mut max = f32::NEG_INFINITY;
        for c in &self.items {
            max = max.max(c.logit);
        }
        f64::from(max)
    }
}

/// llama.cpp's penalty for a token seen `count > 0` times in the window.
pub(crate) fn penalized(logit: f32, count: usize, p: &SamplingParams) -> f32 {
    let logit = if logit <= 0.0 { logit * p.repeat_penalty } else { logit / p.repeat_penalty };
    logit - (count as f32 * p.frequency_penalty + p.presence_penalty)
}

/// Up to this many, the best `n` are selected with a heap (one cheap comparison per
/// candidate) rather than `select_nth_unstable` (several passes over all of them).
const HEAP_SELECT_MAX: usize = 1024;

/// Moves the items that satisfy `keep` to the front (in no fixed order); returns how many.
fn partition(items: &mut [Candidate], keep: impl Fn(&Candidate) -> bool) -> usize {
    let mut front = 0;
    for i in 0..items.len() {
        if keep(&items[i]) {
            items.swap(front, i);
            front += 1;
        }
    }
    front
}

/// Moves the `n` best of `items` to the front, sorted; the rest follow in no fixed order.
fn select_prefix(items: &mut [Candidate], n: usize) {
    if n == 0 {
        return;
    }
    if n < items.len() {
        if n <= HEAP_SELECT_MAX {
            heap_select(items, n);
        } else {
            items.select_nth_unstable_by(n - 1, rank);
        }
    }
    items[..n].sort_unstable_by(rank);
}

/// Moves the `n` best of `items` to `items[..n]` in no order: `items[..n]` becomes a heap
/// with the worst kept candidate at the root, and each later candidate only has to beat
/// the root to get in. O(len) comparisons plus O(log n) per replacement.
fn heap_select(items: &mut [Candidate], n: usize) {
    for i in (0..n / 2).rev() {
        sift_down(&mut items[..n], i);
    }
    for i in n..items.len() {
        if rank(&items[i], &items[0]) == Ordering::Less {
            items.swap(0, i);
            sift_down(&mut items[..n], 0);
        }
    }
}

/// Restores the worst-at-root heap order below `i`.
fn sift_down(heap: &mut [Candidate], mut i: usize) {
    loop {
        let left = 2 * i + 1;
        if left >= heap.len() {
            return;
        }
        let right = left + 1;
        let worse = if right < heap.len() && rank(&heap[right], &heap[left]) == Ordering::Greater {
            right
        } else {
            left
        };
        if rank(&heap[worse], &heap[i]) != Ordering::Greater {
            return;
        }
        heap.swap(worse, i);
        i = worse;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random_set(rng: &mut SplitMix64, n: usize, scale: f32, quantum: f32) -> CandidateSet {
        let items = (0..n as u32)
            .map(|id| {
                let u = (rng.next_u64() >> 40) as f32 / (1u32 << 24) as f32;
                let l = (u - 0.5) * scale;
                let l = if quantum > 0.0 { (l / quantum).round() * quantum } else { l };
                Candidate { id, logit: l }
            })
            .collect();
        CandidateSet { items, sorted: false }
    }

    fn ids(set: &mut CandidateSet) -> Vec<u32> {
        set.sort();
        set.items.iter().map(|c| c.id).collect()
    }

    #[test]
    fn bucketed_top_p_equals_sorted_top_p() {
        let mut rng = SplitMix64::new(1);
        for case in 0..400 {
            let n = [2, 3, 50, 700, 5000][case % 5];
            let scale = [0.0, 0.01, 4.0, 40.0, 400.0][(case / 5) % 5];
            let quantum = if case % 3 == 0 { 0.5 } else { 0.0 };
            let p = [0.05f32, 0.5, 0.9, 0.999][(case / 25) % 4];
            let mut a = random_set(&mut rng, n, scale, quantum);
            let mut b = CandidateSet { items: a.items.clone(), sorted: false };
            a.top_p(p);
            b.sort();
            b.top_p(p);
            assert_eq!(ids(&mut a), ids(&mut b), "case {case}: n={n} scale={scale} p={p}");
        }
    }

    #[test]
    fn heap_select_matches_full_sort() {
        let mut rng = SplitMix64::new(2);
        for case in 0..300 {
            let n = 1 + case * 7 % 3000;
            let k = 1 + (case * 13) % n.min(HEAP_SELECT_MAX + 200);
            let mut set = random_set(&mut rng, n, 8.0, if case % 2 == 0 { 1.0 } else { 0.0 });
            let mut full = set.items.clone();
            full.sort_unstable_by(rank);
            full.truncate(k);
            set.top_k(k as u32);
            assert_eq!(set.items, full, "case {case}: n={n} k={k}");
        }
    }

    #[test]
    fn penalties_follow_llama_cpp() {
        let p = SamplingParams {
            repeat_penalty: 2.0,
            frequency_penalty: 0.5,
            presence_penalty: 1.0,
            ..SamplingParams::default()
        };
        assert_eq!(penalized(4.0, 1, &p), 4.0 / 2.0 - 1.5);
        assert_eq!(penalized(-4.0, 3, &p), -4.0 * 2.0 - 2.5);
        assert_eq!(penalized(0.0, 2, &p), -2.0);
        assert_eq!(penalized(f32::NEG_INFINITY, 2, &p), f32::NEG_INFINITY);
    }
}
