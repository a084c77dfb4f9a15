//! realm-conformance: one conformance suite, written once against [`realm_core::Backend`],
//! run on every backend.
//!
//! Each case builds seeded random inputs (small shapes, at most about a million
//! multiply-adds per op, so a software GPU runs it too), runs the op on the backend under test
//! and on the oracle — [`CpuBackend`] in [`CpuMode::Scalar`] — and compares the two with the
//! budget from the one [`tolerance()`] table. Inputs reach a backend only through the contract:
//! an f32 table uploaded as a weight and gathered with `embed`.
//!
//! ```
//! use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
//!
//! let cpu = CpuBackend::new(CpuConfig { threads: 2, mode: CpuMode::Auto, ..Default::default() });
//! let failures = realm_conformance::scale(&cpu);
//! assert!(failures.is_empty(), "{failures:?}");
//! ```
//!
//! A backend's test calls [`run_all`] and asserts the result is empty; the failures name the
//! case and say by how much it missed.

pub mod compare;
mod harness;
pub mod rng;
pub mod tolerance;

mod cases;

use std::fmt;
use std::future::Future;
use std::task::{Context, Poll, Waker};

pub use cases::{
    add, argmax, attention, embed, errors, gather_rows, glu, matmul, read_rows, rms_norm, rope,
    rope_kv, scale, softcap,
};
pub use harness::{random_weight, weight_types};
pub use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
pub use tolerance::{Check, Tol, tolerance};

use realm_core::Backend;

/// One case that did not match the oracle (or errored, or failed to error).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The case, e.g. `matmul q4_K n=5 64x256 bias`.
    pub case: String,
    /// What went wrong: the measured error against its budget, or the error returned.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.case, self.detail)
    }
}

/// A comparison that passed, with its measured error (to see the headroom of the table).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub case: String,
    pub check: Check,
    pub error: compare::Error,
}

/// Everything one run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub failures: Vec<Failure>,
    pub measured: Vec<Measured>,
}

/// Every op of the contract, every case.
pub fn run_all<B: Backend>(backend: &B) -> Vec<Failure> {
    run_report(backend).failures
}

/// As [`run_all`], also returning the measured errors of the passing cases.
pub fn run_report<B: Backend>(backend: &B) -> Report {
    let mut cx = harness::Cx::new(backend);
    cases::all(&mut cx);
    cx.finish()
}

/// Drives a future to completion on this thread by polling it with a no-op waker (no async
/// runtime): enough for `Backend::read`, whose futures make progress when polled.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
