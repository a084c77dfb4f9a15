// What the matmul kernels share (matvec.wgsl, matmul.wgsl, matmul_coop.wgsl): parameters,
// bindings 0-5 and the loads of four weights (dequantized from GGUF blocks) and four activations, zeros
// past the matrices' edges. Shapes: W [m, k] as GGUF blocks (rows row0 .. row0 + m of the
// weight, one buffer of a split weight); x [n, k]; y [n, out_stride].

struct Params {
    m: u32,
    k: u32,
    row_bytes: u32,
    out_stride: u32,
    row0: u32,
    has_bias: u32,
    n: u32,          // activation rows
    _epilogue: u32, // (compiled in: EPILOGUE)
    _norm: u32,     // (compiled in: NORM, matvec only)
    eps: f32,       // the folded norm's eps (matvec only)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;      // W, GGUF blocks
@group(0) @binding(2) var<storage, read> x: array<f32>;       // [n, k]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [n, out_stride]
@group(0) @binding(4) var<storage, read> bias: array<f32>;    // [out_stride]
@group(0) @binding(5) var<storage, read> aux: array<f32>;     // [n, out_stride]: the GLU gate

// Four weights of `row` from column c (zeros past the row's end).
fn load_w4(row: u32, c: u32) -> vec4<f32> {
    if row >= p.m {
        return vec4<f32>(0.0);
    }
    let rb = row * p.row_bytes;
    if c + 4u <= p.k {
        return dq4(rb, c);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        if c + i < p.k {
            v[i] = dq1(rb, c + i);
        }
    }
    return v;
}

fn load_x4(b: u32, c: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if b < p.n {
        for (var i = 0u; i < 4u; i++) {
            if c + i < p.k {
                v[i] = x[b * p.k + c + i];
            }
        }
    }
    return v;
}

