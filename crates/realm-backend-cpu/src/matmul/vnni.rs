//! x86_64 AVX-512 VNNI matmul for the 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) over
//! weights repacked once, at upload, into panels of 16 rows.
//!
//! Why repack: the row-at-a-time kernels ([`super::avx2`]) reduce each block to one integer
//! per (weight row, activation row) and then pay a horizontal sum, an int→float conversion
//! and a scale multiply per 32 weights. Here one `vpdpbusd` multiplies 4 consecutive weights
//! of 16 rows at once (one i32 lane per weight row) by the same 4 activation quants
//! (broadcast), so a block of 16 rows costs 8 `vpdpbusd`, and the conversion and scaling are
//! done for 16 outputs at a time; no horizontal sums at all. This is the idea behind
//! llama.cpp's repacked CPU weights (`ggml/src/ggml-cpu/repack.cpp`, commit
//! `0c1e57098bba43ac29e6e3b677cdceebdd22334f`); the layout below is our own.
//!
//! Panel layout, per 32-block `b` of 16 rows (a "record"), little-endian:
//! - quants: vector `j` (64 bytes) holds in lane `o` the four weights `4j .. 4j + 4` of row
//!   `o`, as unsigned bytes. 4-bit formats store the GGUF nibble bytes (vector `j < 4` holds
//!   bytes `4j .. 4j + 4` of `qs`, whose low nibbles are weights `4j..` and high nibbles
//!   weights `16 + 4j..`), so the kernel unpacks 4 vectors into 8; Q8_0 stores `q + 128`.
//! - Q5_0/Q5_1: 8 × 64-bit masks, bit `4o + t` of mask `j` = the fifth bit of weight
//!   `4j + t` of row `o`.
//! - 16 f16 scales `d`, then (Q4_1, Q5_1) 16 f16 mins `m`.
//!
//! Weights stored with an offset (`q + off`, unsigned for `vpdpbusd`) are corrected with the
//! exact block sum of the activation quants: `Σ (q + off) · y - off · Σ y`. The integer sums
//! are the same as the portable kernels'; only the f32 rounding order differs.
//!
//! Rows past the end of the last panel are zero with a zero scale.

use core::arch::x86_64::*;

use realm_core::GgmlType;

use super::q8::{ActKind, ActRow};
use crate::isa::Vnni512Token;

/// Weight rows per panel: one i32 lane each of a 512-bit vector.
pub(crate) const PANEL: usize = 16;

/// How far ahead of the record being read the kernel prefetches (bytes).
const PREFETCH_AHEAD: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl Fmt {
    fn of(ty: GgmlType) -> Option<Self> {
        Some(match ty {
            GgmlType::Q4_0 => Self::Q4_0,
            GgmlType::Q4_1 => Self::Q4_1,
            GgmlType::Q5_0 => Self::Q5_0,
            GgmlType::Q5_1 => Self::Q5_1,
            GgmlType::Q8_0 => Self::Q8_0,
            _ => return None,
        })
    }

    /// Bytes of one GGUF block.
    fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
        }
    }

    fn quant_bytes(self) -> usize {
        if self == Self::Q8_0 { 8 * 64 } else { 4 * 64 }
    }

    fn mask_bytes(self) -> usize {
        if matches!(self, Self::Q5_0 | Self::Q5_1) { 8 * 8 } else { 0 }
    }

    /// `w = d · q + m` (a min per block, Q8_1 activations) rather than `w = d · (q - off)`.
    fn affine(self) -> bool {
        matches!(self, Self::Q4_1 | Self::Q5_1)
    }

    /// What was added to the signed quants to store them unsigned.
    fn offset(self) -> i32 {
        match self {
            Self::Q4_0 => 8,
            Self::Q5_0 => 16,
            Self::Q8_0 => 128,
            Self::Q4_1 | Self::Q5_1 => 0,
        }
    }

    /// Byte offset of the f16 scales in a record.
    fn scales_at(self) -> usize {
        self.quant_bytes() + self.mask_bytes()
    }

    /// Bytes of one record (a 32-block of 16 rows).
    fn record(self) -> usize {
        self.scales_at() + if self.affine() { 64 } else { 32 }
    }
}

/// A weight matrix in 16-row panels (see the module docs).
pub(crate) struct Packed {
    token: Vnni512Token,
    fmt: Fmt,
    /// 32-blocks per row.
    nb: usize,
    data: Vec<u8>,
}

impl Packed {
    /// Repacks `rows × cols` weights of `ty` (`data`: the GGUF rows). `None` for other
    /// formats, fewer than [`PANEL`] rows, a size mismatch or a failed allocation.
    pub(crate) fn new(
        token: Vnni512Token,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Option<Self> {
        let fmt = Fmt::of(ty)?;
        if rows < PANEL || !cols.is_multiple_of(32) {
            return None;
        }
        let nb = cols / 32;
        let (bb, rec) = (fmt.block_bytes(), fmt.record());
        let row_bytes = nb * bb;
        if data.len() != rows.checked_mul(row_bytes)? {
            return None;
        }
        let panel_bytes = nb * rec;
        let total = rows.div_ceil(PANEL).checked_mul(panel_bytes)?;
        let mut out = Vec::new();
        out.try_reserve_exact(total).ok()?;
        out.resize(total, 0u8);
        for (p, panel) in out.chunks_exact_mut(panel_bytes).enumerate() {
            for (b, dst) in panel.chunks_exact_mut(rec).enumerate() {
                for o in 0..PANEL.min(rows - p * PANEL) {
                    let at = (p * PANEL + o) * row_bytes + b * bb;
                    pack_block(fmt, &data[at..at + bb], o, dst);
                }
            }
        }
        Some(Self { token, fmt, nb, data: out })
    }

    /// The activation format the kernel takes.
    pub(crate) fn act_kind(&self) -> ActKind {
        if self.fmt.affine() { ActKind::Q8_1 } else { ActKind::Q8_0 }
    }

    /// `out[i][o]` = row `16 · panel + o` dotted with activation row `a[i]` (rows past the
    /// matrix give 0). `out` has one entry per activation row.
    pub(crate) fn panel_dots(&self, panel: usize, a: &[ActRow<'_>], out: &mut [[f32; PANEL]]) {
        let rec = self.fmt.record();
        let len = self.nb * rec;
        let Some(recs) = self.data.get(panel * len..(panel + 1) * len) else { return };
        // Every row must cover the blocks the kernel indexes.
        let nb = self.nb;
        let ok = a.iter().all(|r| {
            r.qs.len() >= 32 * nb
                && r.d.len() >= nb
                && (self.fmt.offset() == 0 || r.isum.len() >= nb)
                && (!self.fmt.affine() || r.s.len() >= nb)
        });
        if !ok {
            return;
        }
        let _ = self.token;
        // SAFETY: a `Vnni512Token` exists only after AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C
        // were detected.
        unsafe { rows(self.fmt, recs, a, out) }
    }
}

/// Writes GGUF block `src` of panel row `o` into record `dst`.
fn pack_block(fmt: Fmt, src: &[u8], o: usize, dst: &mut [u8]) {
    let sc = fmt.scales_at();
    dst[sc + 2 * o..sc + 2 * o + 2].copy_from_slice(&src[0..2]);
    if fmt.affine() {
        dst[sc + 32 + 2 * o..sc + 34 + 2 * o].copy_from_slice(&src[2..4]);
    }
    if fmt == Fmt::Q8_0 {
        for j in 0..8 {
            for t in 0..4 {
                dst[64 * j + 4 * o + t] = src[2 + 4 * j + t] ^ 0x80;
            }
        }
        return;
    }
    let qs = &src[src.len() - 16..];
    for j in 0..4 {
        dst[64 * j + 4 * o..64 * j + 4 * o + 4].copy_from_slice(&qs[4 * j..4 * j + 4]);
    }
    let h = match fmt {
        Fmt::Q5_0 => 2,
        Fmt::Q5_1 => 4,
        _ => return,
    };
    let qh = u32::from_le_bytes([src[h], src[h + 1], src[h + 2], src[h + 3]]);
    let masks = fmt.quant_bytes();
    for e in 0..32 {
        if qh >> e & 1 == 1 {
            let (j, t) = (e / 4, e % 4);
            let bit = 4 * o + t;
            dst[masks + 8 * j + bit / 8] |= 1 << (bit % 8);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn rows(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>], out: &mut [[f32; PANEL]]) {
    let (a4, a1) = a.as_chunks::<4>();
    let (o4, o1) = out.as_chunks_mut::<4>();
    for (a, o) in a4.iter().zip(o4) {
        store(o, dispatch::<4>(fmt, recs, a));
    }
    for (a, o) in a1.iter().zip(o1) {
        store(core::slice::from_mut(o), dispatch::<1>(fmt, recs, &[*a]));
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store<const R: usize>(out: &mut [[f32; PANEL]], v: [__m512; R]) {
    for (o, v) in out.iter_mut().zip(v) {
        // SAFETY: `o` is 16 writable f32; storeu has no alignment need.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dispatch<const R: usize>(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>; R]) -> [__m512; R] {
    match fmt {
        Fmt::Q4_0 => panel_loop::<R, false>(fmt, recs, a, |r| nibbles(r)),
        Fmt::Q4_1 => panel_loop::<R, true>(fmt, recs, a, |r| nibbles(r)),
        Fmt::Q5_0 => panel_loop::<R, false>(fmt, recs, a, |r| fifth_bits(r)),
        Fmt::Q5_1 => panel_loop::<R, true>(fmt, recs, a, |r| fifth_bits(r)),
        Fmt::Q8_0 => panel_loop::<R, false>(fmt, recs, a, |r| bytes(r)),
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load512(rec: &[u8], at: usize) -> __m512i {
    let b: &[u8; 64] = rec[at..at + 64].try_into().unwrap_or(&[0; 64]);
    // SAFETY: `b` is 64 readable bytes; loadu has no alignment need.
    unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,f16c")]
fn load_f16x16(rec: &[u8], at: usize) -> __m512 {
    let b: &[u8; 32] = rec[at..at + 32].try_into().unwrap_or(&[0; 32]);
    // SAFETY: `b` is 32 readable bytes; loadu has no alignment need.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(b.as_ptr().cast()) })
}

/// The 8 weight vectors of a 4-bit record: low nibbles of the 4 stored vectors, then high.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn nibbles(rec: &[u8]) -> [__m512i; 8] {
    let m4 = _mm512_set1_epi8(0x0F);
    let v: [__m512i; 4] = core::array::from_fn(|j| load512(rec, 64 * j));
    let hi = |x: __m512i| _mm512_and_si512(_mm512_srli_epi16::<4>(x), m4);
    [
        _mm512_and_si512(v[0], m4),
        _mm512_and_si512(v[1], m4),
        _mm512_and_si512(v[2], m4),
        _mm512_and_si512(v[3], m4),
        hi(v[0]),
        hi(v[1]),
        hi(v[2]),
        hi(v[3]),
    ]
}

/// [`nibbles`] plus 16 where the record's masks hold a fifth bit.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn fifth_bits(rec: &[u8]) -> [__m512i; 8] {
    let mut w = nibbles(rec);
    let sixteen = _mm512_set1_epi8(16);
    for (j, x) in w.iter_mut().enumerate() {
        let at = 4 * 64 + 8 * j;
        let k = rec.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        *x = _mm512_mask_add_epi8(*x, k, *x, sixteen);
    }
    w
}

/// The 8 weight vectors of a Q8_0 record.
#[inline]
#[target_feature(enable = "avx512f")]
fn bytes(rec: &[u8]) -> [__m512i; 8] {
    core::array::from_fn(|j| load512(rec, 64 * j))
}

/// Activation quants `4j .. 4j + 4` of a block as one i32.
#[inline(always)]
fn dword(q: &[i8; 32], j: usize) -> i32 {
    i32::from_le_bytes([q[4 * j] as u8, q[4 * j + 1] as u8, q[4 * j + 2] as u8, q[4 * j + 3] as u8])
}

/// The loop over a panel's records: `R` activation rows share each unpacked record.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn panel_loop<const R: usize, const AFFINE: bool>(
    fmt: Fmt,
    recs: &[u8],
    a: &[ActRow<'_>; R],
    unpack: impl Fn(&[u8]) -> [__m512i; 8],
) -> [__m512; R] {
    let (sc, off) = (fmt.scales_at(), fmt.offset());
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, rec) in recs.chunks_exact(fmt.record()).enumerate() {
        // Decode streams the weights once: ask for them ahead of the hardware prefetcher
        // (measured +15–20 % tokens/s at one thread). Past the panel's end this reaches the
        // next panel, which comes next; a prefetch never faults.
        let ahead = rec.as_ptr().wrapping_add(PREFETCH_AHEAD);
        for line in 0..fmt.record().div_ceil(64) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
        }
        let w = unpack(rec);
        let d = load_f16x16(rec, sc);
        let m = if AFFINE { load_f16x16(rec, sc + 32) } else { _mm512_setzero_ps() };
        for (acc, a) in acc.iter_mut().zip(a) {
            let (blocks, _) = a.qs.as_chunks::<32>();
            let q = &blocks[b];
            // Two chains halve the vpdpbusd latency a single row waits on.
            let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for j in (0..8).step_by(2) {
                s0 = _mm512_dpbusd_epi32(s0, w[j], _mm512_set1_epi32(dword(q, j)));
                s1 = _mm512_dpbusd_epi32(s1, w[j + 1], _mm512_set1_epi32(dword(q, j + 1)));
            }
            let mut s = _mm512_add_epi32(s0, s1);
            if off != 0 {
                s = _mm512_sub_epi32(s, _mm512_set1_epi32(off * a.isum[b]));
            }
            let scale = _mm512_mul_ps(d, _mm512_set1_ps(a.d[b]));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, *acc);
            if AFFINE {
                *acc = _mm512_fmadd_ps(m, _mm512_set1_ps(a.s[b]), *acc);
            }
        }
    }
    acc
}
