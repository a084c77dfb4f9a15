//! x86_64 AVX-512 VNNI matmul for the 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the
//! K-quants Q4_K and Q6_K over weights repacked once, at upload, into panels of 16 rows.
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
//!
//! Q4_K and Q6_K records are whole superblocks (256 weights of 16 rows; offsets in the `q4k` and
//! `q6k` modules): 8 sub-records of quants in the 4-bit layout above (Q6_K adds two vectors of
//! high bits per sub-record), the rows' sub-block scales as bytes, Q4_K's mins as i16 pairs, and
//! the f16 superblock scales. Activations are Q8_K, and the arithmetic is ggml's
//! (`ggml_vec_dot_q4_K_q8_K`, `ggml_vec_dot_q6_K_q8_K`): integer dots per sub-block times the
//! integer scales, summed over the superblock, then one f32 scaling — so the results equal the
//! row kernels' up to f32 rounding order. The records are the size of the GGUF blocks (Q6_K) or
//! 8 % larger (Q4_K).

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
    /// Q4_K in superblock records (see the module docs).
    Q4K,
    /// Q6_K in superblock records.
    Q6K,
}

/// Byte offsets inside a Q4_K superblock record (16 rows × 256 weights).
mod q4k {
    /// 8 sub-records of 256 bytes (nibbles, as Q4_0's quants) come first.
    pub(super) const SC: usize = 8 * 256;
    /// 8 × 16 unsigned 6-bit scales: sub-block `s`, row `o` at `SC + 16 s + o`.
    pub(super) const MINS: usize = SC + 128;
    /// 4 × 64 bytes: vector `k` holds in lane `o` the mins of sub-blocks `2k`, `2k + 1` of row
    /// `o` as two i16 (for `vpdpwssd` against pairs of activation block sums).
    pub(super) const D: usize = MINS + 256;
    /// 16 f16 `d`, then 16 f16 `dmin`.
    pub(super) const RECORD: usize = D + 64;
}

/// Byte offsets inside a Q6_K superblock record.
mod q6k {
    /// 8 sub-records of 384 bytes: 4 nibble vectors (as Q4_0's) then 2 vectors of high bits.
    pub(super) const SUB: usize = 384;
    /// 8 × 32 signed scales: sub-record `s`, row `o`: `SC + 32 s + o` (weights 0..16 of the
    /// sub-record) and `SC + 32 s + 16 + o` (weights 16..32).
    pub(super) const SC: usize = 8 * SUB;
    /// 16 f16 `d`.
    pub(super) const D: usize = SC + 256;
    pub(super) const RECORD: usize = D + 32;
}

impl Fmt {
    fn of(ty: GgmlType) -> Option<Self> {
        Some(match ty {
            GgmlType::Q4_0 => Self::Q4_0,
            GgmlType::Q4_1 => Self::Q4_1,
            GgmlType::Q5_0 => Self::Q5_0,
            GgmlType::Q5_1 => Self::Q5_1,
            GgmlType::Q8_0 => Self::Q8_0,
            GgmlType::Q4_K => Self::Q4K,
            GgmlType::Q6_K => Self::Q6K,
            _ => return None,
        })
    }

    /// Weights per GGUF block (and per record).
    fn block_weights(self) -> usize {
        if self.superblock() { 256 } else { 32 }
    }

    fn superblock(self) -> bool {
        matches!(self, Self::Q4K | Self::Q6K)
    }

    /// Bytes of one GGUF block.
    fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q6K => 210,
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
            Self::Q4_1 | Self::Q5_1 | Self::Q4K | Self::Q6K => 0,
        }
    }

    /// Byte offset of the f16 scales in a record.
    fn scales_at(self) -> usize {
        self.quant_bytes() + self.mask_bytes()
    }

    /// Bytes of one record (a block of 16 rows).
    fn record(self) -> usize {
        match self {
            Self::Q4K => q4k::RECORD,
            Self::Q6K => q6k::RECORD,
            _ => self.scales_at() + if self.affine() { 64 } else { 32 },
        }
    }
}

/// A weight matrix in 16-row panels (see the module docs).
pub(crate) struct Packed {
    token: Vnni512Token,
    fmt: Fmt,
    /// GGUF blocks (records) per row.
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
        if rows < PANEL || !cols.is_multiple_of(fmt.block_weights()) {
            return None;
        }
        let nb = cols / fmt.block_weights();
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
        // A large matrix is read in groups of panels whose source pages are handed back to the
        // OS once packed (see `page_out`): otherwise a memory-mapped 170 MiB embedding would be
        // resident twice, source and panels, until the loader releases the source.
        let group = (PAGE_OUT_BYTES / (PANEL * row_bytes).max(1)).max(1);
        let large = data.len() >= PAGE_OUT_BYTES;
        for (p, panel) in out.chunks_exact_mut(panel_bytes).enumerate() {
            if large && p % group == 0 && p > 0 {
                page_out(&data[(p - group) * PANEL * row_bytes..p * PANEL * row_bytes]);
            }
            for (b, dst) in panel.chunks_exact_mut(rec).enumerate() {
                for o in 0..PANEL.min(rows - p * PANEL) {
                    let at = (p * PANEL + o) * row_bytes + b * bb;
                    let src = &data[at..at + bb];
                    match fmt {
                        Fmt::Q4K => pack_q4k(src, o, dst),
                        Fmt::Q6K => pack_q6k(src, o, dst),
                        _ => pack_block(fmt, src, o, dst),
                    }
                }
            }
        }
        Some(Self { token, fmt, nb, data: out })
    }

    /// The activation format the kernel takes.
    pub(crate) fn act_kind(&self) -> ActKind {
        if self.fmt.superblock() {
            ActKind::Q8K
        } else if self.fmt.affine() {
            ActKind::Q8_1
        } else {
            ActKind::Q8_0
        }
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
            r.qs.len() >= self.fmt.block_weights() * nb
                && r.d.len() >= nb
                && (self.fmt.offset() == 0 || r.isum.len() >= nb)
                && (!self.fmt.affine() || r.s.len() >= nb)
                && (!self.fmt.superblock() || r.bsums.len() >= 16 * nb)
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

/// Bytes of source packed between two [`page_out`] calls, and the smallest matrix that gets them.
const PAGE_OUT_BYTES: usize = 8 << 20;

/// Asks the OS to reclaim the pages of `bytes` now (`MADV_PAGEOUT`, Linux 5.4+). Contents are
/// preserved whatever the memory is — clean file pages are dropped and read back from the file
/// on the next access, anonymous pages stay unless there is swap — so this is only a hint that
/// lowers the resident size; where unsupported it does nothing.
fn page_out(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let (addr, len) = (bytes.as_ptr() as usize, bytes.len());
        let start = addr.next_multiple_of(PAGE);
        let end = (addr + len) & !(PAGE - 1);
        if start < end {
            // SAFETY: the range lies inside `bytes` (page-aligned inward) and MADV_PAGEOUT
            // never changes what any reference reads, so no borrow is invalidated.
            unsafe {
                let _ = libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
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

/// Writes the 32 weights `q` (each below 16) of one sub-block of row `o` as 4 nibble vectors
/// (the layout of Q4_0's quants) at the start of `dst`.
fn pack_nibbles(q: &[u8], o: usize, dst: &mut [u8]) {
    for j in 0..4 {
        for t in 0..4 {
            dst[64 * j + 4 * o + t] = (q[4 * j + t] & 0x0F) | (q[16 + 4 * j + t] & 0x0F) << 4;
        }
    }
}

/// Writes Q4_K block `src` (144 bytes) of panel row `o` into superblock record `dst`.
fn pack_q4k(src: &[u8], o: usize, dst: &mut [u8]) {
    let Some(b) = src.first_chunk::<144>() else { return };
    let (_, _, scales, qs) = super::portable::q4k_parts(b);
    let (sc, mins) = super::portable::k4_scale_mins(scales);
    for s in 0..8 {
        // Sub-block `s`: the low (even `s`) or high (odd `s`) nibbles of 32 bytes of `qs`.
        let bytes = &qs[32 * (s / 2)..32 * (s / 2) + 32];
        let q: [u8; 32] = core::array::from_fn(|i| bytes[i] >> (4 * (s % 2)) & 0x0F);
        pack_nibbles(&q, o, &mut dst[256 * s..256 * (s + 1)]);
        dst[q4k::SC + 16 * s + o] = sc[s];
        let at = q4k::MINS + 64 * (s / 2) + 4 * o + 2 * (s % 2);
        dst[at..at + 2].copy_from_slice(&i16::from(mins[s]).to_le_bytes());
    }
    dst[q4k::D + 2 * o..q4k::D + 2 * o + 2].copy_from_slice(&src[0..2]);
    dst[q4k::D + 32 + 2 * o..q4k::D + 34 + 2 * o].copy_from_slice(&src[2..4]);
}

/// Writes Q6_K block `src` (210 bytes) of panel row `o` into superblock record `dst`.
fn pack_q6k(src: &[u8], o: usize, dst: &mut [u8]) {
    let Some(b) = src.first_chunk::<210>() else { return };
    let (ql, qh, sc, _) = super::portable::q6k_parts(b);
    // The 256 unsigned 6-bit quants in weight order (ggml's dequantize_row_q6_K order).
    let mut q = [0u8; 256];
    for h in 0..2 {
        let (l0, l1) = (&ql[64 * h..64 * h + 32], &ql[64 * h + 32..64 * h + 64]);
        let hb = &qh[32 * h..32 * h + 32];
        for l in 0..32 {
            q[128 * h + l] = (l0[l] & 0x0F) | (hb[l] & 3) << 4;
            q[128 * h + 32 + l] = (l1[l] & 0x0F) | (hb[l] >> 2 & 3) << 4;
            q[128 * h + 64 + l] = (l0[l] >> 4) | (hb[l] >> 4 & 3) << 4;
            q[128 * h + 96 + l] = (l1[l] >> 4) | (hb[l] >> 6 & 3) << 4;
        }
    }
    for s in 0..8 {
        let qs = &q[32 * s..32 * s + 32];
        let sub = &mut dst[q6k::SUB * s..q6k::SUB * (s + 1)];
        pack_nibbles(qs, o, sub);
        // High bits: vector `h` holds, for weight vector `4h + jj`, bits `2jj, 2jj + 1`.
        for h in 0..2 {
            for t in 0..4 {
                let mut byte = 0u8;
                for jj in 0..4 {
                    byte |= (qs[16 * h + 4 * jj + t] >> 4 & 3) << (2 * jj);
                }
                sub[256 + 64 * h + 4 * o + t] = byte;
            }
        }
        dst[q6k::SC + 32 * s + o] = sc[2 * s] as u8;
        dst[q6k::SC + 32 * s + 16 + o] = sc[2 * s + 1] as u8;
    }
    dst[q6k::D + 2 * o..q6k::D + 2 * o + 2].copy_from_slice(&src[208..210]);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn rows(fmt: Fmt, recs: &[u8], a: &[ActRow<'_>], out: &mut [[f32; PANEL]]) {
    // The 32-block formats unpack a record once for eight rows where there are eight (a
    // batch of decode rows); the super-block ones keep four (their accumulators would spill).
    let (a, out) = if fmt.superblock() {
        (a, out)
    } else {
        let (a8, a_rest) = a.as_chunks::<8>();
        let (o8, o_rest) = out.as_chunks_mut::<8>();
        for (a, o) in a8.iter().zip(o8) {
            store(o, dispatch::<8>(fmt, recs, a));
        }
        (a_rest, o_rest)
    };
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
        Fmt::Q4K => q4k_loop::<R>(recs, a),
        Fmt::Q6K => q6k_loop::<R>(recs, a),
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

/// Prefetches `len` bytes `PREFETCH_AHEAD` past `at` (see [`panel_loop`]).
#[inline(always)]
fn prefetch_ahead(at: &[u8], len: usize) {
    let ahead = at.as_ptr().wrapping_add(PREFETCH_AHEAD);
    for line in 0..len.div_ceil(64) {
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast()) };
    }
}

/// 16 bytes of `rec` at `at`, widened to 16 i32 (signed or not).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_i8x16<const SIGNED: bool>(rec: &[u8], at: usize) -> __m512i {
    let b: &[u8; 16] = rec[at..at + 16].try_into().unwrap_or(&[0; 16]);
    // SAFETY: `b` is 16 readable bytes; loadu has no alignment need.
    let v = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
    if SIGNED { _mm512_cvtepi8_epi32(v) } else { _mm512_cvtepu8_epi32(v) }
}

/// Q4_K: per sub-block an integer dot of 16 rows (`vpdpbusd`), times the rows' 6-bit scales
/// (`vpmulld`), summed over the superblock; the mins against the activations' per-32 sums with
/// `vpdpwssd`. Then, as ggml: `acc += d · d_a · Σ sc·dot − dmin · d_a · Σ min·bsum`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q4k_loop<const R: usize>(recs: &[u8], a: &[ActRow<'_>; R]) -> [__m512; R] {
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, rec) in recs.chunks_exact(q4k::RECORD).enumerate() {
        let mut sumi = [_mm512_setzero_si512(); R];
        for s in 0..8 {
            let sub = &rec[256 * s..256 * (s + 1)];
            prefetch_ahead(sub, 256);
            let w = nibbles(sub);
            let sc = load_i8x16::<false>(rec, q4k::SC + 16 * s);
            for (sumi, a) in sumi.iter_mut().zip(a) {
                let (blocks, _) = a.qs.as_chunks::<32>();
                let q = &blocks[8 * b + s];
                let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for j in (0..8).step_by(2) {
                    s0 = _mm512_dpbusd_epi32(s0, w[j], _mm512_set1_epi32(dword(q, j)));
                    s1 = _mm512_dpbusd_epi32(s1, w[j + 1], _mm512_set1_epi32(dword(q, j + 1)));
                }
                *sumi = _mm512_add_epi32(*sumi, _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        let d = load_f16x16(rec, q4k::D);
        let dmin = load_f16x16(rec, q4k::D + 32);
        let mins: [__m512i; 4] = core::array::from_fn(|k| load512(rec, q4k::MINS + 64 * k));
        for ((acc, sumi), a) in acc.iter_mut().zip(sumi).zip(a) {
            let bs = &a.bsums[16 * b..16 * b + 16];
            let pair = |g: usize| i32::from(bs[2 * g]) + i32::from(bs[2 * g + 1]);
            let mut m = _mm512_setzero_si512();
            for (k, &mv) in mins.iter().enumerate() {
                let p = (pair(2 * k) as u32 & 0xFFFF) | (pair(2 * k + 1) as u32) << 16;
                m = _mm512_dpwssd_epi32(m, mv, _mm512_set1_epi32(p as i32));
            }
            let da = _mm512_set1_ps(a.d[b]);
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, da), *acc);
            *acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, da), *acc);
        }
    }
    acc
}

/// The 8 weight vectors (unsigned 6-bit) of a Q6_K sub-record: nibbles plus 2 high bits.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn six_bits(sub: &[u8]) -> [__m512i; 8] {
    let mut w = nibbles(sub);
    let m = _mm512_set1_epi8(0x30);
    let h = [load512(sub, 256), load512(sub, 256 + 64)];
    for (j, x) in w.iter_mut().enumerate() {
        let hv = h[j / 4];
        // Bits `2 (j % 4) ..` of each byte moved to bits 4..6; 16-bit shifts are safe because
        // the mask drops whatever crossed from the neighbouring byte.
        let top = match j % 4 {
            0 => _mm512_slli_epi16::<4>(hv),
            1 => _mm512_slli_epi16::<2>(hv),
            2 => hv,
            _ => _mm512_srli_epi16::<2>(hv),
        };
        *x = _mm512_or_si512(*x, _mm512_and_si512(top, m));
    }
    w
}

/// Q6_K: per sub-record two 16-weight integer dots (`vpdpbusd` over unsigned `q`, corrected by
/// `32 · Σ a` from the activation sums), times the rows' signed scales, summed over the
/// superblock; `acc += d · d_a · Σ`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn q6k_loop<const R: usize>(recs: &[u8], a: &[ActRow<'_>; R]) -> [__m512; R] {
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, rec) in recs.chunks_exact(q6k::RECORD).enumerate() {
        let mut sumi = [_mm512_setzero_si512(); R];
        for s in 0..8 {
            let sub = &rec[q6k::SUB * s..q6k::SUB * (s + 1)];
            prefetch_ahead(sub, q6k::SUB);
            let w = six_bits(sub);
            let sc_lo = load_i8x16::<true>(rec, q6k::SC + 32 * s);
            let sc_hi = load_i8x16::<true>(rec, q6k::SC + 32 * s + 16);
            for (sumi, a) in sumi.iter_mut().zip(a) {
                let (blocks, _) = a.qs.as_chunks::<32>();
                let q = &blocks[8 * b + s];
                let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for j in 0..4 {
                    lo = _mm512_dpbusd_epi32(lo, w[j], _mm512_set1_epi32(dword(q, j)));
                    hi = _mm512_dpbusd_epi32(hi, w[j + 4], _mm512_set1_epi32(dword(q, j + 4)));
                }
                let bs = &a.bsums[16 * b + 2 * s..16 * b + 2 * s + 2];
                lo = _mm512_sub_epi32(lo, _mm512_set1_epi32(32 * i32::from(bs[0])));
                hi = _mm512_sub_epi32(hi, _mm512_set1_epi32(32 * i32::from(bs[1])));
                let t =
                    _mm512_add_epi32(_mm512_mullo_epi32(lo, sc_lo), _mm512_mullo_epi32(hi, sc_hi));
                *sumi = _mm512_add_epi32(*sumi, t);
            }
        }
        let d = load_f16x16(rec, q6k::D);
        for ((acc, sumi), a) in acc.iter_mut().zip(sumi).zip(a) {
            let scale = _mm512_mul_ps(d, _mm512_set1_ps(a.d[b]));
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), scale, *acc);
        }
    }
    acc
}
