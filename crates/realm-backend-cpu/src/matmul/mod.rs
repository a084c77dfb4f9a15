//! `out[r, o] = Σ_c w[o, c] · x[r, c] (+ bias[o])`: the main cost of inference.
//!
//! Three paths:
//! - [`scalar`]: the oracle. Dequantize a weight row, then one f32 multiply-add at a time in
//!   column order, single-threaded.
//! - generic: dequantize each weight row once into f32 scratch (F16/BF16 by fast
//!   conversion) and dot it against every activation row with four 8-lane accumulators
//!   ([`crate::vec::dot`]). Any weight type.
//! - integer: quantize the activations to 8 bits once (Q8_0, Q8_1 or Q8_K, whichever the
//!   weight format pairs with, as ggml's `vec_dot_type`), then integer dot products per block
//!   (`portable` in plain Rust; `avx2` on x86_64 and `simd128` on wasm32, where one unpacked
//!   weight block serves up to four activation rows). This is llama.cpp's CPU approach: the weights are read in their
//!   2–8-bit form, never widened to f32 in memory. Formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
//!   IQ4_NL, Q4_K, Q5_K, Q6_K with AVX2 kernels (simd128: all but Q5_K); Q2_K, Q3_K, IQ4_XS
//!   with portable ones only. Every batch size of a format takes the same path (the integer
//!   one wherever a format has an integer kernel), so a row's result never depends on how
//!   many rows share the matmul (batch invariance); the plain-Rust integer kernels were
//!   faster than dequantize-once only below 4 rows, and that is the price on the
//!   portable paths (BENCHMARKS.md).
//!
//! - packed (x86_64 from AVX2 up, [`pack`]): the 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1,
//!   Q8_0) and Q4_K/Q5_K/Q6_K repacked at upload into panels, one i32 lane per weight row: 16-row
//!   panels with AVX-512 VNNI ([`vnni`]), 8-row panels with AVX2's `vpmaddubsw` or a 256-bit
//!   `vpdpbusd` ([`panel8`]); it serves every batch size and takes precedence over the
//!   integer path.
//!
//! The fast paths split the output features into chunks over the thread pool and, when there
//! are many activation rows, also split the rows into tiles; inside a chunk a tile of 8 weight
//! rows stays in L1 while the activation rows stream past it.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod pack;
#[cfg(target_arch = "x86_64")]
pub(crate) mod panel8;
mod portable;
mod q8;
pub(crate) mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vnni;

use std::ops::Range;
use std::sync::Mutex;

use realm_core::{CoreError, GgmlType, Result};

use crate::isa::Isa;
use crate::pool::{SharedMut, ThreadPool};
use crate::tensor::CpuWeight;
pub(crate) use q8::ActCache;
#[cfg(test)]
use q8::QActs;
use q8::{ActKind, ActRow};

/// Weight rows dotted against the activation rows while they sit in L1.
const OUT_TILE: usize = 8;
/// Activation rows per tile when the rows are split across chunks.
const ROW_TILE: usize = 16;
/// Activation rows per tile of the packed (VNNI) path: their quants stay in L2 while a
/// panel of weights (≤ 16 rows × a few KiB) stays in L1.
#[cfg(target_arch = "x86_64")]
const PACKED_ROW_TILE: usize = 64;
/// Below this many multiply-adds a matmul runs on the calling thread alone.
const MIN_PARALLEL_MACS: usize = 1 << 17;

/// The weight types with an integer kernel.
pub(crate) const INT_TYPES: [GgmlType; 12] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::IQ4_NL,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::IQ4_XS,
];

/// An integer kernel: the dot products of one weight row with several activation rows.
#[derive(Clone, Copy)]
enum IntDot {
    Portable(fn(&[u8], ActRow<'_>) -> f32),
    #[cfg(target_arch = "x86_64")]
    Avx2(crate::isa::Avx2Token, avx2::RowsDot),
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128(simd128::RowsDot),
}

impl IntDot {
    /// `out[i] = dot(w, a[i])`.
    #[inline]
    fn dots(self, w: &[u8], a: &[ActRow<'_>], out: &mut [f32]) {
        match self {
            Self::Portable(f) => {
                for (o, &a) in out.iter_mut().zip(a) {
                    *o = f(w, a);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(t, f) => f(t, w, a, out),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Simd128(f) => f(w, a, out),
        }
    }
}

fn int_kernel(ty: GgmlType, isa: Isa) -> Option<(ActKind, IntDot)> {
    use GgmlType as T;
    let kind = match ty {
        T::Q4_0 | T::Q5_0 | T::Q8_0 | T::IQ4_NL => ActKind::Q8_0,
        T::Q4_1 | T::Q5_1 => ActKind::Q8_1,
        T::Q4_K | T::Q5_K | T::Q6_K | T::Q2_K | T::Q3_K | T::IQ4_XS => ActKind::Q8K,
        _ => return None,
    };
    let portable = match ty {
        T::Q4_0 => portable::dot_q4_0,
        T::Q4_1 => portable::dot_q4_1,
        T::Q5_0 => portable::dot_q5_0,
        T::Q5_1 => portable::dot_q5_1,
        T::Q8_0 => portable::dot_q8_0,
        T::IQ4_NL => portable::dot_iq4_nl,
        T::Q4_K => portable::dot_q4_k,
        T::Q5_K => portable::dot_q5_k,
        T::Q2_K => portable::dot_q2_k,
        T::Q3_K => portable::dot_q3_k,
        T::IQ4_XS => portable::dot_iq4_xs,
        _ => portable::dot_q6_k,
    };
    // Formats without an AVX2 kernel run the plain-Rust one on every ISA.
    if matches!(ty, T::Q2_K | T::Q3_K | T::IQ4_XS) {
        return Some((kind, IntDot::Portable(portable)));
    }
    let dot = match isa {
        Isa::Portable => IntDot::Portable(portable),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => IntDot::Avx2(
            t,
            match ty {
                T::Q4_0 => avx2::dot_q4_0,
                T::Q4_1 => avx2::dot_q4_1,
                T::Q5_0 => avx2::dot_q5_0,
                T::Q5_1 => avx2::dot_q5_1,
                T::Q8_0 => avx2::dot_q8_0,
                T::IQ4_NL => avx2::dot_iq4_nl,
                T::Q4_K => avx2::dot_q4_k,
                T::Q5_K => avx2::dot_q5_k,
                _ => avx2::dot_q6_k,
            },
        ),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => match ty {
            T::Q4_0 => IntDot::Simd128(simd128::dot_q4_0),
            T::Q4_1 => IntDot::Simd128(simd128::dot_q4_1),
            T::Q5_0 => IntDot::Simd128(simd128::dot_q5_0),
            T::Q5_1 => IntDot::Simd128(simd128::dot_q5_1),
            T::Q8_0 => IntDot::Simd128(simd128::dot_q8_0),
            T::IQ4_NL => IntDot::Simd128(simd128::dot_iq4_nl),
            T::Q4_K => IntDot::Simd128(simd128::dot_q4_k),
            T::Q6_K => IntDot::Simd128(simd128::dot_q6_k),
            // Q5_K: no simd128 kernel yet.
            _ => IntDot::Portable(portable),
        },
    };
    Some((kind, dot))
}

/// What a matmul does with each result `r` (its bias included): `out = r`, `out += r` (a
/// residual), or `out = act(gate) · r` (the up projection of a gated FFN, `gate` as `out`'s
/// shape). Applied as each chunk writes its segment, so a fused matmul needs no temporary
/// and no second pass; the values are those of the separate ops, bit for bit.
#[derive(Clone, Copy)]
pub(crate) enum Then<'a> {
    Store,
    Add,
    Glu(&'a [f32], realm_core::Activation),
}

impl Then<'_> {
    /// Writes `vals`, the results at flat index `at ..` of the output, into `seg`.
    #[inline]
    fn write(self, seg: &mut [f32], vals: &[f32], at: usize) {
        match self {
            Then::Store => seg.copy_from_slice(vals),
            Then::Add => seg.iter_mut().zip(vals).for_each(|(s, &v)| *s += v),
            Then::Glu(gate, act) => {
                let g = gate.get(at..at + vals.len()).unwrap_or_default();
                crate::ops::elementwise::glu(g, vals, act, seg);
            }
        }
    }
}

/// Where a fast matmul runs: the pool, the instruction set, and the cache of the last
/// quantized activations.
#[derive(Clone, Copy)]
pub(crate) struct Exec<'a> {
    pub(crate) pool: &'a ThreadPool,
    pub(crate) isa: Isa,
    pub(crate) acts: &'a ActCache,
}

/// The fast matmul: `x` is `[n, w.cols]`, `out` is `[n, w.rows]`, `bias` has `w.rows` values.
pub(crate) fn fast(
    ex: Exec<'_>,
    w: &CpuWeight,
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    (then, out): (Then<'_>, &mut [f32]),
) -> Result<()> {
    let (pool, isa) = (ex.pool, ex.isa);
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = w.packed.as_deref() {
        return packed(ex, p, w, bias, x, n, (then, out));
    }
    let weights = Rows { data: w.data(), row_bytes: w.row_bytes };
    // The path depends on the format only, never on `n`: a row's result must not depend on
    // its batch.
    match int_kernel(w.ty, isa) {
        Some((kind, dot)) => {
            let acts = ex.acts.get(isa, kind, x, n, w.cols, pool).map_err(|_| {
                CoreError::Backend { op: "matmul", detail: "a worker panicked".into() }
            })?;
            let rows: Vec<ActRow<'_>> = (0..n).map(|r| acts.1.row(r)).collect();
            drive(pool, &IntKernel { weights, rows, dot }, w.rows, w.cols, n, bias, (then, out))
        }
        None => drive(
            pool,
            &F32Kernel { weights, ty: w.ty, k: w.cols, x, isa },
            w.rows,
            w.cols,
            n,
            bias,
            (then, out),
        ),
    }
}

/// A weight matrix repacked in panels, with the kernel that reads them.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Packed {
    kernel: crate::isa::PanelKernel,
    panels: pack::Panels,
}

#[cfg(target_arch = "x86_64")]
impl Packed {
    /// Repacks `rows × cols` weights of `ty` for `kernel`; `None` for a format the panels do
    /// not cover, fewer rows than a panel, a size mismatch or a failed allocation.
    pub(crate) fn new(
        kernel: crate::isa::PanelKernel,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Option<Self> {
        let panels = pack::Panels::new(kernel.width(), ty, rows, cols, data)?;
        Some(Self { kernel, panels })
    }

    /// The activation format the kernel takes.
    pub(crate) fn act_kind(&self) -> ActKind {
        self.panels.layout.fmt.act_kind()
    }

    /// Weight rows per panel.
    pub(crate) fn width(&self) -> usize {
        self.panels.layout.p
    }

    /// `out[i][o]` = row `width · panel + o` dotted with activation row `a[i]`, for `o` below
    /// the width (rows past the matrix give 0). `out` has one entry per activation row.
    pub(crate) fn panel_dots(
        &self,
        panel: usize,
        a: &[ActRow<'_>],
        out: &mut [[f32; vnni::PANEL]],
    ) {
        let Some(recs) = self.panels.panel(panel) else { return };
        if !self.panels.rows_fit(a) {
            return;
        }
        let fmt = self.panels.layout.fmt;
        match self.kernel {
            // SAFETY: a `Vnni512Token` exists only after AVX-512 F/BW/VL/VNNI, AVX2, FMA and
            // F16C were detected.
            crate::isa::PanelKernel::Vnni512(_) => unsafe { vnni::rows(fmt, recs, a, out) },
            // SAFETY: `PanelKernel::of` makes `P8` only for a level the CPU supports: AVX2,
            // FMA and F16C, and for the VNNI dots the features they name.
            crate::isa::PanelKernel::P8(_, dot) => unsafe { panel8::rows(dot, fmt, recs, a, out) },
        }
    }
}

/// [`fast`] over weights repacked in panels.
#[cfg(target_arch = "x86_64")]
fn packed(
    ex: Exec<'_>,
    p: &Packed,
    w: &CpuWeight,
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    (then, out): (Then<'_>, &mut [f32]),
) -> Result<()> {
    let pool = ex.pool;
    let panicked = || CoreError::Backend { op: "matmul", detail: "a worker panicked".into() };
    let acts = ex.acts.get(ex.isa, p.act_kind(), x, n, w.cols, pool).map_err(|_| panicked())?;
    let rows: Vec<ActRow<'_>> = (0..n).map(|r| acts.1.row(r)).collect();
    let m = w.rows;
    let plan = Plan::tiled(n, m, w.cols, pool.threads(), p.width(), PACKED_ROW_TILE);
    let shared = SharedMut::new(out);
    let ran = pool.run(plan.chunks(), &|c| {
        let (rs, outs) = plan.chunk(c);
        packed_chunk(p, &rows, m, (rs, outs), bias, then, &shared);
    });
    ran.map_err(|_| panicked())
}

/// One chunk of [`packed`]: per tile of activation rows, each panel of weight rows against
/// the rows eight at a time.
#[cfg(target_arch = "x86_64")]
fn packed_chunk(
    p: &Packed,
    acts: &[ActRow<'_>],
    m: usize,
    (rows, outs): (Range<usize>, Range<usize>),
    bias: Option<&[f32]>,
    then: Then<'_>,
    out: &SharedMut<'_, f32>,
) {
    let panel = p.width();
    let mut buf = [[0.0f32; vnni::PANEL]; 8];
    let mut t0 = rows.start;
    while t0 < rows.end {
        let t1 = (t0 + PACKED_ROW_TILE).min(rows.end);
        for o0 in outs.clone().step_by(panel) {
            let width = panel.min(outs.end - o0);
            let b = bias.and_then(|b| b.get(o0..o0 + width));
            for r0 in (t0..t1).step_by(8) {
                let r1 = (r0 + 8).min(t1);
                let res = &mut buf[..r1 - r0];
                p.panel_dots(o0 / panel, acts.get(r0..r1).unwrap_or_default(), res);
                for (r, vals) in (r0..r1).zip(res.iter_mut()) {
                    let vals = &mut vals[..width];
                    if let Some(b) = b {
                        vals.iter_mut().zip(b).for_each(|(s, &b)| *s += b);
                    }
                    // SAFETY: chunks cover disjoint (row, output) rectangles (`Plan::chunk`),
                    // so the segment `[r, o0 .. o0 + width]` is written by this chunk only.
                    let Some(seg) = (unsafe { out.range(r * m + o0, width) }) else { continue };
                    then.write(seg, vals, r * m + o0);
                }
            }
        }
        t0 = t1;
    }
}

/// The weight rows of one matmul (looked up once, not per row).
#[derive(Clone, Copy)]
struct Rows<'a> {
    data: &'a [u8],
    row_bytes: usize,
}

impl<'a> Rows<'a> {
    #[inline]
    fn row(&self, o: usize) -> &'a [u8] {
        self.data.get(o * self.row_bytes..(o + 1) * self.row_bytes).unwrap_or_default()
    }
}

/// What a chunk of the matmul needs: per-tile preparation of weight rows, then dots.
trait TileKernel: Sync {
    /// Per-chunk scratch space.
    type Scratch;
    fn scratch(&self) -> Result<Self::Scratch>;
    /// Prepares weight row `o` in tile slot `slot`.
    fn load(&self, scratch: &mut Self::Scratch, slot: usize, o: usize) -> Result<()>;
    /// `out[i]` = the weight row in `slot` (row `o`) dotted with activation row `rows.start + i`.
    fn dots(
        &self,
        scratch: &Self::Scratch,
        slot: usize,
        o: usize,
        rows: Range<usize>,
        out: &mut [f32],
    );
}

struct IntKernel<'a> {
    weights: Rows<'a>,
    rows: Vec<ActRow<'a>>,
    dot: IntDot,
}

impl TileKernel for IntKernel<'_> {
    type Scratch = ();
    fn scratch(&self) -> Result<()> {
        Ok(())
    }
    fn load(&self, _: &mut (), _: usize, _: usize) -> Result<()> {
        Ok(())
    }
    #[inline]
    fn dots(&self, _: &(), _: usize, o: usize, rows: Range<usize>, out: &mut [f32]) {
        let a = self.rows.get(rows).unwrap_or_default();
        self.dot.dots(self.weights.row(o), a, out);
    }
}

struct F32Kernel<'a> {
    weights: Rows<'a>,
    ty: GgmlType,
    k: usize,
    x: &'a [f32],
    isa: Isa,
}

impl TileKernel for F32Kernel<'_> {
    type Scratch = Vec<f32>;
    fn scratch(&self) -> Result<Vec<f32>> {
        crate::tensor::alloc_filled(OUT_TILE.checked_mul(self.k), 0.0, "matmul scratch")
    }
    fn load(&self, scratch: &mut Vec<f32>, slot: usize, o: usize) -> Result<()> {
        let k = self.k;
        let dst = scratch.get_mut(slot * k..(slot + 1) * k).unwrap_or_default();
        crate::vec::to_f32(self.isa, self.ty, self.weights.row(o), dst)
            .map_err(|e| CoreError::Backend { op: "matmul", detail: e.to_string() })
    }
    #[inline]
    fn dots(&self, scratch: &Vec<f32>, slot: usize, _: usize, rows: Range<usize>, out: &mut [f32]) {
        let k = self.k;
        let w = scratch.get(slot * k..(slot + 1) * k).unwrap_or_default();
        for (o, r) in out.iter_mut().zip(rows) {
            let x = self.x.get(r * k..(r + 1) * k).unwrap_or_default();
            *o = crate::vec::dot(self.isa, w, x);
        }
    }
}

/// How the `n × m` outputs are split into chunks: `row_tiles × out_chunks`.
struct Plan {
    n: usize,
    m: usize,
    row_tile: usize,
    out_chunk: usize,
    out_chunks: usize,
}

impl Plan {
    fn new(n: usize, m: usize, k: usize, threads: usize) -> Self {
        Self::tiled(n, m, k, threads, OUT_TILE, ROW_TILE)
    }

    /// Output chunks in multiples of `out_tile`; rows split in tiles of `row_tile` when there
    /// are enough of them.
    fn tiled(
        n: usize,
        m: usize,
        k: usize,
        threads: usize,
        out_tile: usize,
        row_tile: usize,
    ) -> Self {
        let macs = n.saturating_mul(m).saturating_mul(k);
        if threads <= 1 || macs < MIN_PARALLEL_MACS {
            return Self { n, m, row_tile: n.max(1), out_chunk: m.max(1), out_chunks: 1 };
        }
        // Several chunks per thread, so a thread slowed by another process costs little.
        let target = threads * 8;
        let row_tile = if n >= row_tile * threads { row_tile } else { n.max(1) };
        let row_tiles = n.div_ceil(row_tile);
        let out_tiles = m.div_ceil(out_tile);
        let want = target.div_ceil(row_tiles).clamp(1, out_tiles.max(1));
        let out_chunk = out_tiles.div_ceil(want) * out_tile;
        Self { n, m, row_tile, out_chunk, out_chunks: m.div_ceil(out_chunk).max(1) }
    }

    fn chunks(&self) -> usize {
        self.n.div_ceil(self.row_tile) * self.out_chunks
    }

    /// Chunk `c`: its activation rows and output features.
    fn chunk(&self, c: usize) -> (Range<usize>, Range<usize>) {
        let (rt, oc) = (c / self.out_chunks, c % self.out_chunks);
        let rows = rt * self.row_tile..((rt + 1) * self.row_tile).min(self.n);
        let outs = oc * self.out_chunk..((oc + 1) * self.out_chunk).min(self.m);
        (rows, outs)
    }
}

fn drive<K: TileKernel>(
    pool: &ThreadPool,
    kernel: &K,
    m: usize,
    k: usize,
    n: usize,
    bias: Option<&[f32]>,
    (then, out): (Then<'_>, &mut [f32]),
) -> Result<()> {
    let plan = Plan::new(n, m, k, pool.threads());
    let first_error = Mutex::new(None);
    let shared = SharedMut::new(out);
    let ran = pool.run(plan.chunks(), &|c| {
        let (rows, outs) = plan.chunk(c);
        if let Err(e) = chunk(kernel, &plan, (rows, outs), (bias, then), &shared)
            && let Ok(mut slot) = first_error.lock()
        {
            slot.get_or_insert(e);
        }
    });
    if ran.is_err() {
        return Err(CoreError::Backend { op: "matmul", detail: "a worker panicked".into() });
    }
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// One chunk: for each tile of `OUT_TILE` weight rows (kept in L1), the activation rows in
/// sub-tiles of `ROW_TILE` (streamed from L2).
fn chunk<K: TileKernel>(
    kernel: &K,
    plan: &Plan,
    (rows, outs): (Range<usize>, Range<usize>),
    (bias, then): (Option<&[f32]>, Then<'_>),
    out: &SharedMut<'_, f32>,
) -> Result<()> {
    let mut scratch = kernel.scratch()?;
    let mut tile = [[0.0f32; OUT_TILE]; ROW_TILE];
    let mut col = [0.0f32; ROW_TILE];
    let mut o0 = outs.start;
    while o0 < outs.end {
        let o1 = (o0 + OUT_TILE).min(outs.end);
        for o in o0..o1 {
            kernel.load(&mut scratch, o - o0, o)?;
        }
        let mut r0 = rows.start;
        while r0 < rows.end {
            let r1 = (r0 + ROW_TILE).min(rows.end);
            for (slot, o) in (o0..o1).enumerate() {
                kernel.dots(&scratch, slot, o, r0..r1, &mut col[..r1 - r0]);
                let b = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
                for (t, &v) in tile.iter_mut().zip(&col[..r1 - r0]) {
                    t[slot] = v + b;
                }
            }
            for (r, t) in (r0..r1).zip(&tile) {
                // SAFETY: chunks cover disjoint (row, output) rectangles (`Plan::chunk`),
                // so the segment `[r, o0..o1]` is written by this chunk only.
                if let Some(seg) = unsafe { out.range(r * plan.m + o0, o1 - o0) } {
                    then.write(seg, &t[..o1 - o0], r * plan.m + o0);
                }
            }
            r0 = r1;
        }
        o0 = o1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
