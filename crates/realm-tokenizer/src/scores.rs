//! Per-token scores, stored compactly without changing a bit of any value.
//!
//! SentencePiece BPE vocabularies score pieces by their order, `base - id` (236,249 of Gemma 3's
//! 262,144 tokens; the rest are control, byte and user-defined tokens). Scores that follow the
//! most common such line are computed; only the others are stored, found through a bitmap with
//! per-word popcount ranks, so a lookup stays O(1).

/// Sample positions tried for the line's `base` (fractions of the vocabulary, in 1/8ths).
const SAMPLES: [usize; 5] = [1, 3, 4, 5, 7];

#[derive(Debug, Clone, Default)]
pub(crate) struct Scores {
    len: usize,
    base: f32,
    /// Bit `id % 64` of word `id / 64` set: the score of `id` is stored in `stored`.
    explicit: Vec<u64>,
    /// Set bits of `explicit` before each word.
    rank: Vec<u32>,
    /// The scores off the line, in id order.
    stored: Vec<f32>,
}

/// The score `id` has on the line through `base` (f32 arithmetic, so compared bit for bit).
fn on_line(base: f32, id: usize) -> f32 {
    base - id as f32
}

impl Scores {
    /// Compact `scores` (one per token).
    pub(crate) fn new(scores: &[f32]) -> Scores {
        let n = scores.len();
        let matches = |base: f32| {
            let on = |(i, s): (usize, &f32)| on_line(base, i).to_bits() == s.to_bits();
            scores.iter().enumerate().filter(|&p| on(p)).count()
        };
        let base = SAMPLES
            .iter()
            .filter_map(|&k| {
                let i = n * k / 8;
                scores.get(i).map(|s| s + i as f32)
            })
            // A NaN line could compute different NaN bits on different targets (wasm).
            .filter(|b| b.is_finite())
            .max_by_key(|&b| matches(b))
            .unwrap_or(0.0);
        let words = n.div_ceil(64);
        let mut explicit = vec![0u64; words];
        let mut stored = Vec::new();
        for (i, s) in scores.iter().enumerate() {
            if on_line(base, i).to_bits() != s.to_bits() {
                explicit[i / 64] |= 1 << (i % 64);
                stored.push(*s);
            }
        }
        let mut rank = Vec::with_capacity(words);
        let mut before = 0u32;
        for w in &explicit {
            rank.push(before);
            before += w.count_ones(); // at most `n`, which fits `u32` (token ids)
        }
        Scores { len: n, base, explicit, rank, stored }
    }

    /// The score of `id`; `None` out of range.
    pub(crate) fn get(&self, id: u32) -> Option<f32> {
        let i = id as usize;
        if i >= self.len {
            return None;
        }
        let word = self.explicit[i / 64];
        let bit = 1u64 << (i % 64);
        if word & bit == 0 {
            return Some(on_line(self.base, i));
        }
        let k = self.rank[i / 64] as usize + (word & (bit - 1)).count_ones() as usize;
        self.stored.get(k).copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_score_comes_back_bit_for_bit() {
        let mut s: Vec<f32> = (0..1000).map(|i| 494.0 - i as f32).collect();
        for (i, v) in [(0, -1000.0), (63, 0.0), (64, -0.0), (65, f32::NAN), (999, 1.5)] {
            s[i] = v;
        }
        s[500] = f32::from_bits(0x7fc0_1234);
        let c = Scores::new(&s);
        assert_eq!(c.stored.len(), 6, "only the scores off the line are stored");
        for (i, v) in s.iter().enumerate() {
            assert_eq!(c.get(i as u32).unwrap().to_bits(), v.to_bits(), "id {i}");
        }
        assert_eq!(c.get(1000), None);
        let irregular: Vec<f32> = (0..200).map(|i| (i * i % 17) as f32 * 0.25).collect();
        let c = Scores::new(&irregular);
        for (i, v) in irregular.iter().enumerate() {
            assert_eq!(c.get(i as u32).unwrap().to_bits(), v.to_bits(), "id {i}");
        }
        let empty = Scores::new(&[]);
        assert_eq!((empty.get(0), Scores::default().get(0)), (None, None));
    }
}
