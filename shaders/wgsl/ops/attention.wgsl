// Causal attention over a paged KV pool, with GQA, a sliding window and an optional score
// soft-cap, by online softmax (the flash-attention recurrence: running max m, normalizer l
// and accumulator rescaled by e^(m_old − m_new)). Row r is position pos of sequence s
// (common/rows.wgsl) and attends over positions lo ..= pos of s (lo = pos + 1 − window with a
// window), position j living in slot tables[s][j / block_size] · block_size + j % block_size.
// The rows of one dispatch may belong to any sequences, at any positions.
// One workgroup per (head, query row, split of the row's key positions): each step scores WG
// positions (one per invocation, which also looks up its slot), then every invocation folds
// those scores into its share of the head_dim_v output values.
// Without SPLIT (one split covering every row's span) the output is normalized and written
// to y [n, n_head · dv]; with SPLIT (decode over a long cache) split i covers positions
// lo + i · split_len .. of its row and writes (m, l, acc[dv]) to `part`, merged by
// attention_reduce.wgsl. The host sizes the splits for the longest row of the dispatch; a
// split past a shorter row's span writes m = NEG_BIG, l = 0, acc = 0 (it contributes nothing).
// Pool layout (kv_store.wgsl): K [slots, n_head_kv, head_dim], V [slots, n_head_kv, dv], as
// f16 pairs in u32 words (KV_F16) or f32 words.
#include "common/math.wgsl"
#include "common/f16.wgsl"
#include "common/rows.wgsl"

const MAX_D: u32 = 256u;
const PER: u32 = MAX_D / WG; // output values per invocation

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    dv: u32,
    n_rows: u32,
    window: u32,     // 0: no window
    has_softcap: u32,
    split_len: u32,  // key positions per split
    scale: f32,
    cap: f32,
    inv_cap: f32,
    n_split: u32,
    tables_at: u32,  // word of the block tables in `rows`
    block_size: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;       // (n_rows, n_head · head_dim)
@group(0) @binding(2) var<storage, read> kc: array<u32>;      // K pool of the layer
@group(0) @binding(3) var<storage, read> vc: array<u32>;      // V pool of the layer
@group(0) @binding(4) var<storage, read_write> y: array<f32>; // (n_rows, n_head · dv) or partials
@group(0) @binding(5) var<storage, read> rows: array<u32>;    // the step's rows

var<workgroup> qs: array<f32, MAX_D>;
var<workgroup> sc: array<f32, WG>;
var<workgroup> slots: array<u32, WG>;

fn v_at(e: u32) -> f32 {
#if KV_F16
    return f16_bits_to_f32((vc[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu);
#else
    return bitcast<f32>(vc[e]);
#endif
}

// The pool slot of position j of the sequence whose table starts at word `table`.
fn slot_of(table: u32, j: u32) -> u32 {
    return rows[table + j / p.block_size] * p.block_size + j % p.block_size;
}

// q · K[slot, g] (head_dim is even: pairs share a word in an f16 cache).
fn score(slot: u32, g: u32) -> f32 {
    let base = (slot * p.n_head_kv + g) * p.head_dim;
    var s = 0.0;
    for (var d = 0u; d < p.head_dim; d += 2u) {
#if KV_F16
        let w = kc[(base + d) >> 1u];
        s += qs[d] * f16_bits_to_f32(w & 0xffffu) + qs[d + 1u] * f16_bits_to_f32(w >> 16u);
#else
        s += qs[d] * bitcast<f32>(kc[base + d]) + qs[d + 1u] * bitcast<f32>(kc[base + d + 1u]);
#endif
    }
    s *= p.scale;
    if p.has_softcap != 0u {
        s = p.cap * tanh_sat(s * p.inv_cap);
    }
    return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let h = wid.x;
    let r = wid.y;
    let split = wid.z;
    let g = h / (p.n_head / p.n_head_kv);
    let pos = row_pos(r);
    let table = table_of(row_seq(r), p.tables_at);
    var lo = 0u;
    if p.window != 0u && pos + 1u > p.window {
        lo = pos + 1u - p.window;
    }
    // Empty (s_lo > pos) for a split past this row's span.
    let s_lo = lo + split * p.split_len;
    let s_hi = min(pos + 1u, s_lo + p.split_len); // exclusive

    let qbase = (r * p.n_head + h) * p.head_dim;
    for (var d = t; d < p.head_dim; d += WG) {
#if KV_F16
        // The oracle (like llama.cpp) multiplies an f16 cache with the query rounded to f16.
        qs[d] = round_f16(q[qbase + d]);
#else
        qs[d] = q[qbase + d];
#endif
    }
    workgroupBarrier();

    var m = NEG_BIG;
    var l = 0.0;
    var acc: array<f32, PER>;
    for (var i = 0u; i < PER; i++) {
        acc[i] = 0.0;
    }
    for (var j0 = s_lo; j0 < s_hi; j0 += WG) {
        let j = j0 + t;
        var s = NEG_BIG;
        if j < s_hi {
            let slot = slot_of(table, j);
            slots[t] = slot;
            s = score(slot, g);
        }
        sc[t] = s;
        workgroupBarrier();
        var bmax = NEG_BIG;
        let cnt = min(WG, s_hi - j0);
        for (var i = 0u; i < cnt; i++) {
            bmax = max(bmax, sc[i]);
        }
        let m_new = max(m, bmax);
        let corr = exp(m - m_new);
        l *= corr;
        for (var i = 0u; i < PER; i++) {
            acc[i] *= corr;
        }
        for (var i = 0u; i < cnt; i++) {
            let e = exp(sc[i] - m_new);
            l += e;
            let vbase = (slots[i] * p.n_head_kv + g) * p.dv;
            for (var k = 0u; k < PER; k++) {
                let d = t + k * WG;
                if d < p.dv {
                    acc[k] += e * v_at(vbase + d);
                }
            }
        }
        m = m_new;
        workgroupBarrier();
    }

#if SPLIT
    // Partials of (row r, head h, split): [m, l, acc[dv]].
    let stride = p.dv + 2u;
    let at = ((r * p.n_head + h) * p.n_split + split) * stride;
    if t == 0u {
        y[at] = m;
        y[at + 1u] = l;
    }
    for (var k = 0u; k < PER; k++) {
        let d = t + k * WG;
        if d < p.dv {
            y[at + 2u + d] = acc[k];
        }
    }
#else
    let obase = (r * p.n_head + h) * p.dv;
    for (var k = 0u; k < PER; k++) {
        let d = t + k * WG;
        if d < p.dv {
            y[obase + d] = acc[k] / l;
        }
    }
#endif
}
