//! `impl Backend for WgpuBackend`: shape checks (every bad shape is an error, as on the CPU),
//! then one or a few recorded dispatches.

use std::future::Future;

use realm_core::{
    Activation, AttentionParams, Backend, BackendInfo, CoreError, Epilogue, KvDesc, KvDtype,
    Result, RopeParams, WeightDesc, check, shape_err,
};
use realm_shaders::{
    ElementwiseKind, Epilogue as Epi, KvFormat, Op, Precision, Variant, WeightFormat, variant,
};

use crate::gpu::{Bind, flat};
use crate::tensor::{LayerKv, WgpuKv, WgpuTensor};
use crate::weight::WgpuWeight;
use crate::{WgpuBackend, readback, weight};

/// Activation rows up to which matmul runs as matvec.
const MATVEC_MAX_ROWS: usize = 4;
/// Key positions from which decode attention is split (and merged).
const SPLIT_MIN_SPAN: usize = 128;
/// Most splits of one decode attention.
const MAX_SPLITS: usize = 32;
/// Largest head dimension of the attention kernel (`MAX_D` in attention.wgsl).
const MAX_HEAD_DIM: usize = 256;

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

    /// The shape checks of a matmul; the bias as an f32 buffer.
    fn matmul_checks<'a>(
        &self,
        op: &'static str,
        w: &WgpuWeight,
        bias: Option<&'a WgpuWeight>,
        x: &WgpuTensor,
        out: &WgpuTensor,
    ) -> Result<Option<&'a wgpu::Buffer>> {
        if x.cols != w.cols {
            return Err(shape_err(op, format!("x has {} columns, the weight {}", x.cols, w.cols)));
        }
        check::same_shape(op, "out", (out.rows, out.cols), (x.rows, w.rows))?;
        match bias {
            Some(b) if b.numel() != w.rows => {
                Err(shape_err(op, format!("bias of {} for {} outputs", b.numel(), w.rows)))
            }
            Some(b) => Ok(Some(self.vector(op, b, w.rows)?)),
            None => Ok(None),
        }
    }

    fn matmul_chunks(
        &self,
        w: &WgpuWeight,
        bias: Option<&wgpu::Buffer>,
        x: &WgpuTensor,
        out: &WgpuTensor,
        fused: Fused<'_>,
    ) -> Result<()> {
        const OP: &str = "matmul";
        let n = x.rows;
        let wide = w.rows >= self.gpu.matvec_wide_from;
        let matvec = n <= MATVEC_MAX_ROWS;
        let epilogue = fused.epilogue;
        let op = if matvec {
            Op::Matvec { wide, norm: fused.norm.is_some(), epilogue }
        } else {
            Op::Matmul { epilogue }
        };
        if fused.norm.is_some() && !matvec {
            return Err(CoreError::Backend {
                op: OP,
                detail: "a fused norm needs the matvec kernel".into(),
            });
        }
        let v = self.v(op, Some(w.format), None);
        let bias_buf = bias.unwrap_or(x.buffer());
        let (norm_buf, eps) = fused.norm.unwrap_or((x.buffer(), 0.0));
        for c in &w.chunks {
            let params = [
                u(OP, c.rows)?,
                u(OP, w.cols)?,
                u(OP, w.row_bytes)?,
                u(OP, w.rows)?,
                u(OP, c.row0)?,
                u32::from(bias.is_some()),
                u(OP, n)?,
                epilogue as u32,
                u32::from(fused.norm.is_some()),
                eps.to_bits(),
                0,
                0,
            ];
            // Unused bindings get x (read-only, like them).
            let mut binds = vec![
                Bind::Whole(&c.buffer),
                Bind::Whole(x.buffer()),
                Bind::Whole(out.buffer()),
                Bind::Whole(bias_buf),
                Bind::Whole(fused.aux.unwrap_or(x.buffer())),
            ];
            if matvec {
                binds.push(Bind::Whole(norm_buf));
            }
            let groups = if matvec {
                let mut g = flat(c.rows.div_ceil(if wide { 16 } else { 4 }))?;
                g[2] = u(OP, n)?;
                g
            } else {
                // 64 × 64 output tiles for the cooperative-matrix kernel, else 32 × 32.
                let tile = if v.precision == Precision::CoopF16 { 64 } else { 32 };
                [u(OP, c.rows.div_ceil(tile))?, u(OP, n.div_ceil(tile))?, 1]
            };
            // Weight blocks, the activations read and the outputs written (and read, for an
            // epilogue that reads the output or a gate).
            let out_passes = if epilogue == Epi::Store { 1 } else { 2 };
            let bytes =
                (c.rows * w.row_bytes + n * w.cols * 4 + out_passes * n * c.rows * 4) as u64;
            self.gpu.dispatch_moving(v, &params, &binds, groups, bytes)?;
        }
        Ok(())
    }
}

/// What a matmul dispatch fuses: the epilogue (compiled into the kernel) and its gate, and a
/// norm folded in (matvec only).
#[derive(Clone, Copy)]
struct Fused<'a> {
    epilogue: Epi,
    aux: Option<&'a wgpu::Buffer>,
    norm: Option<(&'a wgpu::Buffer, f32)>,
}

impl Default for Fused<'_> {
    fn default() -> Self {
        Self { epilogue: Epi::Store, aux: None, norm: None }
    }
}

impl Backend for WgpuBackend {
    type Tensor = WgpuTensor;
    type Weight = WgpuWeight;
    type Kv = WgpuKv;

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
        const OP: &str = "kv_cache";
        let elem = match desc.dtype {
            KvDtype::F16 => 2,
            KvDtype::F32 => 4,
        };
        for dim in [desc.head_dim, desc.head_dim_v] {
            if dim % 2 != 0 || dim > MAX_HEAD_DIM {
                return Err(CoreError::Unsupported {
                    op: OP,
                    what: format!("head dimension {dim} (even and at most {MAX_HEAD_DIM})"),
                    backend: "wgpu",
                });
            }
        }
        let bytes = |dim: usize| {
            desc.n_ctx
                .checked_mul(desc.n_head_kv)
                .and_then(|v| v.checked_mul(dim))
                .and_then(|v| v.checked_mul(elem))
                .map(|v| (v as u64).max(4).div_ceil(4) * 4)
                .filter(|&b| b <= self.gpu.max_binding())
                .ok_or_else(|| CoreError::Unsupported {
                    op: OP,
                    what: format!(
                        "a layer cache of {} positions × {} heads × {dim} (larger than one binding of {} bytes)",
                        desc.n_ctx, desc.n_head_kv, self.gpu.max_binding()
                    ),
                    backend: "wgpu",
                })
        };
        let (kb, vb) = (bytes(desc.head_dim)?, bytes(desc.head_dim_v)?);
        let make = |size: u64, label: &str| {
            self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let layers = (0..desc.n_layer)
            .map(|_| LayerKv { k: make(kb, "realm kv k"), v: make(vb, "realm kv v") })
            .collect();
        self.gpu.check(OP)?;
        Ok(WgpuKv { desc, layers })
    }

    fn embed(&self, table: &WgpuWeight, tokens: &[u32], out: &mut WgpuTensor) -> Result<()> {
        const OP: &str = "embed";
        check::same_shape(OP, "out", (out.rows, out.cols), (tokens.len(), table.cols))?;
        if let Some(&tok) = tokens.iter().find(|&&t| t as usize >= table.rows) {
            return Err(shape_err(
                OP,
                format!("token {tok} outside a table of {} rows", table.rows),
            ));
        }
        let v = self.v(Op::Embed, Some(table.format), None);
        for c in &table.chunks {
            let pairs: Vec<u32> = tokens
                .iter()
                .enumerate()
                .filter(|&(_, &t)| (t as usize) >= c.row0 && (t as usize) < c.row0 + c.rows)
                .flat_map(|(i, &t)| [i as u32, t - c.row0 as u32])
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let bytes: Vec<u8> = pairs.iter().flat_map(|w| w.to_le_bytes()).collect();
            let (buf, off, len) = self.gpu.stage(&bytes)?;
            let n_pairs = pairs.len() / 2;
            let params = [u(OP, n_pairs)?, u(OP, table.cols)?, u(OP, table.row_bytes)?, 0, 0, 0];
            let binds =
                [Bind::Whole(&c.buffer), Bind::Slice(&buf, off, len), Bind::Whole(out.buffer())];
            self.each(v, n_pairs * table.cols, &params, &binds)?;
        }
        Ok(())
    }

    fn embed_ids(&self, table: &WgpuWeight, ids: &WgpuTensor, out: &mut WgpuTensor) -> Result<()> {
        const OP: &str = "embed_ids";
        check::same_shape(OP, "ids", (ids.rows, ids.cols), (out.rows, 1))?;
        check::same_shape(OP, "out", (out.rows, out.cols), (out.rows, table.cols))?;
        let v = self.v(Op::Embed, Some(table.format), None);
        // Each buffer of a split table writes the rows whose id falls in it.
        for c in &table.chunks {
            let params = [
                u(OP, out.rows)?,
                u(OP, table.cols)?,
                u(OP, table.row_bytes)?,
                1,
                u(OP, c.row0)?,
                u(OP, c.rows)?,
            ];
            let binds =
                [Bind::Whole(&c.buffer), Bind::Whole(ids.buffer()), Bind::Whole(out.buffer())];
            self.each(v, out.rows * table.cols, &params, &binds)?;
        }
        Ok(())
    }

    fn rms_norm(
        &self,
        x: &WgpuTensor,
        weight: &WgpuWeight,
        group: usize,
        eps: f32,
        out: &mut WgpuTensor,
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
        check::same_shape(OP, "out", (out.rows, out.cols), (x.rows, x.cols))?;
        let w = self.vector(OP, weight, group)?;
        let n_groups = x.len() / group;
        let params = [u(OP, group)?, u(OP, n_groups)?, eps.to_bits(), 0];
        let binds = [Bind::Whole(x.buffer()), Bind::Whole(w), Bind::Whole(out.buffer())];
        let bytes = (2 * x.len() * 4) as u64;
        self.gpu.dispatch_moving(
            self.v(Op::RmsNorm, None, None),
            &params,
            &binds,
            flat(n_groups)?,
            bytes,
        )
    }

    fn matmul(
        &self,
        w: &WgpuWeight,
        bias: Option<&WgpuWeight>,
        x: &WgpuTensor,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        let bias = self.matmul_checks("matmul", w, bias, x, out)?;
        self.matmul_chunks(w, bias, x, out, Fused::default())
    }

    fn fuses_norm(&self, rows: usize) -> bool {
        rows <= MATVEC_MAX_ROWS
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
        const OP: &str = "matmul_fused";
        let bias = self.matmul_checks(OP, w, bias, x, out)?;
        let mut fused = match then {
            Epilogue::Store => Fused::default(),
            Epilogue::Add => Fused { epilogue: Epi::Add, ..Fused::default() },
            Epilogue::Glu { gate, act } => {
                check::same_shape(OP, "gate", (gate.rows, gate.cols), (out.rows, out.cols))?;
                let epilogue = match act {
                    Activation::Silu => Epi::GluSilu,
                    Activation::GeluTanh => Epi::GluGelu,
                };
                Fused { epilogue, aux: Some(gate.buffer()), norm: None }
            }
        };
        match norm {
            Some((nw, eps)) if self.fuses_norm(x.rows) => {
                fused.norm = Some((self.vector(OP, nw, x.cols)?, eps));
                self.matmul_chunks(w, bias, x, out, fused)
            }
            Some((nw, eps)) => {
                let mut normed = self.tensor(x.rows, x.cols)?;
                self.rms_norm(x, nw, x.cols, eps, &mut normed)?;
                self.matmul_chunks(w, bias, &normed, out, fused)
            }
            None => self.matmul_chunks(w, bias, x, out, fused),
        }
    }

    fn rope(&self, x: &mut WgpuTensor, p: &RopeParams) -> Result<()> {
        const OP: &str = "rope";
        if p.head_dim == 0 || !p.rope_dim.is_multiple_of(2) || p.rope_dim > p.head_dim {
            return Err(shape_err(
                OP,
                format!("rope_dim {} of head_dim {}", p.rope_dim, p.head_dim),
            ));
        }
        check::same_shape(OP, "x", (x.rows, x.cols), (x.rows, p.n_heads * p.head_dim))?;
        // As the oracle: theta_scale = base^(-2/rope_dim) in f32 (the shader multiplies it up).
        let theta_scale = p.freq_base.powf(-2.0f32 / p.rope_dim as f32);
        let params = [
            u(OP, x.rows)?,
            u(OP, p.n_heads)?,
            u(OP, p.head_dim)?,
            u(OP, p.rope_dim)?,
            u(OP, p.start_pos)?,
            u32::from(p.style == realm_core::RopeStyle::Neox),
            theta_scale.to_bits(),
            p.freq_scale.to_bits(),
        ];
        let n = x.rows * p.n_heads * (p.rope_dim / 2);
        self.each(self.v(Op::Rope, None, None), n, &params, &[Bind::Whole(x.buffer())])
    }

    fn kv_store(
        &self,
        kv: &mut WgpuKv,
        layer: usize,
        start_pos: usize,
        k: &WgpuTensor,
        v: &WgpuTensor,
    ) -> Result<()> {
        const OP: &str = "kv_store";
        check::kv_layer(OP, kv.layers.len(), layer)?;
        let d = kv.desc;
        check::same_shape(OP, "k", (k.rows, k.cols), (k.rows, d.n_head_kv * d.head_dim))?;
        check::same_shape(OP, "v", (v.rows, v.cols), (k.rows, d.n_head_kv * d.head_dim_v))?;
        let end = start_pos.saturating_add(k.rows);
        if end > d.n_ctx {
            return Err(CoreError::ContextOverflow { op: OP, pos: end - 1, n_ctx: d.n_ctx });
        }
        let (fmt, per_word) = match d.dtype {
            KvDtype::F16 => (KvFormat::F16, 2),
            KvDtype::F32 => (KvFormat::F32, 1),
        };
        let var = self.v(Op::KvStore, None, Some(fmt));
        let l = &kv.layers[layer];
        for (src, dst) in [(k, &l.k), (v, &l.v)] {
            let words = src.len() / per_word;
            let params = [u(OP, words)?, u(OP, start_pos * src.cols / per_word)?, 0, 0];
            self.each(var, words, &params, &[Bind::Whole(src.buffer()), Bind::Whole(dst)])?;
        }
        Ok(())
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
    ) -> Result<()> {
        const OP: &str = "rope_kv_store";
        let d = kv.desc;
        let same = RopeParams { n_heads: q_rope.n_heads, ..*k_rope } == *q_rope;
        if !same || k_rope.n_heads != d.n_head_kv || k_rope.head_dim != d.head_dim {
            // Not the one-dispatch shape: the separate ops (which check everything).
            self.rope(q, q_rope)?;
            self.rope(k, k_rope)?;
            return self.kv_store(kv, layer, k_rope.start_pos, k, v);
        }
        let p = q_rope;
        check::kv_layer(OP, kv.layers.len(), layer)?;
        if p.head_dim == 0 || !p.rope_dim.is_multiple_of(2) || p.rope_dim > p.head_dim {
            return Err(shape_err(
                OP,
                format!("rope_dim {} of head_dim {}", p.rope_dim, p.head_dim),
            ));
        }
        let n = q.rows;
        check::same_shape(OP, "q", (q.rows, q.cols), (n, p.n_heads * p.head_dim))?;
        check::same_shape(OP, "k", (k.rows, k.cols), (n, d.n_head_kv * d.head_dim))?;
        check::same_shape(OP, "v", (v.rows, v.cols), (n, d.n_head_kv * d.head_dim_v))?;
        let end = p.start_pos.saturating_add(n);
        if end > d.n_ctx {
            return Err(CoreError::ContextOverflow { op: OP, pos: end - 1, n_ctx: d.n_ctx });
        }
        let (fmt, per_word) = match d.dtype {
            KvDtype::F16 => (KvFormat::F16, 2),
            KvDtype::F32 => (KvFormat::F32, 1),
        };
        // As the oracle: theta_scale = base^(-2/rope_dim) in f32 (the shader multiplies it up).
        let theta_scale = p.freq_base.powf(-2.0f32 / p.rope_dim as f32);
        let params = [
            u(OP, n)?,
            u(OP, p.n_heads)?,
            u(OP, d.n_head_kv)?,
            u(OP, p.head_dim)?,
            u(OP, p.rope_dim)?,
            u(OP, p.start_pos)?,
            u32::from(p.style == realm_core::RopeStyle::Neox),
            theta_scale.to_bits(),
            p.freq_scale.to_bits(),
            u(OP, d.head_dim_v)?,
            u(OP, p.start_pos * k.cols / per_word)?,
            u(OP, p.start_pos * v.cols / per_word)?,
        ];
        let items = n * p.n_heads * (p.rope_dim / 2) + (k.len() + v.len()) / per_word;
        let l = &kv.layers[layer];
        let binds = [
            Bind::Whole(q.buffer()),
            Bind::Whole(k.buffer()),
            Bind::Whole(v.buffer()),
            Bind::Whole(&l.k),
            Bind::Whole(&l.v),
        ];
        self.each(self.v(Op::RopeKv, None, Some(fmt)), items, &params, &binds)
    }

    fn attention(
        &self,
        q: &WgpuTensor,
        kv: &WgpuKv,
        layer: usize,
        p: &AttentionParams,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        const OP: &str = "attention";
        check::kv_layer(OP, kv.layers.len(), layer)?;
        check::attention((q.rows, q.cols), &kv.desc, p, (out.rows, out.cols))?;
        let n = q.rows;
        if n == 0 {
            return Ok(());
        }
        let fmt = match kv.desc.dtype {
            KvDtype::F16 => KvFormat::F16,
            KvDtype::F32 => KvFormat::F32,
        };
        // Decode over a long cache splits the key positions; prefill rows each have their own.
        let last = p.start_pos + n - 1;
        let lo = p.window.map_or(0, |w| (last + 1).saturating_sub(w));
        let span = last + 1 - lo;
        let split = n == 1 && span >= SPLIT_MIN_SPAN;
        let (split_len, n_split) = if split {
            let len = span.div_ceil(MAX_SPLITS).max(64);
            (len, span.div_ceil(len))
        } else {
            (last + 1, 1)
        };
        let (cap, has_cap) = match p.softcap {
            Some(c) => (c, 1),
            None => (1.0, 0),
        };
        let params = [
            u(OP, p.n_head)?,
            u(OP, p.n_head_kv)?,
            u(OP, p.head_dim)?,
            u(OP, p.head_dim_v)?,
            u(OP, p.start_pos)?,
            u(OP, p.window.unwrap_or(0))?,
            has_cap,
            u(OP, split_len)?,
            p.scale.to_bits(),
            cap.to_bits(),
            (1.0f32 / cap).to_bits(),
            u(OP, n_split)?,
        ];
        let l = &kv.layers[layer];
        let groups = [u(OP, p.n_head)?, u(OP, n)?, u(OP, n_split)?];
        // Keys and values of the span (each query head group reads them), q and out.
        let elem = if fmt == KvFormat::F16 { 2 } else { 4 };
        let kv_bytes = span * p.n_head_kv * (p.head_dim + p.head_dim_v) * elem;
        let bytes = (kv_bytes + (q.len() + out.len()) * 4) as u64;
        let v = self.v(Op::Attention { split }, None, Some(fmt));
        if !split {
            let binds = [
                Bind::Whole(q.buffer()),
                Bind::Whole(&l.k),
                Bind::Whole(&l.v),
                Bind::Whole(out.buffer()),
            ];
            return self.gpu.dispatch_moving(v, &params, &binds, groups, bytes);
        }
        let part_len = n * p.n_head * n_split * (p.head_dim_v + 2);
        let part = self.gpu.storage("attention partials", (part_len * 4) as u64)?;
        let binds = [
            Bind::Whole(q.buffer()),
            Bind::Whole(&l.k),
            Bind::Whole(&l.v),
            Bind::Whole(&part.buffer),
        ];
        self.gpu.dispatch_moving(v, &params, &binds, groups, bytes)?;
        let rparams = [u(OP, p.n_head)?, u(OP, p.head_dim_v)?, u(OP, n_split)?, 0];
        let rv = self.v(Op::AttentionReduce, None, None);
        let rbinds = [Bind::Whole(&part.buffer), Bind::Whole(out.buffer())];
        self.gpu.dispatch(rv, &rparams, &rbinds, [groups[0], groups[1], 1])
    }

    fn glu(
        &self,
        gate: &WgpuTensor,
        up: &WgpuTensor,
        act: Activation,
        out: &mut WgpuTensor,
    ) -> Result<()> {
        check::same_shape("glu", "up", (up.rows, up.cols), (gate.rows, gate.cols))?;
        check::same_shape("glu", "out", (out.rows, out.cols), (gate.rows, gate.cols))?;
        let v = self.v(Op::Glu { gelu: act == Activation::GeluTanh }, None, None);
        let n = gate.len();
        let binds =
            [Bind::Whole(gate.buffer()), Bind::Whole(up.buffer()), Bind::Whole(out.buffer())];
        self.each(v, n, &[u("glu", n)?, 0, 0, 0], &binds)
    }

    fn add(&self, x: &mut WgpuTensor, y: &WgpuTensor) -> Result<()> {
        check::same_shape("add", "y", (y.rows, y.cols), (x.rows, x.cols))?;
        let v = self.v(Op::Elementwise(ElementwiseKind::Add), None, None);
        let n = x.len();
        self.each(
            v,
            n,
            &[u("add", n)?, 0, 0, 0],
            &[Bind::Whole(x.buffer()), Bind::Whole(y.buffer())],
        )
    }

    fn scale(&self, x: &mut WgpuTensor, s: f32) -> Result<()> {
        let v = self.v(Op::Elementwise(ElementwiseKind::Scale), None, None);
        let n = x.len();
        self.each(v, n, &[u("scale", n)?, s.to_bits(), 0, 0], &[Bind::Whole(x.buffer())])
    }

    fn softcap(&self, x: &mut WgpuTensor, cap: f32) -> Result<()> {
        if cap == 0.0 || !cap.is_finite() {
            return Err(CoreError::Backend {
                op: "softcap",
                detail: format!("cap {cap} must be finite and non-zero"),
            });
        }
        let v = self.v(Op::Elementwise(ElementwiseKind::Softcap), None, None);
        let n = x.len();
        let params = [u("softcap", n)?, cap.to_bits(), (1.0f32 / cap).to_bits(), 0];
        self.each(v, n, &params, &[Bind::Whole(x.buffer())])
    }

    fn copy_rows(&self, x: &WgpuTensor, start: usize, out: &mut WgpuTensor) -> Result<()> {
        if out.cols != x.cols || start.saturating_add(out.rows) > x.rows {
            return Err(shape_err(
                "copy_rows",
                format!("rows {start}..+{:?} of {:?}", (out.rows, out.cols), (x.rows, x.cols)),
            ));
        }
        let at = (start * x.cols * 4) as u64;
        self.gpu.copy(x.buffer(), at, out.buffer(), 0, (out.len() * 4) as u64)
    }

    fn argmax(&self, x: &WgpuTensor, out: &mut WgpuTensor) -> Result<()> {
        check::same_shape("argmax", "out", (out.rows, out.cols), (x.rows, 1))?;
        let params = [u("argmax", x.rows)?, u("argmax", x.cols)?, 0, 0];
        let binds = [Bind::Whole(x.buffer()), Bind::Whole(out.buffer())];
        self.gpu.dispatch(self.v(Op::Argmax, None, None), &params, &binds, flat(x.rows)?)
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
}
