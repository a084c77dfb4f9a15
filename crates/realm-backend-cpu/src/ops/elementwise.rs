//! Elementwise ops, identical in every mode (they are memory-bound and cheap next to matmul).
//! Formulas follow ggml (llama.cpp `ggml/src/ggml-cpu/vec.h`, commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`) without its polynomial approximations; GELU
//! reproduces the rounding of its f16 lookup table (see [`gelu_ggml`]).

use realm_core::Activation;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_COEF_A: f32 = 0.044_715;

/// `silu(x) = x / (1 + e^-x)` (`ggml_silu_f32`).
#[inline]
pub(crate) fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation (`ggml_gelu_f32`).
#[inline]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)).tanh())
}

/// GELU as llama.cpp's CPU backend computes it for f32 data: `GGML_GELU_FP16` is defined
/// unconditionally in `ggml-cpu/vec.h`, so the input is rounded to f16, looked up in a table of
/// f16-rounded `ggml_gelu_f32` values, and read back; inputs beyond ±10 bypass the table.
/// Matching this rounding matters: Gemma 3's activations make some prompts sensitive to it
/// (measured against the oracle). The table (every f16 input, 256 KiB of f32) is built on first
/// use; computing `tanh` per element instead cost a fifth of Gemma 3's prompt time.
#[inline]
pub(crate) fn gelu_ggml(x: f32) -> f32 {
    use half::f16;
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let table = gelu_table();
        table.get(usize::from(f16::from_f32(x).to_bits())).copied().unwrap_or(0.0)
    }
}

/// `gelu_tanh` of every f16 value, rounded to f16, indexed by the input's bits.
fn gelu_table() -> &'static [f32] {
    use half::f16;
    static TABLE: std::sync::OnceLock<Box<[f32]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_tanh(f16::from_bits(bits).to_f32())).to_f32())
            .collect()
    })
}

pub(crate) fn glu(gate: &[f32], up: &[f32], act: Activation, out: &mut [f32]) {
    let f = match act {
        Activation::Silu => silu,
        Activation::GeluTanh => gelu_ggml,
    };
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = f(g) * u;
    }
}

/// `cap · tanh(x · (1 / cap))`: llama.cpp scales by the reciprocal (two `ggml_scale` around a
/// `ggml_tanh`), which can differ from `x / cap` in the last bit.
#[inline]
pub(crate) fn softcap(x: f32, cap: f32) -> f32 {
    cap * (x * (1.0 / cap)).tanh()
}

/// Index of the largest value, ties to the lowest index; NaNs are never the maximum
/// (`ggml_vec_argmax_f32` keeps a strict `>`).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let (mut best, mut idx) = (f32::NEG_INFINITY, 0);
    for (i, &v) in row.iter().enumerate() {
        if v > best {
            best = v;
            idx = i;
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        // The f16 table rounds both the input and the result.
        assert_eq!(gelu_ggml(1.0), half::f16::from_f32(gelu_tanh(1.0)).to_f32());
        assert_eq!(
            gelu_ggml(0.1234),
            half::f16::from_f32(gelu_tanh(half::f16::from_f32(0.1234).to_f32())).to_f32()
        );
        assert_eq!((gelu_ggml(-11.0), gelu_ggml(12.5)), (0.0, 12.5));
        // The table equals the formula on a sweep of inputs.
        for i in -2000..=2000 {
            let x = i as f32 * 0.004_999_9;
            let direct = half::f16::from_f32(gelu_tanh(half::f16::from_f32(x).to_f32())).to_f32();
            assert_eq!(gelu_ggml(x).to_bits(), direct.to_bits(), "x = {x}");
        }
        assert_eq!(argmax(&[1.0, 3.0, 3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert!((softcap(100.0, 30.0) - 30.0 * (100.0f32 / 30.0).tanh()).abs() < 1e-5);
    }
}
