//! The filter chain and the draw against a brute-force reference on seeded random logits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestRng, reference_filter, reference_probs};
use realm_sampling::{Sampler, SamplingParams};

/// A random mix of top-k, top-p and min-p settings, each sometimes off.
fn random_params(rng: &mut TestRng) -> SamplingParams {
    let top_k = [0, 1, 2, 5, 40, 300][rng.range(0, 6)];
    let top_p = [1.0, 0.95, 0.9, 0.5, 0.1][rng.range(0, 5)];
    let min_p = [0.0, 0.05, 0.1, 0.5][rng.range(0, 4)];
    SamplingParams { top_k, top_p, min_p, penalty_last_n: 0, ..SamplingParams::default() }
}

#[test]
fn filters_keep_the_reference_set() {
    let mut rng = TestRng::new(0x5EED);
    let (mut checked, mut skipped) = (0, 0);
    for case in 0..600 {
        let n = [1, 2, 7, 64, 500, 3000][rng.range(0, 6)];
        let sigma = [0.05, 0.5, 2.0, 6.0, 30.0][rng.range(0, 5)];
        let quantum = if rng.unit() < 0.3 { 0.5 } else { 0.0 };
        let banned = if rng.unit() < 0.2 { 0.3 } else { 0.0 };
        let mut logits = rng.logits(n, sigma, quantum, banned);
        if logits.iter().all(|l| *l == f32::NEG_INFINITY) {
            logits[0] = 0.0;
        }
        let params = random_params(&mut rng);
        let (want, margin) = reference_filter(&logits, &params);
        if margin < 1e-9 {
            skipped += 1;
            continue;
        }
        let mut s = Sampler::new(params, n).unwrap();
        let got: Vec<(u32, f32)> =
            s.candidates(&logits).unwrap().iter().map(|c| (c.id, c.logit)).collect();
        let want: Vec<(u32, f32)> = want.iter().map(|c| (c.id, c.logit)).collect();
        assert_eq!(got, want, "case {case}: n={n} sigma={sigma} {params:?}");
        checked += 1;
    }
    assert!(checked > 550, "checked {checked}, skipped {skipped}");
}

#[test]
fn top_k_one_is_greedy() {
    let mut rng = TestRng::new(11);
    for _ in 0..300 {
        let n = rng.range(1, 400);
        // Coarse quantization: many ties for the maximum.
        let mut logits = rng.logits(n, 2.0, 1.0, 0.1);
        if logits.iter().all(|l| *l == f32::NEG_INFINITY) {
            logits[n - 1] = 1.0;
        }
        let mut greedy = Sampler::new(SamplingParams::greedy(), n).unwrap();
        let params = SamplingParams { top_k: 1, seed: rng.next_u64(), ..SamplingParams::default() };
        let mut top1 = Sampler::new(params, n).unwrap();
        assert_eq!(top1.sample(&logits).unwrap(), greedy.sample(&logits).unwrap());
    }
}

/// Pearson's chi-square statistic of `counts` against `probs` over `n` draws.
fn chi_square(counts: &[u64], probs: &[f64], n: u64) -> f64 {
    counts
        .iter()
        .zip(probs)
        .map(|(&c, &p)| {
            let e = p * n as f64;
            (c as f64 - e).powi(2) / e
        })
        .sum()
}

/// Draws `n` tokens and returns per-token counts over the vocabulary.
fn histogram(params: SamplingParams, logits: &[f32], n: u64) -> Vec<u64> {
    let mut s = Sampler::new(params, logits.len()).unwrap();
    let mut counts = vec![0u64; logits.len()];
    for _ in 0..n {
        counts[s.sample(logits).unwrap() as usize] += 1;
    }
    counts
}

#[test]
fn draws_follow_softmax_at_temperature() {
    // Chi-square critical values at p = 0.001 for 7 and 3 degrees of freedom. The seed is
    // fixed, so this cannot flake; it fails only if the distribution is wrong.
    let logits = [1.0f32, 2.0, 0.5, 3.0, -1.0, 2.5, 0.0, 1.5];
    let n = 200_000;
    for (t, seed) in [(1.0f32, 1u64), (0.7, 2), (1.8, 3)] {
        let params = SamplingParams {
            temperature: t,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            ..SamplingParams::default()
        };
        let counts = histogram(params, &logits, n);
        let (all, _) = reference_filter(&logits, &params);
        let mut probs = vec![0.0; logits.len()];
        for (c, p) in all.iter().zip(reference_probs(&all, t)) {
            probs[c.id as usize] = p;
        }
        let chi2 = chi_square(&counts, &probs, n);
        assert!(chi2 < 24.32, "t={t}: chi2 = {chi2}, counts {counts:?}");
    }

    // With filters on: only the kept set is drawn, renormalized at the temperature.
    let params = SamplingParams {
        temperature: 0.9,
        top_k: 6,
        top_p: 0.9,
        min_p: 0.05,
        seed: 4,
        ..SamplingParams::default()
    };
    let counts = histogram(params, &logits, n);
    let (kept, _) = reference_filter(&logits, &params);
    // top-k 6 → top-p 0.9 leaves {3, 5, 1, 7}.
    assert_eq!(kept.len(), 4, "{kept:?}");
    let probs = reference_probs(&kept, params.temperature);
    let kept_counts: Vec<u64> = kept.iter().map(|c| counts[c.id as usize]).collect();
    assert_eq!(kept_counts.iter().sum::<u64>(), n, "drew outside the kept set: {counts:?}");
    let chi2 = chi_square(&kept_counts, &probs, n);
    assert!(chi2 < 16.27, "chi2 = {chi2}, counts {kept_counts:?}");
}

#[test]
fn tiny_and_huge_temperatures() {
    let logits = [0.0f32, 1.0, 0.999, -3.0];
    let base = SamplingParams { top_k: 0, top_p: 1.0, min_p: 0.0, ..SamplingParams::default() };
    // A tiny temperature is greedy in effect, never NaN.
    let counts = histogram(SamplingParams { temperature: 1e-30, ..base }, &logits, 1000);
    assert_eq!(counts, [0, 1000, 0, 0]);
    // A huge one is uniform in effect.
    let counts = histogram(SamplingParams { temperature: 1e30, ..base }, &logits, 40_000);
    assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
}
