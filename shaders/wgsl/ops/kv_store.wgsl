// Store rows of K or V (f32 [n, width]) into one layer's cache at positions start ..
// start + n. The cache is an array of u32: KV_F16 packs two f16 values per word (rounded to
// nearest even, as the CPU oracle rounds), otherwise one f32 per word. One invocation per word.
#include "common/math.wgsl"
#include "common/f16.wgsl"

struct Params {
    words: u32,      // words to write
    first_word: u32, // word of (start, 0)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;        // [n, width]
@group(0) @binding(2) var<storage, read_write> cache: array<u32>; // [n_ctx, width] as words

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let i = flat_group(wid, nwg) * WG + t;
    if i >= p.words {
        return;
    }
#if KV_F16
    cache[p.first_word + i] = f32_to_f16_bits(src[2u * i]) | (f32_to_f16_bits(src[2u * i + 1u]) << 16u);
#else
    cache[p.first_word + i] = bitcast<u32>(src[i]);
#endif
}
