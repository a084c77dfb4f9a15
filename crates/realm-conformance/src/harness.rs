//! The paired runner: everything happens on the backend under test and on the oracle.

use std::sync::Arc;

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode, CpuTensor, CpuWeight};
use realm_core::{Backend, GgmlType, SharedBytes, WeightDesc, WeightLayout};

use crate::compare;
use crate::rng::SplitMix64;
use crate::tolerance::{Check, tolerance};
use crate::{Failure, Measured, Report, block_on};

/// Every weight type a backend must accept: all that `realm_quant` can dequantize.
pub fn weight_types() -> impl Iterator<Item = GgmlType> {
    GgmlType::ALL.into_iter().filter(|&t| realm_quant::can_dequantize(t))
}

/// Random GGUF bytes of a `rows × cols` weight of `ty`: seeded values in about `[-1, 1]`
/// through the reference quantizer, or, for types without one (IQ4_NL, IQ4_XS), random
/// codes and sub-scales under a small random f16 block scale.
pub fn random_weight(ty: GgmlType, rows: usize, cols: usize, rng: &mut SplitMix64) -> Vec<u8> {
    let n = rows * cols;
    if realm_quant::can_quantize(ty) {
        // A per-row offset makes the mins of Q4_1/Q5_1/k-quants matter.
        let mut x = Vec::with_capacity(n);
        for _ in 0..rows {
            let off = rng.unit() * 0.3;
            x.extend((0..cols).map(|_| rng.unit() + off));
        }
        return realm_quant::quantize_to_vec(ty, &x).unwrap_or_default();
    }
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let mut bytes: Vec<u8> = (0..n / bs * ts).map(|_| rng.next_u64() as u8).collect();
    for block in bytes.chunks_exact_mut(ts) {
        let d = half::f16::from_f32(0.002 + 0.01 * rng.unit().abs());
        block[..2].copy_from_slice(&d.to_le_bytes());
    }
    bytes
}

/// Shared bytes of a weight (an owned buffer standing in for a memory-mapped file).
pub(crate) fn shared(bytes: Vec<u8>) -> SharedBytes {
    Arc::new(bytes)
}

pub(crate) struct Cx<'a, B: Backend> {
    pub(crate) b: &'a B,
    pub(crate) o: CpuBackend,
    report: Report,
}

/// A result of either backend, as a case error.
pub(crate) fn ok<T>(what: &str, side: &str, r: realm_core::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what} on the {side}: {e}"))
}

impl<'a, B: Backend> Cx<'a, B> {
    pub(crate) fn new(b: &'a B) -> Self {
        let o =
            CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Scalar, ..Default::default() });
        Self { b, o, report: Report::default() }
    }

    pub(crate) fn finish(self) -> Report {
        self.report
    }

    /// Runs one case with its own seeded generator; an `Err` becomes a [`Failure`].
    pub(crate) fn case(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Self, &mut SplitMix64) -> Result<(), String>,
    ) {
        let mut rng = SplitMix64::for_case(name);
        if let Err(detail) = f(self, &mut rng) {
            self.report.failures.push(Failure { case: name.to_string(), detail });
        }
    }

    /// Records a failure directly (for checks that are not comparisons).
    pub(crate) fn fail(&mut self, case: &str, detail: String) {
        self.report.failures.push(Failure { case: case.to_string(), detail });
    }

    /// Uploads the same bytes (one shared buffer, not a copy) to both backends.
    pub(crate) fn weight(
        &self,
        name: &str,
        ty: GgmlType,
        (rows, cols): (usize, usize),
        bytes: Vec<u8>,
        layout: WeightLayout,
    ) -> Result<(B::Weight, CpuWeight), String> {
        let len = bytes.len();
        let desc = WeightDesc {
            name: name.to_string(),
            ty,
            rows,
            cols,
            layout,
            bytes: shared(bytes),
            offset: 0,
            len,
        };
        let b = ok("upload", "backend", self.b.upload(desc.clone()))?;
        let o = ok("upload", "oracle", self.o.upload(desc))?;
        Ok((b, o))
    }

    /// A `rows × cols` f32 vector weight (norm weights, biases).
    pub(crate) fn vector(
        &self,
        name: &str,
        values: &[f32],
    ) -> Result<(B::Weight, CpuWeight), String> {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.weight(name, GgmlType::F32, (1, values.len()), bytes, WeightLayout::Vector)
    }

    /// An activation tensor holding exactly `data` on both backends (via an f32 table and
    /// `embed`, the contract's only way in).
    pub(crate) fn input(
        &self,
        rows: usize,
        cols: usize,
        data: &[f32],
    ) -> Result<(B::Tensor, CpuTensor), String> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (tb, to) =
            self.weight("input", GgmlType::F32, (rows, cols), bytes, WeightLayout::Embedding)?;
        let tokens: Vec<u32> = (0..rows as u32).collect();
        let (mut b, mut o) = self.output(rows, cols)?;
        ok("embed (input)", "backend", self.b.embed(&tb, &tokens, &mut b))?;
        ok("embed (input)", "oracle", self.o.embed(&to, &tokens, &mut o))?;
        Ok((b, o))
    }

    pub(crate) fn output(
        &self,
        rows: usize,
        cols: usize,
    ) -> Result<(B::Tensor, CpuTensor), String> {
        Ok((
            ok("tensor", "backend", self.b.tensor(rows, cols))?,
            ok("tensor", "oracle", self.o.tensor(rows, cols))?,
        ))
    }

    /// Submits, reads both results back and compares them with `check`'s budget.
    pub(crate) fn compare(
        &mut self,
        case: &str,
        check: Check,
        got: &B::Tensor,
        want: &CpuTensor,
    ) -> Result<(), String> {
        ok("submit", "backend", self.b.submit())?;
        if self.b.shape(got) != want.shape() {
            return Err(format!(
                "shape {:?}, the oracle has {:?}",
                self.b.shape(got),
                want.shape()
            ));
        }
        let got = ok("read", "backend", block_on(self.b.read(got)))?;
        let error = compare::check(&got, want.as_slice(), tolerance(check))?;
        self.report.measured.push(Measured { case: case.to_string(), check, error });
        Ok(())
    }
}
