// Gated linear unit: y = act(gate) · up. ACT_GELU selects GELU (tanh approximation) with the
// rounding of ggml's f16 table, as the CPU oracle does: the input rounded to f16, the result
// rounded to f16, inputs beyond ±10 bypassing the table; otherwise SiLU.
#include "common/math.wgsl"
#include "common/f16.wgsl"

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn gelu_tanh(x: f32) -> f32 {
    return 0.5 * x * (1.0 + tanh_sat(0.7978846 * x * (1.0 + 0.044715 * x * x)));
}

fn act(x: f32) -> f32 {
#if ACT_GELU
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    return round_f16(gelu_tanh(round_f16(x)));
#else
    return x / (1.0 + exp(-x));
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i < p.n {
        y[i] = act(gate[i]) * up[i];
    }
}
