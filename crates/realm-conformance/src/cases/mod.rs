//! The cases, one module per group of ops, and one public entry point per op.

pub(crate) mod attention;
mod basic;
mod errors;
mod matmul;
mod rope;

use realm_core::Backend;

use crate::Failure;
use crate::harness::Cx;

pub(crate) fn all<B: Backend>(cx: &mut Cx<'_, B>) {
    basic::embed(cx);
    basic::rms_norm(cx);
    matmul::run(cx);
    rope::run(cx);
    attention::run(cx);
    attention::rope_kv(cx);
    basic::glu(cx);
    basic::add(cx);
    basic::scale(cx);
    basic::softcap(cx);
    basic::gather_rows(cx);
    basic::argmax(cx);
    basic::read_rows(cx);
    errors::run(cx);
}

fn one<B: Backend>(backend: &B, suite: fn(&mut Cx<'_, B>)) -> Vec<Failure> {
    let mut cx = Cx::new(backend);
    suite(&mut cx);
    cx.finish().failures
}

macro_rules! entry {
    ($($(#[$doc:meta])* $name:ident => $suite:path;)*) => {$(
        $(#[$doc])*
        pub fn $name<B: Backend>(backend: &B) -> Vec<Failure> {
            one(backend, $suite)
        }
    )*};
}

entry! {
    /// `embed` of every weight type.
    embed => basic::embed;
    /// `rms_norm`, whole rows and per-head groups.
    rms_norm => basic::rms_norm;
    /// `matmul` of every weight type, one and several rows, with and without bias.
    matmul => matmul::run;
    /// `rope`, both styles, partial rotation, positions past 0, frequency scaling.
    rope => rope::run;
    /// `kv_store` + `attention` over a paged pool: GQA, prefill after a prefix, decode, window,
    /// soft-cap, f16/f32; batches of ragged sequences, shared prefix blocks, each row alone
    /// equal to the row in its batch.
    attention => attention::run;
    /// `rope_kv_store`: q rotated in place, k rotated into the cache, v stored.
    rope_kv => attention::rope_kv;
    /// `glu` with both activations.
    glu => basic::glu;
    /// `add`.
    add => basic::add;
    /// `scale`.
    scale => basic::scale;
    /// `softcap`.
    softcap => basic::softcap;
    /// `gather_rows`: in order, out of order, repeated.
    gather_rows => basic::gather_rows;
    /// `argmax`, ties to the lowest index.
    argmax => basic::argmax;
    /// `read_rows`: some rows of a tensor read back; past its end, an error.
    read_rows => basic::read_rows;
    /// Bad shapes and bad weights must be errors (never panics, never silent success).
    errors => errors::run;
}
