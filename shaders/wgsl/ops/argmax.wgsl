// Index of the largest value of each row (ties to the lowest index; NaN never wins; 0 when
// nothing beats -∞), written as f32. One workgroup per row.
#include "common/math.wgsl"

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const NONE: u32 = 0xffffffffu;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = flat_group(wid, nwg);
    if r >= p.rows {
        return;
    }
    var bv = 0.0;
    var bi = NONE;
    for (var c = t; c < p.cols; c += WG) {
        let v = x[r * p.cols + c];
        // `v > -inf` written without an infinity literal: v is not NaN and at least the lowest
        // finite f32, so -inf itself never wins. The literal is below FLT_MAX as a decimal
        // (browsers reject literals whose exact value exceeds it) and rounds to it.
        if (bi == NONE && v >= -3.40282346e38) || (bi != NONE && v > bv) {
            bv = v;
            bi = c;
        }
    }
    best_v[t] = bv;
    best_i[t] = bi;
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if t < s {
            let ov = best_v[t + s];
            let oi = best_i[t + s];
            let mi = best_i[t];
            if oi != NONE && (mi == NONE || ov > best_v[t] || (ov == best_v[t] && oi < mi)) {
                best_v[t] = ov;
                best_i[t] = oi;
            }
        }
    }
    if t == 0u {
        y[r] = f32(select(best_i[0], 0u, best_i[0] == NONE));
    }
}
