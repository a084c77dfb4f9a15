// Embedding gather from a quantized table: y[pairs[2i], c] = dequant(table row pairs[2i+1], c)
// for every pair i (the host lists, per buffer of a split table, which output row reads which
// row of that buffer). One invocation per value.
#include "common/math.wgsl"
#include QUANT

struct Params {
    n_pairs: u32,
    cols: u32,
    row_bytes: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;      // table, GGUF blocks
@group(0) @binding(2) var<storage, read> pairs: array<u32>;   // [n_pairs, 2]: out row, table row
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [rows, cols]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i >= p.n_pairs * p.cols {
        return;
    }
    let pair = i / p.cols;
    let c = i % p.cols;
    y[pairs[2u * pair] * p.cols + c] = dq1(pairs[2u * pair + 1u] * p.row_bytes, c);
}
