// What a matmul does with a result `r` for output element i, compiled in by EPILOGUE:
// 0 stores it, 1 adds it to what y holds (a residual add), 2 and 3 store act(aux[i]) · r with
// SiLU or GELU (the up projection of a gated FFN; aux is the gate). Needs `y`, `aux` and `p`.
// Every variant keeps `aux` in its bindings (`keep_aux`), so the host binds the same list.
#include "common/act.wgsl"

fn finish(i: u32, r: f32) -> f32 {
#if EPILOGUE == 1
    return y[i] + r;
#elif EPILOGUE == 2
    return act_silu(aux[i]) * r;
#elif EPILOGUE == 3
    return act_gelu(aux[i]) * r;
#else
    return r;
#endif
}

// A use of `aux` that costs nothing, for variants that do not read it.
fn keep_aux() {
    _ = arrayLength(&aux);
}
