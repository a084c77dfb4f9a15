// What a matmul does with a result `r` for output element i (`p.epilogue`): 0 stores it,
// 1 adds it to what y holds (a residual add), 2 and 3 store act(aux[i]) · r with SiLU or
// GELU (the up projection of a gated FFN; aux is the gate). Needs `y`, `aux` and `p`.
#include "common/act.wgsl"

fn finish(i: u32, r: f32) -> f32 {
    switch p.epilogue {
        case 1u: {
            return y[i] + r;
        }
        case 2u: {
            return act_silu(aux[i]) * r;
        }
        case 3u: {
            return act_gelu(aux[i]) * r;
        }
        default: {
            return r;
        }
    }
}
