//! The suite must be able to fail: a backend that perturbs one op's result (by 5%, well
//! outside every budget) is reported on exactly that op, and the same wrapper without a
//! perturbation passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuKv, CpuMode, CpuTensor, CpuWeight};
use realm_conformance::Failure;
use realm_core::{
    Activation, AttentionParams, Backend, BackendInfo, KvDesc, Result, RopeParams, RowsDesc,
    RowsPlan, WeightDesc,
};

/// Delegates to a CPU backend and scales the output of the op named `target` by 1.05.
struct Perturbed {
    inner: CpuBackend,
    target: &'static str,
}

impl Perturbed {
    fn new(target: &'static str) -> Self {
        Self {
            inner: CpuBackend::new(CpuConfig {
                threads: 2,
                mode: CpuMode::Auto,
                ..Default::default()
            }),
            target,
        }
    }

    fn touch(&self, op: &str, t: &mut CpuTensor) -> Result<()> {
        if op == self.target { self.inner.scale(t, 1.05) } else { Ok(()) }
    }
}

impl Backend for Perturbed {
    type Tensor = CpuTensor;
    type Weight = CpuWeight;
    type Kv = CpuKv;
    type Rows = RowsPlan;

    fn info(&self) -> BackendInfo {
        self.inner.info()
    }
    fn upload(&self, desc: WeightDesc) -> Result<CpuWeight> {
        self.inner.upload(desc)
    }
    fn tensor(&self, rows: usize, cols: usize) -> Result<CpuTensor> {
        self.inner.tensor(rows, cols)
    }
    fn shape(&self, t: &CpuTensor) -> (usize, usize) {
        self.inner.shape(t)
    }
    fn kv_cache(&self, desc: KvDesc) -> Result<CpuKv> {
        self.inner.kv_cache(desc)
    }
    fn embed(&self, table: &CpuWeight, tokens: &[u32], out: &mut CpuTensor) -> Result<()> {
        self.inner.embed(table, tokens, out)?;
        // Inputs reach the backend through embed: perturb only tables that are not inputs.
        if table.shape().0 == 16 { self.touch("embed", out) } else { Ok(()) }
    }
    fn embed_ids(&self, table: &CpuWeight, ids: &CpuTensor, out: &mut CpuTensor) -> Result<()> {
        self.inner.embed_ids(table, ids, out)?;
        if table.shape().0 == 16 { self.touch("embed_ids", out) } else { Ok(()) }
    }
    fn rms_norm(
        &self,
        x: &CpuTensor,
        w: &CpuWeight,
        group: usize,
        eps: f32,
        out: &mut CpuTensor,
    ) -> Result<()> {
        self.inner.rms_norm(x, w, group, eps, out)?;
        self.touch("rms_norm", out)
    }
    fn matmul(
        &self,
        w: &CpuWeight,
        bias: Option<&CpuWeight>,
        x: &CpuTensor,
        out: &mut CpuTensor,
    ) -> Result<()> {
        self.inner.matmul(w, bias, x, out)?;
        self.touch("matmul", out)
    }
    fn rows(&self, desc: &RowsDesc<'_>) -> Result<RowsPlan> {
        self.inner.rows(desc)
    }
    fn rope(&self, x: &mut CpuTensor, p: &RopeParams, rows: &RowsPlan) -> Result<()> {
        self.inner.rope(x, p, rows)?;
        self.touch("rope", x)
    }
    fn kv_store(
        &self,
        kv: &mut CpuKv,
        layer: usize,
        rows: &RowsPlan,
        k: &CpuTensor,
        v: &CpuTensor,
    ) -> Result<()> {
        if self.target == "kv_store" {
            // Store each row's keys one slot late (within the pool): a classic off-by-one.
            let slots = kv.desc().slots().unwrap_or(1) as u32;
            let mut late = rows.clone();
            late.slot.iter_mut().for_each(|s| *s = (*s + 1) % slots);
            return self.inner.kv_store(kv, layer, &late, k, v);
        }
        self.inner.kv_store(kv, layer, rows, k, v)
    }
    fn attention(
        &self,
        q: &CpuTensor,
        kv: &CpuKv,
        layer: usize,
        p: &AttentionParams,
        rows: &RowsPlan,
        out: &mut CpuTensor,
    ) -> Result<()> {
        self.inner.attention(q, kv, layer, p, rows, out)?;
        self.touch("attention", out)
    }
    fn glu(
        &self,
        g: &CpuTensor,
        u: &CpuTensor,
        act: Activation,
        out: &mut CpuTensor,
    ) -> Result<()> {
        self.inner.glu(g, u, act, out)?;
        self.touch("glu", out)
    }
    fn add(&self, x: &mut CpuTensor, y: &CpuTensor) -> Result<()> {
        self.inner.add(x, y)?;
        self.touch("add", x)
    }
    fn scale(&self, x: &mut CpuTensor, s: f32) -> Result<()> {
        self.inner.scale(x, s)?;
        self.touch("scale", x)
    }
    fn softcap(&self, x: &mut CpuTensor, cap: f32) -> Result<()> {
        self.inner.softcap(x, cap)?;
        self.touch("softcap", x)
    }
    fn gather_rows(&self, x: &CpuTensor, idx: &[u32], out: &mut CpuTensor) -> Result<()> {
        self.inner.gather_rows(x, idx, out)?;
        self.touch("gather_rows", out)
    }
    fn argmax(&self, x: &CpuTensor, out: &mut CpuTensor) -> Result<()> {
        self.inner.argmax(x, out)?;
        self.touch("argmax", out)
    }
    fn submit(&self) -> Result<()> {
        self.inner.submit()
    }
    fn read(&self, t: &CpuTensor) -> impl Future<Output = Result<Vec<f32>>> + use<> {
        self.inner.read(t)
    }
}

type Suite = fn(&Perturbed) -> Vec<Failure>;

const SUITES: [(&str, Suite); 14] = [
    ("embed", realm_conformance::embed),
    ("rms_norm", realm_conformance::rms_norm),
    ("matmul", realm_conformance::matmul),
    ("rope", realm_conformance::rope),
    ("rope", realm_conformance::rope_kv),
    ("kv_store", realm_conformance::attention),
    ("kv_store", realm_conformance::rope_kv),
    ("attention", realm_conformance::attention),
    ("glu", realm_conformance::glu),
    ("add", realm_conformance::add),
    ("scale", realm_conformance::scale),
    ("softcap", realm_conformance::softcap),
    ("gather_rows", realm_conformance::gather_rows),
    ("argmax", realm_conformance::argmax),
];

#[test]
fn each_perturbed_op_is_reported() {
    for (target, suite) in SUITES {
        let failures = suite(&Perturbed::new(target));
        assert!(!failures.is_empty(), "a perturbed {target} passed");
        // Every op's suite fails in full, not by luck in one case.
        println!("{target}: {} failures, e.g. {}", failures.len(), failures[0]);
    }
}

#[test]
fn the_unperturbed_wrapper_passes_everything() {
    let failures = realm_conformance::run_all(&Perturbed::new("none"));
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_perturbation_is_reported_only_where_it_is() {
    let failures = realm_conformance::run_all(&Perturbed::new("softcap"));
    assert!(!failures.is_empty());
    assert!(failures.iter().all(|f| f.case.starts_with("softcap")), "{failures:?}");
}
