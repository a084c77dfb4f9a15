// Merges the split partials of attention.wgsl (SPLIT): for each (row, head),
// M = max m_s, y = Σ_s e^(m_s − M) acc_s / Σ_s e^(m_s − M) l_s. One workgroup per (row, head).
// A split past its row's span is empty (l = 0, m = NEG_BIG) and is skipped; the first split
// of a row is never empty.
#include "common/math.wgsl"

struct Params {
    n_head: u32,
    dv: u32,
    n_split: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;   // (n_rows · n_head · n_split, dv + 2)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (n_rows, n_head · dv)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wid.x;
    let r = wid.y;
    let stride = p.dv + 2u;
    let base = (r * p.n_head + h) * p.n_split * stride;
    var mx = NEG_BIG;
    for (var s = 0u; s < p.n_split; s++) {
        if part[base + s * stride + 1u] > 0.0 {
            mx = max(mx, part[base + s * stride]);
        }
    }
    var l = 0.0;
    for (var s = 0u; s < p.n_split; s++) {
        let ls = part[base + s * stride + 1u];
        if ls > 0.0 {
            l += exp(part[base + s * stride] - mx) * ls;
        }
    }
    for (var d = t; d < p.dv; d += WG) {
        var acc = 0.0;
        for (var s = 0u; s < p.n_split; s++) {
            let at = base + s * stride;
            if part[at + 1u] > 0.0 {
                acc += exp(part[at] - mx) * part[at + 2u + d];
            }
        }
        var out = 0.0;
        if l > 0.0 {
            out = acc / l;
        }
        y[(r * p.n_head + h) * p.dv + d] = out;
    }
}
