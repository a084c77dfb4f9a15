//! Quantize → dequantize error on llama.cpp's synthetic test data, inside the budgets of
//! `tests/test-quantize-fns.cpp` (llama.cpp commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_quant::{GgmlType, dequantize_to_vec, quantize_to_vec};

const MAX_QUANTIZATION_TOTAL_ERROR: f32 = 0.002;
const MAX_QUANTIZATION_TOTAL_ERROR_2BITS: f32 = 0.0075;
const MAX_QUANTIZATION_TOTAL_ERROR_3BITS: f32 = 0.0040;

/// The per-format budget, as chosen in test-quantize-fns.cpp `test_vec_dot_q`.
fn budget(ty: GgmlType) -> f32 {
    match ty {
        GgmlType::Q2_K => MAX_QUANTIZATION_TOTAL_ERROR_2BITS,
        GgmlType::Q3_K => MAX_QUANTIZATION_TOTAL_ERROR_3BITS,
        _ => MAX_QUANTIZATION_TOTAL_ERROR,
    }
}

/// `generate_data`: `0.1 + amplitude * cosf(i + offset)`, the sum taken in double as in C.
fn generate_data(offset: f32, n: usize, amplitude: f32) -> Vec<f32> {
    (0..n).map(|i| (0.1f64 + f64::from(amplitude * (i as f32 + offset).cos())) as f32).collect()
}

/// `array_rmse` as upstream defines it: `sqrt(sum of squared differences) / n`.
fn array_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x - y).powi(2)).sum();
    (sum.sqrt() as f32) / a.len() as f32
}

/// Q8_1 and Q8_K have no `to_float` upstream, so test-quantize-fns skips them; here they
/// are held to the default budget.
const TYPES: [GgmlType; 12] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];

#[test]
fn total_quantization_error_within_upstream_budgets() {
    let test_size = 32 * 128;
    let data = generate_data(0.0, test_size, 2.0);
    let mut report = String::new();
    let mut failed = Vec::new();
    for ty in TYPES {
        let q = quantize_to_vec(ty, &data).unwrap();
        let y = dequantize_to_vec(ty, &q).unwrap();
        let err = array_rmse(&data, &y);
        report.push_str(&format!("{ty}: {err:.6} (budget {})\n", budget(ty)));
        if err.is_nan() || err >= budget(ty) {
            failed.push(ty);
        }
    }
    eprint!("{report}");
    assert!(failed.is_empty(), "over budget: {failed:?}\n{report}");
}

/// The error must also shrink with more bits: a sanity check that would catch a format
/// silently decoding with the wrong layout but a lucky small error.
#[test]
fn more_bits_means_less_error() {
    let data = generate_data(1.0, 4096, 1.5);
    let err = |ty| {
        let y = dequantize_to_vec(ty, &quantize_to_vec(ty, &data).unwrap()).unwrap();
        array_rmse(&data, &y)
    };
    let chain = [
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
    ];
    for pair in chain.windows(2) {
        assert!(err(pair[1]) < err(pair[0]), "{:?}", pair);
    }
    assert!(err(GgmlType::Q5_0) < err(GgmlType::Q4_0));
    assert!(err(GgmlType::Q8_0) < err(GgmlType::Q5_1));
}

/// A block that is exactly representable survives the round trip bit for bit.
#[test]
fn representable_values_round_trip_exactly() {
    // Q8_0 with amax 127 has d = 1 exactly.
    let x: Vec<f32> =
        (0..32).map(|i| (i as f32 - 16.0) * 7.0 + if i == 0 { -15.0 } else { 0.0 }).collect();
    let mut x = x;
    x[31] = 127.0;
    let y =
        dequantize_to_vec(GgmlType::Q8_0, &quantize_to_vec(GgmlType::Q8_0, &x).unwrap()).unwrap();
    assert_eq!(x, y);
    // Q4_0: d = max / -8 = 1 with max = -8, levels -8..7.
    let x: Vec<f32> = (0..32).map(|i| ((i % 16) as f32) - 8.0).collect();
    let y =
        dequantize_to_vec(GgmlType::Q4_0, &quantize_to_vec(GgmlType::Q4_0, &x).unwrap()).unwrap();
    assert_eq!(x, y);
}
