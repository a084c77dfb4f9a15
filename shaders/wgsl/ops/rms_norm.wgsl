// RMSNorm over groups of `group` consecutive values (a whole row, or one head):
// y = (x · 1/sqrt(mean(x²) + eps)) · w. One workgroup per group; the sum of squares is
// reduced in workgroup memory.
#include "common/math.wgsl"

struct Params {
    group: u32,
    n_groups: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // [rows, cols]
@group(0) @binding(2) var<storage, read> w: array<f32>;       // [group]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [rows, cols]

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let g = flat_group(wid, nwg);
    if g >= p.n_groups {
        return;
    }
    let base = g * p.group;
    var sum = 0.0;
    for (var i = t; i < p.group; i += WG) {
        let v = x[base + i];
        sum += v * v;
    }
    red[t] = sum;
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if t < s {
            red[t] += red[t + s];
        }
    }
    workgroupBarrier();
    let scale = 1.0 / sqrt(red[0] / f32(p.group) + p.eps);
    for (var i = t; i < p.group; i += WG) {
        y[base + i] = (x[base + i] * scale) * w[i];
    }
}
