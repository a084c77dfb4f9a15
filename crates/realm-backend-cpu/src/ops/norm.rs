//! RMSNorm, as ggml computes it (llama.cpp `ggml/src/ggml-cpu/ops.cpp`,
//! `ggml_compute_forward_rms_norm_f32` followed by the weight multiply, commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`): each square is rounded to f32 and summed in
//! f64, the mean is narrowed to f32, `scale = 1 / sqrtf(mean + eps)`, and
//! `y = (x · scale) · w`.

/// Normalizes each group of `weight.len()` consecutive values of `x` into `out`.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let group = weight.len().max(1);
    for (xg, yg) in x.chunks_exact(group).zip(out.chunks_exact_mut(group)) {
        let mut sum = 0.0f64;
        for &v in xg {
            sum += f64::from(v * v);
        }
        let mean = (sum / group as f64) as f32;
        let scale = 1.0f32 / (mean + eps).sqrt();
        for ((y, &v), &w) in yg.iter_mut().zip(xg).zip(weight) {
            *y = v * scale * w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rms_and_groups() {
        let x = [3.0f32, 4.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0];
        let mut y = [0.0f32; 8];
        rms_norm(&x, &[1.0; 4], 0.0, &mut y);
        let s = 1.0 / 12.5f32.sqrt();
        assert_eq!(&y[..4], &[3.0 * s, 4.0 * s, 3.0 * s, 4.0 * s]);
        assert_eq!(&y[4..], &[1.0; 4]);
        rms_norm(&x, &[2.0, 1.0], 0.0, &mut y);
        let s = 1.0 / 12.5f32.sqrt();
        assert_eq!(&y[..2], &[3.0 * s * 2.0, 4.0 * s]);
    }
}
