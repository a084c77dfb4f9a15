//! realm-shaders: the WGSL kernels of the WebGPU backend.
//!
//! - Sources live in `.wgsl` files under `wgsl/` (embedded with `include_str!`):
//!   `common/` (byte access, exact f16 conversion, math), `quant/<format>.wgsl` (one per GGUF
//!   weight format, each defining the same names: `QK`, `QBYTES`, `dq1`, `dq4`) and `ops/`
//!   (one kernel per op, shared by every format).
//! - A [`Variant`] (op, weight format, KV format, f32/f16 tiles, subgroups, workgroup size) is
//!   a typed value turned into defines for the small [`preprocess`]or.
//! - [`table`] lists every variant the runtime may request; [`source`] refuses any other, and
//!   a CPU-only test validates each one with naga.
//! - Per target: the browser needs `enable subgroups;` before subgroup builtins (WGSL spec),
//!   which naga (and so wgpu natively) rejects; [`Target`] decides whether it is emitted.
//!
//! Every variant has an f32, no-subgroup sibling: f16 tiles and subgroups are optional
//! speed-ups picked after probing the adapter ([`Tier`]), never requirements.

mod error;
mod files;
pub mod preprocess;
mod variant;

pub use error::ShaderError;
pub use files::{FILES, file};
pub use variant::{
    ElementwiseKind, Epilogue, KvFormat, MatvecShape, Op, Precision, Target, Tier, Variant,
    WeightFormat, table, variant,
};

/// The expanded WGSL of `v` for `target`. Errors if `v` is not in [`table`] or cannot run on
/// `target`.
pub fn source(v: &Variant, target: Target) -> Result<String, ShaderError> {
    if !table().contains(v) {
        return Err(ShaderError::NotInTable(format!("{v:?}")));
    }
    if !v.runs_on(target) {
        return Err(ShaderError::NotForTarget(format!("{} on {target:?}", v.name())));
    }
    let mut text = String::new();
    if v.precision != Precision::F32 {
        text.push_str("enable f16;\n");
    }
    if v.precision == Precision::CoopF16 {
        text.push_str("enable wgpu_cooperative_matrix;\n");
    }
    if v.subgroups && target == Target::Browser {
        text.push_str("enable subgroups;\n");
    }
    text.push_str(&preprocess::expand(v.file(), &v.defines(), &file)?);
    Ok(text)
}
