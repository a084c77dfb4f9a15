//! THE tolerance table: how far any backend's result may be from the CPU scalar oracle, per
//! op and, for weights, per format. Every comparison in this crate (and the CPU backend's
//! fast-path tests) reads its budget from [`tolerance`].
//!
//! Error measures, as in llama.cpp `tests/test-backend-ops.cpp` (commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`):
//! - `nmse = Σ (got − want)² / Σ want²` (normalized mean squared error);
//! - `max_rel = max |got − want| / max |want|`, where a worst element matters.
//!
//! Why each budget is what it is:
//! - **Exact** (add, scale, gather_rows, argmax): IEEE f32 `+` and `×` are correctly rounded
//!   on every backend (WGSL requires it too), and argmax must pick the same index.
//! - **Reordered f32** (embed, rms_norm, float-weight matmul): same values, sums in another
//!   order or with fused multiply-adds: a few ulps, `nmse ≤ 1e-10`.
//! - **Transcendentals** (rope, glu, softcap, attention): `sin`/`cos`/`exp`/`tanh` differ by
//!   an ulp or two between libms and GPUs; ggml's default budget `nmse ≤ 1e-7`.
//!   Attention reads the same f16 cache values as the oracle and accumulates in f32; a
//!   backend that accumulates in f16 needs ggml's flash-attention budget (5e-4) — say so
//!   here rather than loosening this entry.
//! - **Fused matmul** (a norm before, a residual add or a GLU after): the matmul's budget, or
//!   the transcendentals' for float weights, since a GLU's activation is part of it.
//! - **Quantized-weight matmul**: the fast paths quantize activations to 8 bits (as llama.cpp
//!   does) while the oracle keeps them in f32. Half a step of 1/127 of each block's largest
//!   value gives `nmse ≈ 1/(4 · 127²) ≈ 1.6e-5` on uniform data; the budget is 5e-4, ggml's
//!   `mul_mat` budget, and `max_rel ≤ 2e-2`.
//!
//! Measured on the CPU backend (`cargo test -p realm-backend-cpu --test conformance
//! tolerances_have_headroom -- --nocapture` prints the worst case per check): 8-bit
//! activation matmuls nmse 1.2e-5 to 2.0e-5, max_rel ≤ 5.5e-3 (25× and 4× headroom); f32
//! paths (float and unaccelerated weight types) nmse ≤ 2.1e-13; attention nmse 2.6e-13;
//! everything else exact, since those ops share one implementation in every CPU mode.

use realm_core::GgmlType;

/// The op (and, for weights, the format) being compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Embed(GgmlType),
    RmsNorm,
    Matmul(GgmlType),
    /// `matmul_fused`: a matmul with a norm before it and an add or a GLU after it.
    MatmulFused(GgmlType),
    Rope,
    Attention,
    Glu,
    Add,
    Scale,
    Softcap,
    GatherRows,
    Argmax,
}

/// An error budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tol {
    /// Largest allowed normalized mean squared error.
    pub nmse: f64,
    /// Largest allowed `max |got − want| / max |want|`, where checked.
    pub max_rel: Option<f64>,
}

const EXACT: Tol = Tol { nmse: 0.0, max_rel: Some(0.0) };
const REORDERED: Tol = Tol { nmse: 1e-10, max_rel: Some(1e-5) };
const TRANSCENDENTAL: Tol = Tol { nmse: 1e-7, max_rel: Some(1e-3) };
const QUANT_ACTIVATIONS: Tol = Tol { nmse: 5e-4, max_rel: Some(2e-2) };

/// The budget of one check.
pub fn tolerance(check: Check) -> Tol {
    use GgmlType as T;
    match check {
        Check::Add | Check::Scale | Check::GatherRows | Check::Argmax => EXACT,
        Check::Embed(_) | Check::RmsNorm => REORDERED,
        Check::Matmul(T::F32 | T::F16 | T::BF16) => REORDERED,
        Check::Matmul(_) => QUANT_ACTIVATIONS,
        // A GLU epilogue brings in the transcendentals' budget.
        Check::MatmulFused(T::F32 | T::F16 | T::BF16) => TRANSCENDENTAL,
        Check::MatmulFused(_) => QUANT_ACTIVATIONS,
        Check::Rope | Check::Glu | Check::Softcap | Check::Attention => TRANSCENDENTAL,
    }
}
