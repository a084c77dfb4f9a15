//! Comparing a backend's result with the oracle's.

use crate::tolerance::Tol;

/// How far `got` is from `want`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Error {
    /// `Σ (got − want)² / Σ want²` (0 when both are all zero; infinite on NaN).
    pub nmse: f64,
    /// `max |got − want| / max |want|`.
    pub max_rel: f64,
}

/// Measures `got` against `want` (same length expected; a length mismatch is infinite).
pub fn measure(got: &[f32], want: &[f32]) -> Error {
    if got.len() != want.len() {
        return Error { nmse: f64::INFINITY, max_rel: f64::INFINITY };
    }
    let (mut num, mut den, mut max_diff, mut max_want) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        let (g, w) = (f64::from(g), f64::from(w));
        let diff = if g == w { 0.0 } else { (g - w).abs() };
        if diff.is_nan() {
            return Error { nmse: f64::INFINITY, max_rel: f64::INFINITY };
        }
        num += diff * diff;
        den += w * w;
        max_diff = max_diff.max(diff);
        max_want = max_want.max(w.abs());
    }
    let ratio = |n: f64, d: f64| {
        if n == 0.0 {
            0.0
        } else if d == 0.0 {
            f64::INFINITY
        } else {
            n / d
        }
    };
    Error { nmse: ratio(num, den), max_rel: ratio(max_diff, max_want) }
}

/// `Ok(error)` if `got` is within `tol` of `want`, else a message saying by how much not.
pub fn check(got: &[f32], want: &[f32], tol: Tol) -> Result<Error, String> {
    if got.len() != want.len() {
        return Err(format!("{} values, the oracle has {}", got.len(), want.len()));
    }
    let e = measure(got, want);
    let nmse_ok = e.nmse <= tol.nmse;
    let max_ok = tol.max_rel.is_none_or(|m| e.max_rel <= m);
    if nmse_ok && max_ok {
        Ok(e)
    } else {
        let worst = got
            .iter()
            .zip(want)
            .enumerate()
            .max_by(|a, b| {
                let d = |(_, (g, w)): &(usize, (&f32, &f32))| f64::from(**g - **w).abs();
                d(a).total_cmp(&d(b))
            })
            .map(|(i, (g, w))| format!("worst at {i}: {g} vs {w}"))
            .unwrap_or_default();
        Err(format!(
            "nmse {:.3e} (budget {:.1e}), max_rel {:.3e} (budget {:?}); {worst}",
            e.nmse, tol.nmse, e.max_rel, tol.max_rel
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tolerance::{Check, tolerance};

    #[test]
    fn a_perturbed_result_fails() {
        let want: Vec<f32> = (0..100).map(|i| (i as f32 * 0.3).sin()).collect();
        assert!(check(&want, &want, tolerance(Check::Add)).is_ok());
        let mut got = want.clone();
        got[17] += 1e-6;
        assert!(check(&got, &want, tolerance(Check::Add)).is_err(), "exact ops must be exact");
        assert!(check(&got, &want, tolerance(Check::Rope)).is_ok());
        got[17] += 0.1;
        assert!(check(&got, &want, tolerance(Check::Rope)).is_err());
        got[17] = f32::NAN;
        assert!(check(&got, &want, tolerance(Check::Matmul(realm_core::GgmlType::Q4_0))).is_err());
        assert!(
            check(&got[1..], &want, tolerance(Check::Matmul(realm_core::GgmlType::Q4_0))).is_err()
        );
    }

    #[test]
    fn zeros_match_zeros() {
        assert_eq!(measure(&[0.0; 4], &[0.0; 4]), Error { nmse: 0.0, max_rel: 0.0 });
        assert!(measure(&[1.0], &[0.0]).nmse.is_infinite());
    }
}
