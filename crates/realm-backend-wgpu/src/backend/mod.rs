//! `impl Backend for WgpuBackend`: each op's shape checks (every bad shape is an error, as on
//! the CPU), then one or a few recorded dispatches, in one file per kind of op (mirroring the
//! CPU backend's `ops/`): `embed`, `norm`, `matmul`, `rope`, `kv` (the cache and the ops
//! that write it), `attention` and `elementwise`.

mod attention;
mod elementwise;
mod embed;
mod kv;
mod matmul;
mod norm;
mod rope;

use std::future::Future;

use realm_core::{
    Activation, AttentionParams, Backend, BackendInfo, CoreError, Epilogue, KvDesc, Result,
    RopeParams, RowsDesc, WeightDesc, check, shape_err,
};
use realm_shaders::{KvFormat, Op, Variant, WeightFormat, variant};

use crate::gpu::{Bind, flat};
use crate::rows::WgpuRows;
use crate::tensor::{WgpuKv, WgpuTensor};
use crate::weight::WgpuWeight;
use crate::{WgpuBackend, readback, weight};

/// A size as a shader u32.
fn u(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| CoreError::Unsupported {
        op,
        what: format!("a size of {v} (shaders index with 32 bits)"),
        backend: "wgpu",
    })
}

impl WgpuBackend {
    fn v(&self, op: Op, weights: Option<WeightFormat>, kv: Option<KvFormat>) -> Variant {
        variant(op, weights, kv, self.gpu.tier)
    }

    /// The single f32 buffer of a vector weight of `len` values.
    fn vector<'a>(
        &self,
        op: &'static str,
        w: &'a WgpuWeight,
        len: usize,
    ) -> Result<&'a wgpu::Buffer> {
        match w.chunks.as_slice() {
            [c] if w.format == WeightFormat::F32 && w.numel() == len => Ok(&c.buffer),
            _ if w.numel() != len => Err(shape_err(
                op,
                format!("a vector of {} values where {len} are needed", w.numel()),
            )),
            _ => Err(CoreError::Unsupported {
                op,
                what: format!(
                    "weight '{}' as a vector ({:?}, upload it as WeightLayout::Vector)",
                    w.name, w.format
                ),
                backend: "wgpu",
            }),
        }
    }

    /// One elementwise dispatch over `n` values. For the profile, each binding counts as 4 bytes
    /// per value (at least two: an in-place op reads and writes); an estimate.
    fn each(&self, v: Variant, n: usize, params: &[u32], binds: &[Bind<'_>]) -> Result<()> {
        let groups = flat(n.div_ceil(v.workgroup as usize))?;
        let bytes = (n * 4 * binds.len().max(2)) as u64;
        self.gpu.dispatch_moving(v, params, binds, groups, bytes)
    }
}

impl Backend for WgpuBackend {
    type Tensor = WgpuTensor;
    type Weight = WgpuWeight;
    type Kv = WgpuKv;
    type Rows = WgpuRows;

    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "wgpu",
            device: self.gpu.name.clone(),
            details: self.gpu.details.clone(),
        }
    }

    fn upload(&self, desc: WeightDesc) -> Result<WgpuWeight> {
        weight::upload(&self.gpu, desc)
    }

    fn max_tensor_bytes(&self) -> u64 {
        self.gpu.max_tensor()
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<WgpuTensor> {
        let bytes = rows.checked_mul(cols).and_then(|n| n.checked_mul(4)).ok_or_else(|| {
            CoreError::OutOfMemory { what: format!("a {rows} × {cols} tensor"), bytes: u64::MAX }
        })?;
        let buf = self.gpu.storage("tensor", bytes as u64)?;
        Ok(WgpuTensor { buf, rows, cols })
    }

    fn shape(&self, t: &WgpuTensor) -> (usize, usize) {
        (t.rows, t.cols)
    }

    fn kv_cache(&self, desc: KvDesc) -> Result<WgpuKv> {
        kv::kv_cache(self, desc)
    }

    fn rows(&self, desc: &RowsDesc<'_>) -> Result<WgpuRows> {
        WgpuRows::new(&self.gpu, check::rows(desc)?)
    }

    fn embed(&self, table: &WgpuWeight, tokens: &[u32], out: &mut WgpuTensor) -> Result<()> {
        embed::embed(self, table, tokens, out)
    }

    fn embed_ids(&self, table: &WgpuWeight, ids: &WgpuTensor, out: &mut WgpuTensor) -> Result<()> {
        embed::embed_ids(self, table, ids, out)
    }

    fn rms_norm(
        &self,
        x: &WgpuTensor,
        weight: &WgpuWeight,
        group: usize,
        eps: f32,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        norm::rms_norm(self, x, weight, group, eps, out)
    }

    fn matmul(
        &self,
        w: &WgpuWeight,
        bias: Option<&WgpuWeight>,
        x: &WgpuTensor,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        matmul::matmul(self, w, bias, x, out)
    }

    fn fuses_norm(&self, rows: usize) -> bool {
        matmul::fuses_norm(rows)
    }

    fn matmul_fused(
        &self,
        w: &WgpuWeight,
        bias: Option<&WgpuWeight>,
        x: &WgpuTensor,
        norm: Option<(&WgpuWeight, f32)>,
        then: Epilogue<'_, WgpuTensor>,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        matmul::matmul_fused(self, w, bias, x, norm, then, out)
    }

    fn rope(&self, x: &mut WgpuTensor, p: &RopeParams, rows: &WgpuRows) -> Result<()> {
        rope::rope(self, x, p, rows)
    }

    fn kv_store(
        &self,
        kv: &mut WgpuKv,
        layer: usize,
        rows: &WgpuRows,
        k: &WgpuTensor,
        v: &WgpuTensor,
    ) -> Result<()> {
        kv::kv_store(self, kv, layer, rows, k, v)
    }

    fn rope_kv_store(
        &self,
        q: &mut WgpuTensor,
        k: &mut WgpuTensor,
        v: &WgpuTensor,
        kv: &mut WgpuKv,
        layer: usize,
        q_rope: &RopeParams,
        k_rope: &RopeParams,
        rows: &WgpuRows,
    ) -> Result<()> {
        kv::rope_kv_store(self, q, k, v, kv, layer, q_rope, k_rope, rows)
    }

    fn attention(
        &self,
        q: &WgpuTensor,
        kv: &WgpuKv,
        layer: usize,
        p: &AttentionParams,
        rows: &WgpuRows,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        attention::attention(self, q, kv, layer, p, rows, out)
    }

    fn glu(
        &self,
        gate: &WgpuTensor,
        up: &WgpuTensor,
        act: Activation,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        elementwise::glu(self, gate, up, act, out)
    }

    fn add(&self, x: &mut WgpuTensor, y: &WgpuTensor) -> Result<()> {
        elementwise::add(self, x, y)
    }

    fn scale(&self, x: &mut WgpuTensor, s: f32) -> Result<()> {
        elementwise::scale(self, x, s)
    }

    fn softcap(&self, x: &mut WgpuTensor, cap: f32) -> Result<()> {
        elementwise::softcap(self, x, cap)
    }

    fn gather_rows(&self, x: &WgpuTensor, idx: &[u32], out: &mut WgpuTensor) -> Result<()> {
        elementwise::gather_rows(self, x, idx, out)
    }

    fn argmax(&self, x: &WgpuTensor, out: &mut WgpuTensor) -> Result<()> {
        elementwise::argmax(self, x, out)
    }

    fn submit(&self) -> Result<()> {
        self.gpu.submit()
    }

    fn queues_work(&self) -> bool {
        true
    }

    fn read(&self, t: &WgpuTensor) -> impl Future<Output = Result<Vec<f32>>> + use<> {
        readback::read(&self.gpu, t)
    }

    fn read_rows(
        &self,
        t: &WgpuTensor,
        first: usize,
        count: usize,
    ) -> impl Future<Output = Result<Vec<f32>>> + use<> {
        // Rows past the end give a range past the end: refused there.
        let (rows, cols) = (t.rows, t.cols);
        let (first, count) = if first.checked_add(count).is_some_and(|end| end <= rows) {
            (first * cols, count * cols)
        } else {
            (usize::MAX, 1)
        };
        readback::read_range(&self.gpu, t, first, count)
    }
}
