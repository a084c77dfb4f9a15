// Embedding gather from a quantized table: y[pairs[2i], c] = dequant(table row pairs[2i+1], c)
// for every pair i (the host lists, per buffer of a split table, which output row reads which
// row of that buffer). With `from_ids`, `pairs` is instead [n_pairs] token ids as f32 values on
// the device (an argmax's output): output row i reads id i, when it falls in this buffer's rows
// row0 .. row0 + rows. One invocation per value.
#include "common/math.wgsl"
#include QUANT

struct Params {
    n_pairs: u32,
    cols: u32,
    row_bytes: u32,
    from_ids: u32,
    row0: u32,
    rows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;      // table, GGUF blocks
@group(0) @binding(2) var<storage, read> pairs: array<u32>;   // [n_pairs, 2]: out row, table row (or ids)
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [rows, cols]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i >= p.n_pairs * p.cols {
        return;
    }
    let pair = i / p.cols;
    let c = i % p.cols;
    if p.from_ids != 0u {
        // An f32 id; a negative or NaN one converts to 0 or fails the range test below.
        let id = u32(max(bitcast<f32>(pairs[pair]), 0.0));
        if id >= p.row0 && id - p.row0 < p.rows {
            y[pair * p.cols + c] = dq1((id - p.row0) * p.row_bytes, c);
        }
        return;
    }
    y[pairs[2u * pair] * p.cols + c] = dq1(pairs[2u * pair + 1u] * p.row_bytes, c);
}
