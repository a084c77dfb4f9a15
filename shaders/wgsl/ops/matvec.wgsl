// Matrix × few vectors, for decode: y[b, row] = Σ_c W[row, c] · x[b, c] (+ bias[row]), then
// the epilogue (common/epilogue.wgsl: store, add to y, or a GLU with the gate in aux). With
// `norm`, x's rows are first RMS-normalized (times nw, eps `eps`), as rms_norm would, so the
// norm needs no dispatch of its own.
// One workgroup computes ROWS output rows of NB activation rows b0 .. b0 + NB (4 × 1, the wide
// variant's 16 × 1, or the batch variant's 4 × 8 for batched decode, which dequantizes each
// weight block once for all NB rows): each invocation walks the columns four at a time
// (dequantizing W in place with the format's `dq4`), then the partial sums are reduced across
// the workgroup (subgroup sums first where SUBGROUPS is on).
// Parameters, bindings 0-5 and shapes as the prefill matmul (common/matmul_io.wgsl); binding 6
// is the norm's weight.
#include "common/math.wgsl"
#include QUANT
#include "common/matmul_io.wgsl"
#include "common/epilogue.wgsl"

@group(0) @binding(6) var<storage, read> nw: array<f32>;   // [k]: the norm's weight

const ACC: u32 = ROWS * NB; // accumulators per invocation: (output row, activation row)

var<workgroup> red: array<f32, ACC * WG>;
var<workgroup> part: array<f32, NB * WG>; // the norm's partial sums of squares

// Four values of activation row b from column c, normalized where NORM is on (zeros for a
// row past the batch).
fn x4(b: u32, c: u32, scale: f32) -> vec4<f32> {
    if b >= p.n {
        return vec4<f32>(0.0);
    }
    let at = b * p.k + c;
    var xv = vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
#if NORM
    xv = xv * scale * vec4<f32>(nw[c], nw[c + 1u], nw[c + 2u], nw[c + 3u]);
#endif
    return xv;
}

// One value of activation row b at column c, as x4.
fn x1(b: u32, c: u32, scale: f32) -> f32 {
    if b >= p.n {
        return 0.0;
    }
    var xc = x[b * p.k + c];
#if NORM
    xc = xc * scale * nw[c];
#endif
    return xc;
}

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
    let b0 = wid.z * NB;
    var acc: array<f32, ACC>; // [r * NB + i]
    for (var a = 0u; a < ACC; a++) {
        acc[a] = 0.0;
    }
    keep_aux();
    // The norm's scale of each activation row: 1 / sqrt(mean(x²) + eps). Each invocation sums
    // its share of the squares, then every invocation adds up all the shares: one barrier (a
    // CPU implementation pays for each barrier with a switch of every invocation).
    var scale: array<f32, NB>;
    for (var i = 0u; i < NB; i++) {
        scale[i] = 1.0;
    }
#if NORM
    for (var i = 0u; i < NB; i++) {
        var ss = 0.0;
        if b0 + i < p.n {
            let xb = (b0 + i) * p.k;
            for (var c = t; c < p.k; c += WG) {
                ss += x[xb + c] * x[xb + c];
            }
        }
        part[i * WG + t] = ss;
    }
    workgroupBarrier();
    for (var i = 0u; i < NB; i++) {
        var total = 0.0;
        for (var j = 0u; j < WG; j++) {
            total += part[i * WG + j];
        }
        scale[i] = 1.0 / sqrt(total / f32(p.k) + p.eps);
    }
#else
    _ = arrayLength(&nw);
#endif
    let k4 = p.k / 4u;
    for (var c4 = t; c4 < k4; c4 += WG) {
        let c = c4 * 4u;
        var xv: array<vec4<f32>, NB>;
        for (var i = 0u; i < NB; i++) {
            xv[i] = x4(b0 + i, c, scale[i]);
        }
        for (var r = 0u; r < ROWS; r++) {
            let row = first + r;
            if row < p.m {
                let w = dq4(row * p.row_bytes, c);
                for (var i = 0u; i < NB; i++) {
                    acc[r * NB + i] += dot(w, xv[i]);
                }
            }
        }
    }
    // Columns past the last multiple of 4 (float formats only; block formats have none).
    let c = k4 * 4u + t;
    if c < p.k {
        for (var r = 0u; r < ROWS; r++) {
            let row = first + r;
            if row < p.m {
                let w = dq1(row * p.row_bytes, c);
                for (var i = 0u; i < NB; i++) {
                    acc[r * NB + i] += w * x1(b0 + i, c, scale[i]);
                }
            }
        }
    }
#if SUBGROUPS
    // Subgroup sums, then one slot per subgroup. Invocations are assumed to form subgroups
    // in order of local_invocation_index (true of every 1D compute workgroup on the
    // drivers this runs on); the slot count covers the smallest subgroup size, 4.
    let n_sg = (WG + sg_size - 1u) / sg_size;
    for (var a = 0u; a < ACC; a++) {
        let s = subgroupAdd(acc[a]);
        if sg_lane == 0u {
            red[a * WG + t / sg_size] = s;
        }
    }
    workgroupBarrier();
    if t < ACC {
        var sum = 0.0;
        for (var i = 0u; i < n_sg; i++) {
            sum += red[t * WG + i];
        }
        write_at(first, b0, t, sum);
    }
#else
    for (var a = 0u; a < ACC; a++) {
        red[a * WG + t] = acc[a];
    }
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if t < s {
            for (var a = 0u; a < ACC; a++) {
                red[a * WG + t] += red[a * WG + t + s];
            }
        }
    }
    workgroupBarrier();
    if t < ACC {
        write_at(first, b0, t, red[t * WG]);
    }
#endif
}

// Writes accumulator a = r * NB + i of the workgroup's (first, b0) block, if it is inside y.
fn write_at(first: u32, b0: u32, a: u32, sum: f32) {
    let row = first + a / NB;
    let b = b0 + a % NB;
    if row < p.m && b < p.n {
        write(b, row, sum);
    }
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
