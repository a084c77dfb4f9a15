// Tiled matrix × matrix, for prefill: y[b, row] = Σ_c W[row, c] · x[b, c] (+ bias[row]), then
// the epilogue (common/epilogue.wgsl: store, add to y, or a GLU with the gate in aux).
// A workgroup of 8 × 8 invocations computes a 32 × 32 tile of y (4 × 4 values each),
// staging 32 columns of W (dequantized) and of x in workgroup memory per step. Tiles are
// stored as T: f32, or f16 where PRECISION_F16 is on (accumulation stays f32).
// Shapes as matvec.wgsl: W [m, k] GGUF blocks; x [n, k]; y [n, out_stride].
#if PRECISION_F16
alias T = f16;
#else
alias T = f32;
#endif
#include QUANT
#include "common/matmul_io.wgsl"
#include "common/epilogue.wgsl"

const TILE: u32 = 32u;
const TK: u32 = 32u;

var<workgroup> wt: array<T, TILE * TK>; // [row, c]
var<workgroup> xt: array<T, TILE * TK>; // [b, c]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    keep_aux();
    let t = lid.x;
    let tx = t % 8u; // 4 weight rows
    let ty = t / 8u; // 4 activation rows
    let row_base = wid.x * TILE;
    let b_base = wid.y * TILE;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var c0 = 0u; c0 < p.k; c0 += TK) {
        // 32 × 32 values = 256 quads per tile, four per invocation.
        for (var i = 0u; i < 4u; i++) {
            let q = t + i * WG;
            let r = q / (TK / 4u);
            let c = (q % (TK / 4u)) * 4u;
            let wv = load_w4(row_base + r, c0 + c);
            let xv = load_x4(b_base + r, c0 + c);
            for (var e = 0u; e < 4u; e++) {
                wt[r * TK + c + e] = T(wv[e]);
                xt[r * TK + c + e] = T(xv[e]);
            }
        }
        workgroupBarrier();
        for (var c = 0u; c < TK; c++) {
            var wv: array<f32, 4>;
            for (var j = 0u; j < 4u; j++) {
                wv[j] = f32(wt[(tx * 4u + j) * TK + c]);
            }
            for (var i = 0u; i < 4u; i++) {
                let xv = f32(xt[(ty * 4u + i) * TK + c]);
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] += xv * wv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let b = b_base + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let row = row_base + tx * 4u + j;
            if b < p.n && row < p.m {
                let col = p.row0 + row;
                var v = acc[i][j];
                if p.has_bias != 0u {
                    v += bias[col];
                }
                let i = b * p.out_stride + col;
                y[i] = finish(i, v);
            }
        }
    }
}
