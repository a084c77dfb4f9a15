//! A small portable PRNG: xoshiro256** seeded through splitmix64.
//!
//! Both algorithms are by Blackman and Vigna (<https://prng.di.unimi.it/>); only integer
//! adds, xors, shifts, rotates and wrapping multiplies are used, so the stream is identical
//! on every target, wasm32 included. Not for cryptography.

/// splitmix64: a 64-bit counter through a mixing function. Used to expand one `u64` seed
/// into xoshiro's 256-bit state (as the xoshiro authors recommend) and handy as a quick
/// test-data generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Starts the counter at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256**: 256 bits of state, period 2^256 − 1, passes BigCrush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    /// Seeds the state with four splitmix64 outputs of `seed`. splitmix64 is a bijection of
    /// its counter, so at most one of the four words is zero and the state is never all-zero.
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        Self { s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()] }
    }

    /// Uses `state` as is; for known-answer tests. An all-zero state only ever yields zeros.
    pub fn from_state(state: [u64; 4]) -> Self {
        Self { s: state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        self.s = [s0, s1, s2 ^ t, s3.rotate_left(45)];
        result
    }

    /// A uniform `f64` in `[0, 1)`: the top 53 bits scaled by 2^-53, so exact on every target.
    pub fn next_f64(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_known_answer() {
        // First output of the reference splitmix64.c for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn xoshiro256starstar_known_answer() {
        // Worked by hand from the reference xoshiro256starstar.c with s = {1, 2, 3, 4}:
        // 2*5 = 10, rotl(10, 7) = 1280, *9 = 11520; then s[1] becomes 0, so the second is 0.
        let mut r = Xoshiro256StarStar::from_state([1, 2, 3, 4]);
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1_509_978_240);
    }

    #[test]
    fn uniform_is_in_range_and_roughly_uniform() {
        let mut r = Xoshiro256StarStar::new(7);
        let n = 100_000;
        let mut buckets = [0u32; 10];
        for _ in 0..n {
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
        }
        for b in buckets {
            assert!((9_500..10_500).contains(&b), "{buckets:?}");
        }
    }
}
