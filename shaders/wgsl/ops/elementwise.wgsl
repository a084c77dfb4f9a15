// In-place elementwise ops on x: ADD (x += y), SCALE (x *= a), SOFTCAP
// (x = a · tanh(x · b), with b = 1/a computed by the host as the oracle does).
#include "common/math.wgsl"

struct Params {
    n: u32,
    a: f32,
    b: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
#if KIND == ADD
@group(0) @binding(2) var<storage, read> other: array<f32>;
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i >= p.n {
        return;
    }
#if KIND == ADD
    x[i] = x[i] + other[i];
#elif KIND == SCALE
    x[i] = x[i] * p.a;
#else
    x[i] = p.a * tanh_sat(x[i] * p.b);
#endif
}
