//! `exp` and `ln` in `f64` from IEEE-754 basic operations only.
//!
//! `f32::exp`/`f64::exp` call the platform's libm (glibc natively, a Rust port of musl on
//! wasm32), whose last bits may differ; a different last bit can move a top-p cut or a
//! draw. These versions use only `+ - * /`, float-to-integer casts and bit manipulation, which IEEE-754
//! defines exactly, and Rust never fuses them into FMAs, so every target gets the same
//! bits. Accuracy is within a few ulp of the correctly rounded result (tested against std),
//! far more than sampling needs.

/// ln 2 split so that `k * LN2_HI` is exact for |k| < 2^20 (fdlibm's constants, as bits:
/// 6.93147180369123816490e-01 and 1.90821492927058770002e-10).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// Below this, e^x rounds to zero even as a subnormal.
const EXP_UNDERFLOW: f64 = -745.2;
/// Above this, e^x overflows `f64` (ln of `f64::MAX` is 709.7827...).
const EXP_OVERFLOW: f64 = 709.78;

/// 1/n! for n = 0..=13: the Taylor series of e^r.
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// e^x. NaN gives NaN; `-inf` gives `0`; `+inf` gives `+inf`.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < EXP_UNDERFLOW {
        return 0.0;
    }
    if x > EXP_OVERFLOW {
        return f64::INFINITY;
    }
    // x = k ln2 + r with |r| <= ln2 / 2; the 14-term series is then accurate to ~1e-18.
    // Round half away from zero with a truncating cast: exact, and unlike `floor` it needs
    // no libm call on x86-64 targets without SSE4.1.
    let t = x * std::f64::consts::LOG2_E;
    let k = if t >= 0.0 { (t + 0.5) as i32 } else { (t - 0.5) as i32 };
    let kf = f64::from(k);
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    // Estrin's scheme: the same polynomial as Horner's, in a third of the dependent steps.
    let c = &EXP_TAYLOR;
    let (r2, r4) = (r * r, r * r * (r * r));
    let pairs = [
        c[0] + c[1] * r,
        c[2] + c[3] * r,
        c[4] + c[5] * r,
        c[6] + c[7] * r,
        c[8] + c[9] * r,
        c[10] + c[11] * r,
        c[12] + c[13] * r,
    ];
    let quads = [pairs[0] + pairs[1] * r2, pairs[2] + pairs[3] * r2, pairs[4] + pairs[5] * r2];
    let p = (quads[0] + quads[1] * r4) + (quads[2] + pairs[6] * r4) * (r4 * r4);
    // k is in [-1075, 1024]; two halves keep each power of two a normal f64.
    let half = k / 2;
    p * pow2(half) * pow2(k - half)
}

/// 2^k for k in the normal exponent range [-1022, 1023].
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// ln x. `0` gives `-inf`; negative or NaN gives NaN; `+inf` gives `+inf`.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // Subnormals: scale into the normal range first.
    let (x, bias) = if x < f64::MIN_POSITIVE { (x * pow2(54), -54) } else { (x, 0) };
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i32 - 1023 + bias;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1), |s| <= 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    for n in (0..13).rev() {
        series = series * s2 + 1.0 / f64::from(2 * n + 1);
    }
    let e = f64::from(e);
    e * LN2_HI + (e * LN2_LO + 2.0 * s * series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel_err(a: f64, b: f64) -> f64 {
        if a == b { 0.0 } else { ((a - b) / b).abs() }
    }

    #[test]
    fn exp_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = -745.0;
        while x < 709.0 {
            let got = exp(x);
            if got > f64::MIN_POSITIVE {
                worst = worst.max(rel_err(got, x.exp()));
            }
            x += 0.0137;
        }
        assert!(worst < 6e-16, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(800.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert!(exp(-745.0) > 0.0);
    }

    #[test]
    fn ln_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-300;
        while x < 1e300 {
            worst = worst.max(rel_err(ln(x), x.ln()));
            x *= 1.0173;
        }
        for x in [0.05f64, 0.5, 0.999, 1.001, 2.0, f64::from(f32::MIN_POSITIVE), 5e-324] {
            worst = worst.max(rel_err(ln(x), x.ln()));
        }
        assert!(worst < 4e-16, "worst relative error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
    }
}
