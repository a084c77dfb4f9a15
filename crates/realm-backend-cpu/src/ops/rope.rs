//! Rotary position embedding, as ggml's CPU backend computes it (llama.cpp
//! `ggml/src/ggml-cpu/ops.cpp`: `ggml_rope_cache_init`, `rope_yarn` and the rotation loops,
//! commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`) with no YaRN extrapolation
//! (`ext_factor = 0`), no frequency factors and `mscale = 1`:
//!
//! - `theta_scale = powf(freq_base, -2 / rope_dim)` in f32;
//! - for pair `i`, `theta_i = pos · theta_scale^i` built by repeated f32 multiplication
//!   (`theta *= theta_scale`, as the cache does, not by `powf` per pair), then
//!   `cos/sin(freq_scale · theta_i)` in f32;
//! - Normal rotates `(x[2i], x[2i+1])`, NeoX rotates `(x[i], x[i + rope_dim/2])`; values past
//!   `rope_dim` pass through.

use realm_core::RopeStyle;

/// Fills `cache` with `(cos, sin)` of each of the `cache.len()` pairs at position `pos`.
pub(crate) fn cache(
    pos: usize,
    rope_dim: usize,
    freq_base: f32,
    freq_scale: f32,
    cache: &mut [(f32, f32)],
) {
    let theta_scale = freq_base.powf(-2.0f32 / rope_dim as f32);
    let mut theta = pos as f32;
    for c in cache.iter_mut() {
        let t = freq_scale * theta;
        *c = (t.cos(), t.sin());
        theta *= theta_scale;
    }
}

/// Rotates the first `2 · cache.len()` values of one head in place.
pub(crate) fn rotate(head: &mut [f32], cache: &[(f32, f32)], style: RopeStyle) {
    let half = cache.len();
    match style {
        RopeStyle::Normal => {
            for (pair, &(c, s)) in head.chunks_exact_mut(2).zip(cache) {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * c - x1 * s;
                pair[1] = x0 * s + x1 * c;
            }
        }
        RopeStyle::Neox => {
            let (lo, rest) = head.split_at_mut(half.min(head.len()));
            for ((a, b), &(c, s)) in lo.iter_mut().zip(rest.iter_mut()).zip(cache) {
                let (x0, x1) = (*a, *b);
                *a = x0 * c - x1 * s;
                *b = x0 * s + x1 * c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_identity_and_pairs_rotate() {
        let mut c = [(0.0, 0.0); 2];
        cache(0, 4, 10000.0, 1.0, &mut c);
        assert_eq!(c, [(1.0, 0.0), (1.0, 0.0)]);
        cache(1, 4, 10000.0, 1.0, &mut c);
        assert_eq!(c[0], (1.0f32.cos(), 1.0f32.sin()));
        let mut h = [1.0, 0.0, 1.0, 0.0];
        rotate(&mut h, &c, RopeStyle::Normal);
        assert_eq!(h[..2], [1.0f32.cos(), 1.0f32.sin()]);
        let mut h = [1.0, 1.0, 0.0, 0.0];
        rotate(&mut h, &c, RopeStyle::Neox);
        assert_eq!([h[0], h[2]], [1.0f32.cos(), 1.0f32.sin()]);
    }
}
