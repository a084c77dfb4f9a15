// Scatter rows of K or V (f32 [n, width]) into one layer's pool: row r goes to its slot
// (common/rows.wgsl), the slots of a step in any order. The pool is an array of u32 words,
// [slots, width] values: KV_F16 packs two f16 values per word (rounded to nearest even, as
// the CPU oracle rounds), otherwise one f32 per word. One invocation per word.
#include "common/math.wgsl"
#include "common/f16.wgsl"
#include "common/rows.wgsl"

struct Params {
    words: u32,     // words to write: n_rows · row_words
    row_words: u32, // words of one row (width / values per word)
    n_rows: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;         // (n_rows, width)
@group(0) @binding(2) var<storage, read_write> cache: array<u32>; // (slots, row_words)
@group(0) @binding(3) var<storage, read> rows: array<u32>;        // the step's rows

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i >= p.words {
        return;
    }
    let at = row_slot(i / p.row_words) * p.row_words + i % p.row_words;
#if KV_F16
    cache[at] = f32_to_f16_bits(src[2u * i]) | (f32_to_f16_bits(src[2u * i + 1u]) << 16u);
#else
    cache[at] = bitcast<u32>(src[i]);
#endif
}
