//! Scale-search helpers shared by the k-quant reference quantizers.
//!
//! Written from the descriptions in llama.cpp `ggml/src/ggml-quants.c` (commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`): `nearest_int`, `make_qx_quants`,
//! `make_q3_quants` and `make_qkx2_quants`. The float operations keep ggml's order and are
//! never fused, so results match a C build without FMA contraction (`-ffp-contract=off`,
//! GCC's default in ISO C mode).
//!
//! Sizes are const generics, so every index is in bounds by construction.

/// Below this, a group's largest magnitude counts as zero (`GROUP_MAX_EPS`).
pub(super) const GROUP_MAX_EPS: f32 = 1e-15;

/// Rounds to the nearest integer, ties to even, as ggml's `nearest_int`.
///
/// Adding 1.5 * 2^23 leaves the rounded value in the low mantissa bits. Exact for
/// `|fval| <= 4194303`; outside that (or for NaN) the result is meaningless but this never
/// panics — callers clamp it.
#[inline]
pub(super) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// The largest-magnitude element (first one on ties) and its magnitude.
#[inline]
fn signed_amax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (max, amax)
}

/// `nearest_int(iscale * v)` clamped to the symmetric range `[-nmax, nmax - 1]`.
#[inline]
fn sym_level(iscale: f32, v: f32, nmax: i32) -> i32 {
    nearest_int(iscale * v).clamp(-nmax, nmax - 1)
}

/// Symmetric quantization of `x` to levels `-nmax..nmax`, stored in `l` offset by `nmax`.
/// Returns the scale. Follows ggml's `make_qx_quants`.
///
/// `rmse_type` 0 takes the plain `max / -nmax` scale. Otherwise the weights are `qw`, or
/// with none given `x²` (1), 1 (2), `|x|` (3), `sqrt|x|` (4); the scale is the weighted
/// least-squares fit, refined over 18 nearby starting scales. A negative `rmse_type` stops
/// after the first fit and returns its average with the plain scale.
pub(super) fn make_qx_quants<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    l: &mut [i8; N],
    rmse_type: i32,
    qw: Option<&[f32; N]>,
) -> f32 {
    let (max, amax) = signed_amax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    if rmse_type == 0 {
        for (li, &xi) in l.iter_mut().zip(x) {
            *li = (nmax + sym_level(iscale, xi, nmax)) as i8;
        }
        return 1.0 / iscale;
    }
    let return_early = rmse_type < 0;
    let rmse_type = rmse_type.abs();
    let weight = |i: usize| -> f32 {
        let xi = x[i];
        match qw {
            Some(qw) => qw[i],
            None => match rmse_type {
                1 => xi * xi,
                2 => 1.0,
                3 => xi.abs(),
                _ => xi.abs().sqrt(),
            },
        }
    };
    // Weighted sums sum(w x l) and sum(w l²) for the levels at `iscale`.
    let sums = |iscale: f32| -> (f32, f32) {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for (i, &xi) in x.iter().enumerate() {
            let li = sym_level(iscale, xi, nmax) as f32;
            let w = weight(i);
            sumlx += w * xi * li;
            suml2 += w * li * li;
        }
        (sumlx, suml2)
    };
    for (li, &xi) in l.iter_mut().zip(x) {
        *li = (nmax + sym_level(iscale, xi, nmax)) as i8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 { 0.5 * (scale + 1.0 / iscale) } else { 1.0 / iscale };
    }
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &xi) in l.iter_mut().zip(x) {
                *li = (nmax + sym_level(iscale, xi, nmax)) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Symmetric quantization of `x` to levels `-nmax..nmax` (stored offset by `nmax`) for
/// Q3_K. Returns the scale. Follows ggml's `make_q3_quants`.
///
/// With `do_rmse`, starting from the plain scale, each level is moved one at a time to
/// where it most improves the `x²`-weighted least-squares fit, for up to 5 passes.
pub(super) fn make_q3_quants<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    l: &mut [i8; N],
    do_rmse: bool,
) -> f32 {
    let (max, amax) = signed_amax(x);
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    if !do_rmse {
        for (li, &xi) in l.iter_mut().zip(x) {
            *li = (sym_level(iscale, xi, nmax) + nmax) as i8;
        }
        return 1.0 / iscale;
    }
    let mut levels = [0i32; N];
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (li, &xi) in levels.iter_mut().zip(x) {
        *li = sym_level(iscale, xi, nmax);
        let lf = *li as f32;
        let w = xi * xi;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (li, &xi) in levels.iter_mut().zip(x) {
            let w = xi * xi;
            let lf = *li as f32;
            let mut slx = sumlx - w * xi * lf;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * lf * lf;
                let new_l = nearest_int(xi * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *li {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for (out, &li) in l.iter_mut().zip(&levels) {
        *out = (li + nmax) as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Search parameters of [`make_qkx2_quants`].
#[derive(Clone, Copy)]
pub(super) struct Qkx2 {
    /// Highest level (levels are `0..=nmax`).
    pub nmax: i32,
    /// Offset of the first trial inverse scale, in levels.
    pub rmin: f32,
    /// Step between trial inverse scales, in levels.
    pub rdelta: f32,
    /// Number of steps after the first trial (`nstep + 1` trials).
    pub nstep: i32,
    /// Minimize the weighted absolute error instead of the squared error.
    pub use_mad: bool,
}

/// Asymmetric quantization `x ≈ scale * l - min`, `l` in `0..=nmax`, for the k-quants
/// with a min. Returns `(scale, min)` with `min >= 0` (the value subtracted). Follows
/// ggml's `make_qkx2_quants`.
///
/// For each trial inverse scale, the levels are fixed and scale and min are refit by
/// weighted least squares; the trial with the lowest weighted error wins. `laux` is
/// scratch space.
pub(super) fn make_qkx2_quants<const N: usize>(
    x: &[f32; N],
    weights: &[f32; N],
    l: &mut [u8; N],
    laux: &mut [u8; N],
    p: Qkx2,
) -> (f32, f32) {
    let Some((&x0, rest)) = x.split_first() else {
        return (0.0, 0.0);
    };
    let (mut min, mut max) = (x0, x0);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x0;
    for (&xi, &w) in rest.iter().zip(&weights[1..]) {
        if xi < min {
            min = xi;
        }
        if xi > max {
            max = xi;
        }
        sum_w += w;
        sum_x += w * xi;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let nmax = p.nmax;
    let level = |iscale: f32, xi: f32, min: f32| nearest_int(iscale * (xi - min)).clamp(0, nmax);
    let error = |scale: f32, min: f32, levels: &[u8; N]| -> f32 {
        let mut err = 0.0f32;
        for ((&xi, &w), &li) in x.iter().zip(weights).zip(levels) {
            let diff = scale * f32::from(li) + min - xi;
            err += w * if p.use_mad { diff.abs() } else { diff * diff };
        }
        err
    };

    let iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    for (li, &xi) in l.iter_mut().zip(x) {
        *li = level(iscale, xi, min) as u8;
    }
    let mut best_error = error(scale, min, l);
    if p.nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=p.nstep {
        let iscale = (p.rmin + p.rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((la, &xi), &w) in laux.iter_mut().zip(x).zip(weights) {
            let li = level(iscale, xi, min);
            *la = li as u8;
            let lf = li as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * xi;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let cur_error = error(this_scale, this_min, laux);
            if cur_error < best_error {
                l.copy_from_slice(laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (v, want) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (0.49999997, 0),
            (3.7, 4),
            (-3.7, -4),
            (4_194_303.0, 4_194_303),
            (-4_194_303.0, -4_194_303),
        ] {
            assert_eq!(nearest_int(v), want, "{v}");
        }
        // Out of range: meaningless, but no panic.
        let _ = nearest_int(f32::NAN);
        let _ = nearest_int(f32::INFINITY);
        let _ = nearest_int(-1e30);
    }

    #[test]
    fn qx_quants_zero_group() {
        let mut l = [5i8; 16];
        assert_eq!(make_qx_quants(&[0.0; 16], 32, &mut l, 1, None), 0.0);
        assert_eq!(l, [0; 16]);
    }

    #[test]
    fn qx_quants_reconstructs_a_grid() {
        // Values already on a grid of step 0.5 come back exactly.
        let x: [f32; 16] = core::array::from_fn(|i| (i as f32 - 8.0) * 0.5);
        let mut l = [0i8; 16];
        let scale = make_qx_quants(&x, 8, &mut l, 1, None);
        for (&xi, &li) in x.iter().zip(&l) {
            assert!((scale * f32::from(li - 8) - xi).abs() < 1e-6, "{xi} {li} {scale}");
        }
    }

    #[test]
    fn q3_quants_stays_in_range() {
        let x: [f32; 16] = core::array::from_fn(|i| ((i * 7) % 11) as f32 - 5.0);
        let mut l = [0i8; 16];
        let scale = make_q3_quants(&x, 4, &mut l, true);
        assert!(scale != 0.0);
        assert!(l.iter().all(|&v| (0..8).contains(&v)));
    }

    #[test]
    fn qkx2_constant_and_ramp() {
        let p = Qkx2 { nmax: 15, rmin: -1.0, rdelta: 0.1, nstep: 20, use_mad: false };
        let (mut l, mut aux) = ([9u8; 32], [0u8; 32]);
        let (scale, min) = make_qkx2_quants(&[2.0; 32], &[1.0; 32], &mut l, &mut aux, p);
        // min is clamped to 0, so a positive constant is all scale.
        assert!(scale > 0.0 && min == 0.0);
        let (scale, min) = make_qkx2_quants(&[-3.0; 32], &[1.0; 32], &mut l, &mut aux, p);
        assert_eq!((scale, min, l), (0.0, 3.0, [0; 32]));
        let x: [f32; 32] = core::array::from_fn(|i| i as f32 * 0.25 - 1.0);
        let (scale, min) = make_qkx2_quants(&x, &[1.0; 32], &mut l, &mut aux, p);
        for (&xi, &li) in x.iter().zip(&l) {
            assert!((scale * f32::from(li) - min - xi).abs() <= scale * 0.5 + 1e-6);
        }
    }
}
