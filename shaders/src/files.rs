//! Every .wgsl file, embedded at build time, by its path under `wgsl/`.

macro_rules! wgsl {
    ($($path:literal),* $(,)?) => {
        /// `(path under wgsl/, source)` of every shader file.
        pub const FILES: &[(&str, &str)] = &[
            $(($path, include_str!(concat!("../wgsl/", $path))),)*
        ];
    };
}

wgsl!(
    "common/bytes.wgsl",
    "common/f16.wgsl",
    "common/math.wgsl",
    "common/kscale.wgsl",
    "common/iq4_codebook.wgsl",
    "common/act.wgsl",
    "common/epilogue.wgsl",
    "common/matmul_io.wgsl",
    "common/rows.wgsl",
    "quant/f32.wgsl",
    "quant/f16.wgsl",
    "quant/bf16.wgsl",
    "quant/q4_0.wgsl",
    "quant/q4_1.wgsl",
    "quant/q5_0.wgsl",
    "quant/q5_1.wgsl",
    "quant/q8_0.wgsl",
    "quant/q8_1.wgsl",
    "quant/q2_k.wgsl",
    "quant/q3_k.wgsl",
    "quant/q4_k.wgsl",
    "quant/q5_k.wgsl",
    "quant/q6_k.wgsl",
    "quant/q8_k.wgsl",
    "quant/iq4_nl.wgsl",
    "quant/iq4_xs.wgsl",
    "ops/matvec.wgsl",
    "ops/matmul.wgsl",
    "ops/matmul_coop.wgsl",
    "ops/embed.wgsl",
    "ops/rms_norm.wgsl",
    "ops/rope.wgsl",
    "ops/glu.wgsl",
    "ops/elementwise.wgsl",
    "ops/argmax.wgsl",
    "ops/gather_rows.wgsl",
    "ops/kv_store.wgsl",
    "ops/rope_kv.wgsl",
    "ops/attention.wgsl",
    "ops/attention_reduce.wgsl",
);

/// The source of `path`, if it is one of [`FILES`].
pub fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
}
