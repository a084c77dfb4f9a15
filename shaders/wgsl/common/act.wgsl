// GLU activations with the CPU oracle's rounding. GELU is the tanh approximation with the
// rounding of ggml's f16 table: the input rounded to f16, the result rounded to f16, inputs
// beyond ±10 bypassing the table.
#include "common/math.wgsl"
#include "common/f16.wgsl"

fn gelu_tanh(x: f32) -> f32 {
    return 0.5 * x * (1.0 + tanh_sat(0.7978846 * x * (1.0 + 0.044715 * x * x)));
}

fn act_gelu(x: f32) -> f32 {
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    return round_f16(gelu_tanh(round_f16(x)));
}

fn act_silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}
