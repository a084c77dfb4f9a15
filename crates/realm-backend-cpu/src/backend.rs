//! `impl Backend for CpuBackend`: shape checks (every bad shape is an error, never a panic),
//! then the op in the backend's mode. The CPU runs each op as it is called.

use std::future::Future;

use realm_core::{
    Activation, AttentionParams, Backend, BackendInfo, CoreError, Epilogue, KvDesc, Result,
    RopeParams, RowsDesc, RowsPlan, WeightDesc, check, shape_err,
};

use crate::ops::attention::{self, Attn};
use crate::ops::{elementwise, norm, rope};
use crate::tensor::{CpuKv, CpuTensor, CpuWeight};
use crate::{CpuBackend, CpuMode, matmul};

fn panicked(op: &'static str) -> CoreError {
    CoreError::Backend { op, detail: "a worker thread panicked".into() }
}

/// A matmul's shapes (`x` of the weight's width, `out` of its rows) and its bias as f32.
fn matmul_args(
    op: &'static str,
    w: &CpuWeight,
    bias: Option<&CpuWeight>,
    x: &CpuTensor,
    out: &CpuTensor,
) -> Result<Option<Vec<f32>>> {
    if x.cols != w.cols {
        return Err(shape_err(op, format!("x has {} columns, the weight {}", x.cols, w.cols)));
    }
    check::same_shape(op, "out", out.shape(), (x.rows, w.rows))?;
    match bias {
        Some(b) if b.numel() != w.rows => {
            Err(shape_err(op, format!("bias of {} for {} outputs", b.numel(), w.rows)))
        }
        Some(b) => Ok(Some(b.to_f32(op)?)),
        None => Ok(None),
    }
}

/// Fewest values an elementwise or per-row op hands to one thread.
const MIN_ROW_CHUNK: usize = 1 << 14;

impl CpuBackend {
    /// Runs `f(first_row, rows)` over whole rows of `out` (`cols` values each), split across the
    /// pool when there is enough work. Row results never depend on the split, so every mode
    /// (the scalar oracle included) gives the same bits.
    fn par_rows(
        &self,
        op: &'static str,
        out: &mut [f32],
        cols: usize,
        f: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) -> Result<()> {
        let cols = cols.max(1);
        let rows = out.len() / cols;
        let threads = self.pool.threads();
        let per = if threads <= 1 || out.len() < 2 * MIN_ROW_CHUNK {
            rows.max(1)
        } else {
            rows.div_ceil(4 * threads).max(MIN_ROW_CHUNK.div_ceil(cols))
        };
        self.pool
            .for_each_chunk_mut(out, per * cols, &|c, chunk| f(c * per, chunk))
            .map_err(|_| panicked(op))
    }

    /// The AVX-512 attention kernel's token, at the AVX-512 VNNI level (auto mode only).
    fn wide_attention(&self) -> Option<attention::Wide> {
        #[cfg(target_arch = "x86_64")]
        return match self.panel {
            Some(crate::isa::PanelKernel::Vnni512(t)) => Some(t),
            _ => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        None
    }
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;
    type Weight = CpuWeight;
    type Kv = CpuKv;
    type Rows = RowsPlan;

    fn info(&self) -> BackendInfo {
        BackendInfo { name: "cpu", device: Self::device(), details: self.details() }
    }

    fn upload(&self, desc: WeightDesc) -> Result<CpuWeight> {
        #[allow(unused_mut)] // only x86_64 repacks
        let mut w = CpuWeight::new(desc)?;
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = self.panel {
            w.packed =
                matmul::Packed::new(k, w.ty, w.rows, w.cols, w.data()).map(std::sync::Arc::new);
        }
        Ok(w)
    }

    fn tensor(&self, rows: usize, cols: usize) -> Result<CpuTensor> {
        CpuTensor::zeros(rows, cols)
    }

    fn shape(&self, t: &CpuTensor) -> (usize, usize) {
        t.shape()
    }

    fn kv_cache(&self, desc: KvDesc) -> Result<CpuKv> {
        CpuKv::new(desc)
    }

    fn rows(&self, desc: &RowsDesc<'_>) -> Result<RowsPlan> {
        check::rows(desc)
    }

    fn embed(&self, table: &CpuWeight, tokens: &[u32], out: &mut CpuTensor) -> Result<()> {
        const OP: &str = "embed";
        check::same_shape(OP, "out", out.shape(), (tokens.len(), table.cols))?;
        for (&tok, row) in tokens.iter().zip(out.data.chunks_exact_mut(table.cols.max(1))) {
            if tok as usize >= table.rows {
                return Err(shape_err(
                    OP,
                    format!("token {tok} outside a table of {} rows", table.rows),
                ));
            }
            realm_quant::dequantize(table.ty, table.row(tok as usize), row)
                .map_err(|e| CoreError::Backend { op: OP, detail: e.to_string() })?;
        }
        Ok(())
    }

    fn embed_ids(&self, table: &CpuWeight, ids: &CpuTensor, out: &mut CpuTensor) -> Result<()> {
        const OP: &str = "embed_ids";
        check::same_shape(OP, "ids", ids.shape(), (out.rows, 1))?;
        let tokens = ids
            .data
            .iter()
            .map(|&v| {
                // Ids are exact f32 integers below 2^24.
                if (0.0..16_777_216.0).contains(&v) && v.fract() == 0.0 {
                    Ok(v as u32)
                } else {
                    Err(shape_err(OP, format!("{v} is not a token id")))
                }
            })
            .collect::<Result<Vec<u32>>>()?;
        self.embed(table, &tokens, out)
    }

    fn rms_norm(
        &self,
        x: &CpuTensor,
        weight: &CpuWeight,
        group: usize,
        eps: f32,
        out: &mut CpuTensor,
    ) -> Result<()> {
        const OP: &str = "rms_norm";
        if group == 0 || !x.cols.is_multiple_of(group) || weight.numel() != group {
            return Err(shape_err(
                OP,
                format!(
                    "{} columns in groups of {group} with a weight of {}",
                    x.cols,
                    weight.numel()
                ),
            ));
        }
        check::same_shape(OP, "out", out.shape(), x.shape())?;
        let w = weight.to_f32(OP)?;
        let cols = x.cols;
        self.par_rows(OP, &mut out.data, cols, &|r0, chunk| {
            let src = x.data.get(r0 * cols..r0 * cols + chunk.len()).unwrap_or_default();
            norm::rms_norm(src, &w, eps, chunk);
        })
    }

    fn matmul(
        &self,
        w: &CpuWeight,
        bias: Option<&CpuWeight>,
        x: &CpuTensor,
        out: &mut CpuTensor,
    ) -> Result<()> {
        let bias = matmul_args("matmul", w, bias, x, out)?;
        match self.mode {
            CpuMode::Scalar => {
                matmul::scalar::matmul(w, bias.as_deref(), &x.data, x.rows, &mut out.data)
            }
            CpuMode::Auto | CpuMode::Portable => {
                let ex = matmul::Exec { pool: &self.pool, isa: self.isa, acts: &self.acts };
                let then = (matmul::Then::Store, &mut out.data[..]);
                matmul::fast(ex, w, bias.as_deref(), &x.data, x.rows, then)
            }
        }
    }

    /// The fast modes apply a residual add or a GLU as the matmul writes its results (no
    /// temporary, no second pass; the same values as the separate ops). A norm, and the
    /// scalar oracle, take the contract's composition of the plain ops.
    fn matmul_fused(
        &self,
        w: &CpuWeight,
        bias: Option<&CpuWeight>,
        x: &CpuTensor,
        norm: Option<(&CpuWeight, f32)>,
        then: Epilogue<'_, CpuTensor>,
        out: &mut CpuTensor,
    ) -> Result<()> {
        const OP: &str = "matmul_fused";
        let epi = match then {
            Epilogue::Store => matmul::Then::Store,
            Epilogue::Add => matmul::Then::Add,
            Epilogue::Glu { gate, act } => {
                check::same_shape(OP, "gate", gate.shape(), out.shape())?;
                matmul::Then::Glu(&gate.data, act)
            }
        };
        if norm.is_some() || self.mode == CpuMode::Scalar || matches!(epi, matmul::Then::Store) {
            return realm_core::default_matmul_fused(self, w, bias, x, norm, then, out);
        }
        let bias = matmul_args(OP, w, bias, x, out)?;
        let ex = matmul::Exec { pool: &self.pool, isa: self.isa, acts: &self.acts };
        matmul::fast(ex, w, bias.as_deref(), &x.data, x.rows, (epi, &mut out.data[..]))
    }

    fn rope(&self, x: &mut CpuTensor, p: &RopeParams, rows: &RowsPlan) -> Result<()> {
        const OP: &str = "rope";
        check::rope(x.shape(), p, rows)?;
        let cols = x.cols.max(1);
        self.par_rows(OP, &mut x.data, cols, &|r0, chunk| {
            let mut cache = vec![(0.0f32, 0.0f32); p.rope_dim / 2];
            for (r, row) in chunk.chunks_exact_mut(cols).enumerate() {
                let pos = rows.pos.get(r0 + r).copied().unwrap_or(0) as usize;
                rope::cache(pos, p.rope_dim, p.freq_base, p.freq_scale, &mut cache);
                for head in row.chunks_exact_mut(p.head_dim) {
                    rope::rotate(&mut head[..p.rope_dim], &cache, p.style);
                }
            }
        })
    }

    fn kv_store(
        &self,
        kv: &mut CpuKv,
        layer: usize,
        rows: &RowsPlan,
        k: &CpuTensor,
        v: &CpuTensor,
    ) -> Result<()> {
        const OP: &str = "kv_store";
        check::kv_layer(OP, kv.layers.len(), layer)?;
        check::kv_store(&kv.desc, rows, k.shape(), v.shape())?;
        let l = &mut kv.layers[layer];
        let (kc, vc) = (k.cols.max(1), v.cols.max(1));
        for ((&slot, kr), vr) in
            rows.slot.iter().zip(k.data.chunks_exact(kc)).zip(v.data.chunks_exact(vc))
        {
            let slot = slot as usize;
            l.k.write(slot * k.cols, kr)?;
            l.v.write(slot * v.cols, vr)?;
        }
        Ok(())
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
        check::kv_layer("attention", kv.layers.len(), layer)?;
        check::attention((q.rows, q.cols), &kv.desc, p, rows, (out.rows, out.cols))?;
        if q.rows == 0 {
            return Ok(());
        }
        // llama.cpp multiplies an f16 K cache with the query converted to f16 (the vec-dot type
        // of F16 is F16, in both its flash and non-flash paths): round the query the same way.
        let rounded: Vec<f32>;
        let q_data = if kv.desc.dtype == realm_core::KvDtype::F16 {
            let mut r = q.data.clone();
            crate::vec::round_to_f16(self.isa, &mut r);
            rounded = r;
            &rounded
        } else {
            &q.data
        };
        let a = Attn { q: q_data, layer: &kv.layers[layer], desc: &kv.desc, p, rows, n: q.rows };
        match self.mode {
            CpuMode::Scalar => {
                attention::scalar(&a, &mut out.data);
                Ok(())
            }
            CpuMode::Auto | CpuMode::Portable => {
                attention::fast(&self.pool, self.isa, self.wide_attention(), &a, &mut out.data)
                    .map_err(|_| panicked("attention"))
            }
        }
    }

    fn glu(
        &self,
        gate: &CpuTensor,
        up: &CpuTensor,
        act: Activation,
        out: &mut CpuTensor,
    ) -> Result<()> {
        check::same_shape("glu", "up", up.shape(), gate.shape())?;
        check::same_shape("glu", "out", out.shape(), gate.shape())?;
        let cols = gate.cols;
        self.par_rows("glu", &mut out.data, cols, &|r0, chunk| {
            let at = r0 * cols..r0 * cols + chunk.len();
            let (g, u) = (gate.data.get(at.clone()), up.data.get(at));
            if let (Some(g), Some(u)) = (g, u) {
                elementwise::glu(g, u, act, chunk);
            }
        })
    }

    fn add(&self, x: &mut CpuTensor, y: &CpuTensor) -> Result<()> {
        check::same_shape("add", "y", y.shape(), x.shape())?;
        for (a, &b) in x.data.iter_mut().zip(&y.data) {
            *a += b;
        }
        Ok(())
    }

    fn scale(&self, x: &mut CpuTensor, s: f32) -> Result<()> {
        x.data.iter_mut().for_each(|v| *v *= s);
        Ok(())
    }

    fn softcap(&self, x: &mut CpuTensor, cap: f32) -> Result<()> {
        if cap == 0.0 || !cap.is_finite() {
            return Err(CoreError::Backend {
                op: "softcap",
                detail: format!("cap {cap} must be finite and non-zero"),
            });
        }
        x.data.iter_mut().for_each(|v| *v = elementwise::softcap(*v, cap));
        Ok(())
    }

    fn gather_rows(&self, x: &CpuTensor, idx: &[u32], out: &mut CpuTensor) -> Result<()> {
        check::gather_rows(x.shape(), idx, out.shape())?;
        let cols = x.cols;
        for (&i, dst) in idx.iter().zip(out.data.chunks_exact_mut(cols.max(1))) {
            let i = i as usize;
            dst.copy_from_slice(&x.data[i * cols..(i + 1) * cols]);
        }
        Ok(())
    }

    fn argmax(&self, x: &CpuTensor, out: &mut CpuTensor) -> Result<()> {
        check::same_shape("argmax", "out", out.shape(), (x.rows, 1))?;
        for (o, row) in out.data.iter_mut().zip(x.data.chunks_exact(x.cols.max(1))) {
            *o = elementwise::argmax(row) as f32;
        }
        Ok(())
    }

    fn submit(&self) -> Result<()> {
        Ok(())
    }

    fn read(&self, t: &CpuTensor) -> impl Future<Output = Result<Vec<f32>>> + use<> {
        std::future::ready(Ok(t.data.clone()))
    }

    fn read_rows(
        &self,
        t: &CpuTensor,
        first: usize,
        count: usize,
    ) -> impl Future<Output = Result<Vec<f32>>> + use<> {
        let rows = realm_core::rows_of(&t.data, t.rows, t.cols, first, count);
        std::future::ready(rows.map(<[f32]>::to_vec))
    }
}
