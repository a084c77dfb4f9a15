//! Test helpers shared by the integration tests: a splitmix64 data generator (independent
//! of the crate's own) and a brute-force reference of the filter chain.
#![allow(dead_code)]

use realm_sampling::SamplingParams;

/// splitmix64, written again here so the tests do not lean on the code under test.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `n` logits uniform in [-scale, scale), from integer arithmetic only (no libm), so the
    /// same on every target.
    pub fn uniform_logits(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next_u64() >> 40) as f32 / (1u32 << 23) as f32 - 1.0) * scale)
            .collect()
    }

    /// `n` logits ~ N(0, sigma); with `quantum > 0` they are rounded to multiples of it
    /// (to make ties), and about `banned` of them are -inf.
    pub fn logits(&mut self, n: usize, sigma: f64, quantum: f64, banned: f64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                if self.unit() < banned {
                    return f32::NEG_INFINITY;
                }
                let x = self.normal() * sigma;
                let x = if quantum > 0.0 { (x / quantum).round() * quantum } else { x };
                x as f32
            })
            .collect()
    }
}

/// One candidate of the reference chain with its temperature-1 probability over the set
/// it was ranked in.
#[derive(Debug, Clone, Copy)]
pub struct RefCandidate {
    pub id: u32,
    pub logit: f32,
}

/// The whole filter chain by brute force: full sort (logit desc, id asc), std `exp` in f64.
/// Returns the kept candidates best first, and the smallest distance of any quantity to
/// the threshold it was compared with (so callers can skip knife-edge cases).
pub fn reference_filter(logits: &[f32], p: &SamplingParams) -> (Vec<RefCandidate>, f64) {
    let mut c: Vec<RefCandidate> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| **l > f32::NEG_INFINITY)
        .map(|(i, &l)| RefCandidate { id: i as u32, logit: l })
        .collect();
    c.sort_by(|a, b| b.logit.partial_cmp(&a.logit).unwrap().then(a.id.cmp(&b.id)));
    let mut margin = f64::INFINITY;
    if p.top_k > 0 {
        c.truncate(p.top_k as usize);
    }
    if p.top_p < 1.0 && c.len() > 1 {
        let max = f64::from(c[0].logit);
        let z: f64 = c.iter().map(|x| (f64::from(x.logit) - max).exp()).sum();
        let mut cum = 0.0;
        let mut keep = c.len();
        for (i, x) in c.iter().enumerate() {
            cum += (f64::from(x.logit) - max).exp() / z;
            margin = margin.min((cum - f64::from(p.top_p)).abs());
            if cum >= f64::from(p.top_p) {
                keep = i + 1;
                break;
            }
        }
        c.truncate(keep);
    }
    if p.min_p > 0.0 && c.len() > 1 {
        let max = f64::from(c[0].logit);
        let ratio = |x: &RefCandidate| (f64::from(x.logit) - max).exp();
        for x in &c {
            margin = margin.min((ratio(x) - f64::from(p.min_p)).abs());
        }
        c.retain(|x| ratio(x) >= f64::from(p.min_p));
    }
    (c, margin)
}

/// softmax(logit / t) over the reference candidates, in their order.
pub fn reference_probs(c: &[RefCandidate], t: f32) -> Vec<f64> {
    let max = c.iter().map(|x| f64::from(x.logit)).fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = c.iter().map(|x| ((f64::from(x.logit) - max) / f64::from(t)).exp()).collect();
    let z: f64 = w.iter().sum();
    w.iter().map(|x| x / z).collect()
}
