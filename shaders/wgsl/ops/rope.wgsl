// Rotary position embedding in place on x [n, n_heads · head_dim], row r at its own position
// (common/rows.wgsl), as the CPU oracle computes it (ggml's rope cache):
// theta_i = pos · theta_scale^i by repeated f32 multiplication, angle = freq_scale · theta_i;
// NORMAL rotates (x[2i], x[2i+1]), NEOX (x[i], x[i + rope_dim/2]).
// `theta_scale` = freq_base^(-2 / rope_dim) comes from the host. One invocation per pair.
#include "common/math.wgsl"
#include "common/rows.wgsl"

struct Params {
    n_rows: u32,
    n_heads: u32,
    head_dim: u32,
    rope_dim: u32,
    _pad0: u32,
    neox: u32,
    theta_scale: f32,
    freq_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // (n_rows, n_heads · head_dim)
@group(0) @binding(2) var<storage, read> rows: array<u32>;    // the step's rows (common/rows.wgsl)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let half_dim = p.rope_dim / 2u;
    let id = flat_group(wid, nwg) * WG + t;
    if id >= p.n_rows * p.n_heads * half_dim {
        return;
    }
    let i = id % half_dim;
    let head = (id / half_dim) % p.n_heads;
    let r = id / (half_dim * p.n_heads);
    var theta = f32(row_pos(r));
    for (var k = 0u; k < i; k++) {
        theta *= p.theta_scale;
    }
    let angle = p.freq_scale * theta;
    let c = cos(angle);
    let s = sin(angle);
    let base = (r * p.n_heads + head) * p.head_dim;
    var a: u32;
    var b: u32;
    if p.neox != 0u {
        a = base + i;
        b = base + i + half_dim;
    } else {
        a = base + 2u * i;
        b = a + 1u;
    }
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
