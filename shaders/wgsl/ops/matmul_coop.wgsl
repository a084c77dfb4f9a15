// Tiled matrix × matrix with cooperative matrices (tensor cores), for prefill on adapters with
// wgpu's cooperative-matrix feature (native Vulkan/Metal): as matmul.wgsl, y[b, row] =
// Σ_c W[row, c] · x[b, c] (+ bias[row]), then the epilogue. A workgroup of 4 subgroups of 32
// (the backend picks this kernel only where subgroups are exactly 32 wide) computes a 64 × 64
// tile of y: each step stages 32 columns of x and of W (dequantized) as f16 in workgroup
// memory, and each subgroup multiplies them into its 32 × 32 quarter, four 16 × 16 f32
// accumulators. The accumulators go through workgroup memory to the epilogue.
#include QUANT
#include "common/matmul_io.wgsl"
#include "common/epilogue.wgsl"

const TM: u32 = 64u; // activation rows per workgroup
const TN: u32 = 64u; // weight rows per workgroup
const TK: u32 = 32u; // columns per step
const SG: u32 = 32u; // subgroup width

var<workgroup> xt: array<f16, TM * TK>; // [b, c]
var<workgroup> wt: array<f16, TN * TK>; // [row, c]
var<workgroup> ct: array<f32, TM * TN>; // [b, row]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    keep_aux();
    let row_base = wid.x * TN;
    let b_base = wid.y * TM;
    // This subgroup's quarter of the tile.
    let sg = t / SG;
    let sm = (sg / 2u) * 32u;
    let sn = (sg % 2u) * 32u;
    var c00: coop_mat16x16<f32, C>;
    var c01: coop_mat16x16<f32, C>;
    var c10: coop_mat16x16<f32, C>;
    var c11: coop_mat16x16<f32, C>;
    for (var c0 = 0u; c0 < p.k; c0 += TK) {
        // 64 × 32 values of each = 512 quads, four per invocation.
        for (var i = 0u; i < 4u; i++) {
            let q = t + i * WG;
            let r = q / (TK / 4u);
            let c = (q % (TK / 4u)) * 4u;
            let wv = load_w4(row_base + r, c0 + c);
            let xv = load_x4(b_base + r, c0 + c);
            for (var e = 0u; e < 4u; e++) {
                wt[r * TK + c + e] = f16(wv[e]);
                xt[r * TK + c + e] = f16(xv[e]);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk += 16u) {
            // A = x rows (row-major, M × K); B = W rows as columns (K × N, column-major).
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xt[sm * TK + kk], TK);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xt[(sm + 16u) * TK + kk], TK);
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&wt[sn * TK + kk], TK);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&wt[(sn + 16u) * TK + kk], TK);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }
    coopStoreT(c00, &ct[sm * TN + sn], TN);
    coopStoreT(c01, &ct[sm * TN + sn + 16u], TN);
    coopStoreT(c10, &ct[(sm + 16u) * TN + sn], TN);
    coopStoreT(c11, &ct[(sm + 16u) * TN + sn + 16u], TN);
    workgroupBarrier();
    for (var i = 0u; i < TM * TN / WG; i++) {
        let e = t + i * WG;
        let b = b_base + e / TN;
        let row = row_base + e % TN;
        if b < p.n && row < p.m {
            let col = p.row0 + row;
            var v = ct[e];
            if p.has_bias != 0u {
                v += bias[col];
            }
            let o = b * p.out_stride + col;
            y[o] = finish(o, v);
        }
    }
}
