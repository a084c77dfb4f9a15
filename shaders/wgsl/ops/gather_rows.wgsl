// out[i] = x[idx[i]], whole rows (idx may repeat and be in any order): the rows of a batch
// that need logits. A kernel rather than buffer copies, so the step's dispatches keep sharing
// one compute pass (a copy ends it) whatever runs the indices form. One invocation per value.
#include "common/math.wgsl"

struct Params {
    n: u32,    // values to write: idx rows · cols
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (rows, cols)
@group(0) @binding(2) var<storage, read> idx: array<u32>;       // (n / cols): a row of x each
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // (n / cols, cols)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i >= p.n {
        return;
    }
    out[i] = x[idx[i / p.cols] * p.cols + i % p.cols];
}
