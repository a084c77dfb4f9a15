// Gated linear unit: y = act(gate) · up. ACT_GELU selects GELU (common/act.wgsl), otherwise
// SiLU.
#include "common/math.wgsl"
#include "common/act.wgsl"

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

fn act(x: f32) -> f32 {
#if ACT_GELU
    return act_gelu(x);
#else
    return act_silu(x);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i < p.n {
        y[i] = act(gate[i]) * up[i];
    }
}
