// Matrix × few vectors, for decode: y[b, row] = Σ_c W[row, c] · x[b, c] (+ bias[row]), then
// the epilogue (common/epilogue.wgsl: store, add to y, or a GLU with the gate in aux). With
// `norm`, x's row is first RMS-normalized (times nw, eps `eps`), as rms_norm would, so the norm
// needs no dispatch of its own.
// One workgroup computes ROWS (4, or 16 for the wide variant) output rows of one activation
// row b: each invocation walks the columns four at a time (dequantizing W in place with the format's `dq4`), then the partial
// sums are reduced across the workgroup (subgroup sums first where SUBGROUPS is on).
// Parameters, bindings 0-5 and shapes as the prefill matmul (common/matmul_io.wgsl); binding 6
// is the norm's weight.
#include "common/math.wgsl"
#include QUANT
#include "common/matmul_io.wgsl"
#include "common/epilogue.wgsl"

@group(0) @binding(6) var<storage, read> nw: array<f32>;   // [k]: the norm's weight

var<workgroup> red: array<f32, ROWS * WG>;
var<workgroup> part: array<f32, WG>; // the norm's partial sums of squares

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
#if SUBGROUPS
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
#endif
) {
    let first = flat_group(wid, nwg) * ROWS;
    let b = wid.z;
    let xb = b * p.k;
    var acc: array<f32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
    }
    keep_aux();
    // The norm's scale: 1 / sqrt(mean(x²) + eps) over the row. Each invocation sums its share
    // of the squares, then every invocation adds up all the shares: one barrier (a CPU
    // implementation pays for each barrier with a switch of every invocation).
    var scale = 1.0;
#if NORM
    var ss = 0.0;
    for (var c = t; c < p.k; c += WG) {
        ss += x[xb + c] * x[xb + c];
    }
    part[t] = ss;
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < WG; i++) {
        total += part[i];
    }
    scale = 1.0 / sqrt(total / f32(p.k) + p.eps);
#else
    _ = arrayLength(&nw);
#endif
    let k4 = p.k / 4u;
    for (var c4 = t; c4 < k4; c4 += WG) {
        let c = c4 * 4u;
        var xv = vec4<f32>(x[xb + c], x[xb + c + 1u], x[xb + c + 2u], x[xb + c + 3u]);
#if NORM
        xv = xv * scale * vec4<f32>(nw[c], nw[c + 1u], nw[c + 2u], nw[c + 3u]);
#endif
        for (var r = 0u; r < ROWS; r++) {
            let row = first + r;
            if row < p.m {
                acc[r] += dot(dq4(row * p.row_bytes, c), xv);
            }
        }
    }
    // Columns past the last multiple of 4 (float formats only; block formats have none).
    let c = k4 * 4u + t;
    if c < p.k {
        var xc = x[xb + c];
#if NORM
        xc = xc * scale * nw[c];
#endif
        for (var r = 0u; r < ROWS; r++) {
            let row = first + r;
            if row < p.m {
                acc[r] += dq1(row * p.row_bytes, c) * xc;
            }
        }
    }
#if SUBGROUPS
    // Subgroup sums, then one slot per subgroup. Invocations are assumed to form subgroups
    // in order of local_invocation_index (true of every 1D compute workgroup on the
    // drivers this runs on); the slot count covers the smallest subgroup size, 4.
    let n_sg = (WG + sg_size - 1u) / sg_size;
    for (var r = 0u; r < ROWS; r++) {
        let s = subgroupAdd(acc[r]);
        if sg_lane == 0u {
            red[r * WG + t / sg_size] = s;
        }
    }
    workgroupBarrier();
    if t < ROWS {
        let row = first + t;
        var sum = 0.0;
        for (var i = 0u; i < n_sg; i++) {
            sum += red[t * WG + i];
        }
        if row < p.m {
            write(b, row, sum);
        }
    }
#else
    for (var r = 0u; r < ROWS; r++) {
        red[r * WG + t] = acc[r];
    }
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if t < s {
            for (var r = 0u; r < ROWS; r++) {
                red[r * WG + t] += red[r * WG + t + s];
            }
        }
    }
    workgroupBarrier();
    if t < ROWS {
        let row = first + t;
        if row < p.m {
            write(b, row, red[t * WG]);
        }
    }
#endif
}

fn write(b: u32, row: u32, sum: f32) {
    let col = p.row0 + row;
    var v = sum;
    if p.has_bias != 0u {
        v += bias[col];
    }
    let i = b * p.out_stride + col;
    y[i] = finish(i, v);
}
