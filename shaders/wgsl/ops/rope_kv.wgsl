// Rope of q and k and the store of k and v into one layer's pool, in one dispatch (decode
// would otherwise spend four on them). Each row is at its own position and goes to its own
// slot (common/rows.wgsl). q [n, n_head · head_dim] is rotated in place as rope.wgsl does;
// k [n, n_head_kv · head_dim] is rotated on its way into the cache (the k tensor itself is
// left as it was); v [n, n_head_kv · head_dim_v] is stored as kv_store.wgsl does (KV_F16:
// two f16 values per u32 word, rounded to nearest even; else f32 words).
// Invocations: first one per rotated pair of q, then one per cache word of k, then of v.
#include "common/math.wgsl"
#include "common/f16.wgsl"
#include "common/rows.wgsl"

struct Params {
    n_rows: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    rope_dim: u32,
    _pad0: u32,
    neox: u32,
    theta_scale: f32,
    freq_scale: f32,
    head_dim_v: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;       // (n_rows, n_head · head_dim)
@group(0) @binding(2) var<storage, read> k: array<f32>;             // (n_rows, n_head_kv · head_dim)
@group(0) @binding(3) var<storage, read> v: array<f32>;             // (n_rows, n_head_kv · head_dim_v)
@group(0) @binding(4) var<storage, read_write> cache_k: array<u32>; // (slots, n_head_kv · head_dim / PER_WORD)
@group(0) @binding(5) var<storage, read_write> cache_v: array<u32>; // (slots, n_head_kv · head_dim_v / PER_WORD)
@group(0) @binding(6) var<storage, read> rows: array<u32>;          // the step's rows

#if KV_F16
const PER_WORD: u32 = 2u;
#else
const PER_WORD: u32 = 1u;
#endif

// The angle of rotated pair i at position pos, computed as rope.wgsl (and the CPU oracle)
// does: pos · theta_scale^i by repeated f32 multiplication, times freq_scale.
fn angle(pos: u32, i: u32) -> f32 {
    var theta = f32(pos);
    for (var j = 0u; j < i; j++) {
        theta *= p.theta_scale;
    }
    return p.freq_scale * theta;
}

// The two elements of pair i of a head starting at `base`.
fn pair(base: u32, i: u32) -> vec2<u32> {
    if p.neox != 0u {
        return vec2<u32>(base + i, base + i + p.rope_dim / 2u);
    }
    return vec2<u32>(base + 2u * i, base + 2u * i + 1u);
}

// Element d of head h of row r of k, rotated.
fn k_rotated(r: u32, h: u32, d: u32) -> f32 {
    let base = (r * p.n_head_kv + h) * p.head_dim;
    if d >= p.rope_dim {
        return k[base + d];
    }
    let half_dim = p.rope_dim / 2u;
    var i = d / 2u;
    var second = d % 2u == 1u;
    if p.neox != 0u {
        i = d % half_dim;
        second = d >= half_dim;
    }
    let e = pair(base, i);
    let a = angle(row_pos(r), i);
    let c = cos(a);
    let s = sin(a);
    if second {
        return k[e.x] * s + k[e.y] * c;
    }
    return k[e.x] * c - k[e.y] * s;
}

// Value e of k (row-major), rotated.
fn k_value(e: u32) -> f32 {
    let width = p.n_head_kv * p.head_dim;
    let col = e % width;
    return k_rotated(e / width, col / p.head_dim, col % p.head_dim);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let half_dim = p.rope_dim / 2u;
    var id = flat_group(wid, nwg) * WG + t;
    let n_q = p.n_rows * p.n_head * half_dim;
    if id < n_q {
        let i = id % half_dim;
        let head = (id / half_dim) % p.n_head;
        let r = id / (half_dim * p.n_head);
        let a = angle(row_pos(r), i);
        let c = cos(a);
        let s = sin(a);
        let e = pair((r * p.n_head + head) * p.head_dim, i);
        let x0 = q[e.x];
        let x1 = q[e.y];
        q[e.x] = x0 * c - x1 * s;
        q[e.y] = x0 * s + x1 * c;
        return;
    }
    id -= n_q;
    let row_k = p.n_head_kv * p.head_dim / PER_WORD; // words of one row
    let words_k = p.n_rows * row_k;
    if id < words_k {
        let at = row_slot(id / row_k) * row_k + id % row_k;
#if KV_F16
        cache_k[at] =
            f32_to_f16_bits(k_value(2u * id)) | (f32_to_f16_bits(k_value(2u * id + 1u)) << 16u);
#else
        cache_k[at] = bitcast<u32>(k_value(id));
#endif
        return;
    }
    id -= words_k;
    let row_v = p.n_head_kv * p.head_dim_v / PER_WORD;
    if id < p.n_rows * row_v {
        let at = row_slot(id / row_v) * row_v + id % row_v;
#if KV_F16
        cache_v[at] = f32_to_f16_bits(v[2u * id]) | (f32_to_f16_bits(v[2u * id + 1u]) << 16u);
#else
        cache_v[at] = bitcast<u32>(v[id]);
#endif
    }
}
