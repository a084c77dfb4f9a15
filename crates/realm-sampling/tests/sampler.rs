//! Sampler behaviour: greedy ties, penalties by hand, determinism, errors, serde.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestRng;
use realm_sampling::{Sampler, SamplingError, SamplingParams};

/// Every filter off, so `candidates` shows the penalized logits of all tokens.
fn unfiltered() -> SamplingParams {
    SamplingParams { top_k: 0, top_p: 1.0, min_p: 0.0, ..SamplingParams::default() }
}

#[test]
fn greedy_ties_go_to_the_lowest_id() {
    let mut s = Sampler::new(SamplingParams::greedy(), 6).unwrap();
    assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0, 3.0, -1.0]).unwrap(), 1);
    assert_eq!(s.sample(&[7.0, 7.0, 7.0, 7.0, 7.0, 7.0]).unwrap(), 0);
    assert_eq!(s.sample(&[f32::NEG_INFINITY, -5.0, -5.0, -6.0, -9.0, -5.0]).unwrap(), 1);
    // -0.0 and +0.0 tie, in greedy and in top-k alike.
    let mut s = Sampler::new(SamplingParams::greedy(), 2).unwrap();
    assert_eq!(s.sample(&[-0.0, 0.0]).unwrap(), 0);
    let mut k1 = Sampler::new(SamplingParams { top_k: 1, ..SamplingParams::default() }, 2).unwrap();
    assert_eq!(k1.sample(&[-0.0, 0.0]).unwrap(), 0);
}

#[test]
fn a_lone_candidate_spends_no_random_draw() {
    // Interleaving calls where only one token is finite must not shift the random stream.
    let logits = [1.0f32, 1.2, 0.8, 1.1];
    let lone = [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
    let p =
        SamplingParams { top_k: 0, top_p: 1.0, min_p: 0.0, seed: 9, ..SamplingParams::default() };
    let mut a = Sampler::new(p, 4).unwrap();
    let plain: Vec<u32> = (0..50).map(|_| a.sample(&logits).unwrap()).collect();
    let mut b = Sampler::new(p, 4).unwrap();
    let mixed: Vec<u32> = (0..50)
        .map(|_| {
            assert_eq!(b.sample(&lone).unwrap(), 2);
            b.sample(&logits).unwrap()
        })
        .collect();
    assert_eq!(plain, mixed);
}

#[test]
fn penalties_match_hand_computed_values() {
    let logits = [2.0f32, -1.0, 0.5, 3.0, 0.0, -2.0];
    let params = SamplingParams {
        repeat_penalty: 1.5,
        frequency_penalty: 0.25,
        presence_penalty: 0.5,
        penalty_last_n: 4,
        ..unfiltered()
    };
    let mut s = Sampler::new(params, logits.len()).unwrap();
    for t in [0, 1, 1, 3, 4] {
        s.accept(t);
    }
    // Window = last 4 = [1, 1, 3, 4]; token 0 has slid out.
    //   1: -1.0 <= 0 → * 1.5 = -1.5, then - (2 * 0.25 + 0.5) = -2.5
    //   3:  3.0 >  0 → / 1.5 =  2.0, then - (1 * 0.25 + 0.5) =  1.25
    //   4:  0.0 <= 0 → * 1.5 =  0.0, then - 0.75             = -0.75
    let mut got = vec![f32::NAN; logits.len()];
    for c in s.candidates(&logits).unwrap() {
        got[c.id as usize] = c.logit;
    }
    assert_eq!(got, [2.0, -2.5, 0.5, 1.25, -0.75, -2.0]);

    // Greedy sees the penalized logits: 3.0 would win, 1.25 does not.
    let mut g = Sampler::new(SamplingParams { temperature: 0.0, ..params }, logits.len()).unwrap();
    assert_eq!(g.sample(&logits).unwrap(), 3);
    for t in [0, 1, 1, 3, 4] {
        g.accept(t);
    }
    assert_eq!(g.sample(&logits).unwrap(), 0);
}

#[test]
fn penalties_off_switches() {
    let logits = [2.0f32, 1.0, 0.5];
    let on = SamplingParams { repeat_penalty: 2.0, penalty_last_n: 8, ..unfiltered() };
    for params in
        [SamplingParams { penalty_last_n: 0, ..on }, SamplingParams { repeat_penalty: 1.0, ..on }]
    {
        let mut s = Sampler::new(params, 3).unwrap();
        s.accept(0);
        let got: Vec<f32> = s.candidates(&logits).unwrap().iter().map(|c| c.logit).collect();
        assert_eq!(got, [2.0, 1.0, 0.5]);
    }
    // Banned tokens stay banned under penalties, and out-of-range ids are ignored.
    let params = SamplingParams { frequency_penalty: -1.0, presence_penalty: -1.0, ..on };
    let mut s = Sampler::new(params, 3).unwrap();
    for t in [2, 2, 99, u32::MAX] {
        s.accept(t);
    }
    let got: Vec<u32> =
        s.candidates(&[1.0, 0.0, f32::NEG_INFINITY]).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(got, [0, 1]);
}

#[test]
fn reset_forgets_history_and_restarts_the_rng() {
    let mut rng = TestRng::new(3);
    let logits = rng.logits(50, 1.0, 0.0, 0.0);
    let params = SamplingParams { repeat_penalty: 1.3, seed: 77, ..SamplingParams::default() };
    let run = |s: &mut Sampler| -> Vec<u32> {
        (0..100)
            .map(|_| {
                let t = s.sample(&logits).unwrap();
                s.accept(t);
                t
            })
            .collect()
    };
    let mut s = Sampler::new(params, 50).unwrap();
    let first = run(&mut s);
    s.reset();
    assert_eq!(run(&mut s), first);
}

/// 200 steps over varying logits, accepting each token.
fn sequence(seed: u64) -> Vec<u32> {
    let mut data = TestRng::new(1234);
    let params =
        SamplingParams { seed, repeat_penalty: 1.1, temperature: 1.2, ..SamplingParams::default() };
    let mut s = Sampler::new(params, 1000).unwrap();
    (0..200)
        .map(|_| {
            let logits = data.uniform_logits(1000, 4.0);
            let t = s.sample(&logits).unwrap();
            s.accept(t);
            t
        })
        .collect()
}

#[test]
fn same_seed_same_tokens_different_seed_different_tokens() {
    let a = sequence(42);
    assert_eq!(a, sequence(42));
    let b = sequence(43);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same < 150, "seeds 42 and 43 agree on {same} of 200 tokens");
}

#[test]
fn pinned_tokens_for_a_fixed_seed() {
    // The stream is specified bit for bit (xoshiro256**, portable exp, f64 sums in a fixed
    // order), so these values must hold on every target, wasm32 included. A change here is
    // a change of behaviour for every saved seed.
    assert_eq!(sequence(42)[..16], PINNED);
}

#[test]
fn pinned_tokens_without_top_k() {
    // The unsorted top-p path (logit buckets) and a full-vocabulary softmax.
    let mut data = TestRng::new(99);
    let params =
        SamplingParams { seed: 7, top_k: 0, top_p: 0.9, min_p: 0.0, ..SamplingParams::default() };
    let mut s = Sampler::new(params, 5000).unwrap();
    let got: Vec<u32> = (0..16)
        .map(|_| {
            let t = s.sample(&data.uniform_logits(5000, 3.0)).unwrap();
            s.accept(t);
            t
        })
        .collect();
    assert_eq!(
        got,
        [
            3540, 1369, 4315, 4904, 4955, 4333, 325, 521, 2082, 808, 2781, 3698, 4682, 4437, 2216,
            2858
        ]
    );
}

/// Checked equal on x86_64 and on wasm32-unknown-unknown (under node) when written.
const PINNED: [u32; 16] =
    [914, 374, 995, 774, 63, 81, 123, 84, 217, 559, 45, 625, 963, 312, 260, 767];

#[test]
fn bad_logits_are_typed_errors() {
    let mut s = Sampler::new(SamplingParams::default(), 4).unwrap();
    assert_eq!(s.sample(&[]), Err(SamplingError::EmptyLogits { op: "sample" }));
    assert_eq!(
        s.sample(&[1.0, 2.0]),
        Err(SamplingError::LogitsLenMismatch { op: "sample", expected: 4, actual: 2 })
    );
    match s.sample(&[1.0, f32::NAN, 0.0, 0.0]) {
        Err(SamplingError::NonFiniteLogit { token: 1, value, .. }) => assert!(value.is_nan()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.sample(&[1.0, 0.0, 0.0, f32::INFINITY]),
        Err(SamplingError::NonFiniteLogit { op: "sample", token: 3, value: f32::INFINITY })
    );
    let banned = [f32::NEG_INFINITY; 4];
    assert_eq!(s.sample(&banned), Err(SamplingError::NoCandidates { op: "sample" }));
    let mut g = Sampler::new(SamplingParams::greedy(), 4).unwrap();
    assert_eq!(g.sample(&banned), Err(SamplingError::NoCandidates { op: "sample" }));
    assert_eq!(
        g.candidates(&[1.0]).unwrap_err(),
        SamplingError::LogitsLenMismatch { op: "candidates", expected: 4, actual: 1 }
    );

    // A penalty that overflows to +inf.
    let p = SamplingParams { repeat_penalty: 1e-3, ..SamplingParams::default() };
    let mut s = Sampler::new(p, 2).unwrap();
    s.accept(0);
    assert_eq!(
        s.sample(&[3e38, 0.0]),
        Err(SamplingError::PenaltyOverflow { op: "sample", token: 0, value: f32::INFINITY })
    );
    // The sampler is still usable after an error.
    assert!(s.sample(&[1.0, 0.0]).is_ok());
}

#[test]
fn bad_construction_is_a_typed_error() {
    let bad = SamplingParams { top_p: 0.0, ..SamplingParams::default() };
    assert!(matches!(
        Sampler::new(bad, 10),
        Err(SamplingError::InvalidParam { name: "top_p", .. })
    ));
    assert_eq!(
        Sampler::new(SamplingParams::default(), 0).unwrap_err(),
        SamplingError::InvalidVocabSize { op: "Sampler::new", n_vocab: 0 }
    );
    let msg = Sampler::new(SamplingParams { temperature: -1.0, ..SamplingParams::default() }, 8)
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "SamplingParams::validate: temperature = -1 is invalid, expected a finite value >= 0"
    );
}

#[test]
fn single_survivor_needs_no_draw() {
    // min-p 1.0 keeps only the top token: sampling is then deterministic whatever the seed.
    let p = SamplingParams { min_p: 1.0, ..SamplingParams::default() };
    for seed in 0..20 {
        let mut s = Sampler::new(SamplingParams { seed, ..p }, 5).unwrap();
        assert_eq!(s.sample(&[0.1, 0.2, 0.9, 0.3, 0.89]).unwrap(), 2);
    }
}

#[test]
fn params_round_trip_through_json() {
    let p = SamplingParams { temperature: 0.5, top_k: 10, seed: 7, ..SamplingParams::default() };
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<SamplingParams>(&json).unwrap(), p);
    let partial: SamplingParams = serde_json::from_str(r#"{"temperature":0.2,"top_k":5}"#).unwrap();
    assert_eq!(partial, SamplingParams { temperature: 0.2, top_k: 5, ..SamplingParams::default() });
    assert!(serde_json::from_str::<SamplingParams>(r#"{"topK":5}"#).is_err());
}
