//! Weights repacked once, at upload, into panels of `P` rows for the x86_64 panel kernels:
//! `P = 16` for AVX-512 VNNI ([`super::vnni`]), `P = 8` for the 256-bit kernels (AVX2's
//! `vpmaddubsw` and AVX-VNNI's `vpdpbusd`, [`super::panel8`]).
//!
//! Why repack: the row-at-a-time kernels ([`super::avx2`]) reduce each block to one integer
//! per (weight row, activation row) and then pay a horizontal sum, an int→float conversion
//! and a scale multiply per 32 weights. In a panel one vector instruction multiplies 4
//! consecutive weights of `P` rows at once (one i32 lane per weight row) by the same 4
//! activation quants (broadcast), so the conversion and scaling are done for `P` outputs at a
//! time, with no horizontal sums at all. This is the idea behind llama.cpp's repacked CPU
//! weights (`ggml/src/ggml-cpu/repack.cpp`, commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`);
//! the layout below is our own.
//!
//! Layout, per 32-block `b` of `P` rows (a "record"), little-endian; a "vector" is `4P` bytes:
//! - quants: vector `j` holds in lane `o` (bytes `4o .. 4o + 4`) the four weights
//!   `4j .. 4j + 4` of row `o`, as bytes. 4-bit formats store the GGUF nibble bytes (vector
//!   `j < 4` holds bytes `4j .. 4j + 4` of `qs`, whose low nibbles are weights `4j..` and high
//!   nibbles weights `16 + 4j..`), so the kernel unpacks 4 vectors into 8. Q8_0 stores
//!   `q + 128` (unsigned, for `vpdpbusd`) in 16-row panels and `q` itself in 8-row panels
//!   (whose kernels multiply `|q|` by the activation with `q`'s sign).
//! - Q5_0/Q5_1: 8 masks of `4P` bits, bit `4o + t` of mask `j` = the fifth bit of weight
//!   `4j + t` of row `o`.
//! - `P` f16 scales `d`, then (Q4_1, Q5_1) `P` f16 mins `m`.
//!
//! Weights stored with an offset (`q + off`, unsigned) are corrected with the exact block sum
//! of the activation quants: `Σ (q + off) · y - off · Σ y`. The integer sums are the same as
//! the portable kernels'; only the f32 rounding order differs.
//!
//! Rows past the end of the last panel are zero with a zero scale.
//!
//! Q4_K, Q5_K and Q6_K records are whole superblocks (256 weights of `P` rows; offsets in
//! [`Layout`]): 8 sub-records of quants in the 4-bit layout above (Q5_K adds 8 fifth-bit masks
//! as Q5_0's, Q6_K two vectors of high bits per sub-record), the rows' sub-block scales as
//! bytes, Q4_K's and Q5_K's mins as i16 pairs,
//! and the f16 superblock scales. Activations are Q8_K, and the arithmetic is ggml's
//! (`ggml_vec_dot_q4_K_q8_K`, `ggml_vec_dot_q6_K_q8_K`): integer dots per sub-block times the
//! integer scales, summed over the superblock, then one f32 scaling — so the results equal the
//! row kernels' up to f32 rounding order. The records are the size of the GGUF blocks (Q6_K) or
//! 8 % (Q4_K) and 6 % (Q5_K) larger.

use realm_core::GgmlType;

use super::q8::ActKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fmt {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    /// Q4_K in superblock records (see the module docs).
    Q4K,
    /// Q5_K: Q4_K's records with a fifth-bit mask vector set after each sub-record's nibbles.
    Q5K,
    /// Q6_K in superblock records.
    Q6K,
}

impl Fmt {
    pub(crate) fn of(ty: GgmlType) -> Option<Self> {
        Some(match ty {
            GgmlType::Q4_0 => Self::Q4_0,
            GgmlType::Q4_1 => Self::Q4_1,
            GgmlType::Q5_0 => Self::Q5_0,
            GgmlType::Q5_1 => Self::Q5_1,
            GgmlType::Q8_0 => Self::Q8_0,
            GgmlType::Q4_K => Self::Q4K,
            GgmlType::Q5_K => Self::Q5K,
            GgmlType::Q6_K => Self::Q6K,
            _ => return None,
        })
    }

    /// Weights per GGUF block (and per record).
    pub(crate) const fn block_weights(self) -> usize {
        if self.superblock() { 256 } else { 32 }
    }

    pub(crate) const fn superblock(self) -> bool {
        matches!(self, Self::Q4K | Self::Q5K | Self::Q6K)
    }

    /// Bytes of one GGUF block.
    const fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// `w = d · q + m` (a min per block, Q8_1 activations) rather than `w = d · (q - off)`.
    pub(crate) const fn affine(self) -> bool {
        matches!(self, Self::Q4_1 | Self::Q5_1)
    }

    /// The activation format the kernels take.
    pub(crate) const fn act_kind(self) -> ActKind {
        if self.superblock() {
            ActKind::Q8K
        } else if self.affine() {
            ActKind::Q8_1
        } else {
            ActKind::Q8_0
        }
    }
}

/// Where things are in a record of `p` rows of format `fmt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) fmt: Fmt,
    pub(crate) p: usize,
}

impl Layout {
    /// Bytes of one vector (4 weights of each of the `p` rows).
    pub(crate) const fn vec(self) -> usize {
        4 * self.p
    }

    /// What was added to the signed quants to store them unsigned (Q8_0 in 8-row panels is
    /// stored signed).
    pub(crate) const fn offset(self) -> i32 {
        match self.fmt {
            Fmt::Q4_0 => 8,
            Fmt::Q5_0 => 16,
            Fmt::Q8_0 if self.p == 16 => 128,
            _ => 0,
        }
    }

    pub(crate) const fn quant_bytes(self) -> usize {
        if matches!(self.fmt, Fmt::Q8_0) { 8 * self.vec() } else { 4 * self.vec() }
    }

    /// Byte offset of fifth-bit mask `j` (Q5_0, Q5_1), each `p / 2` bytes.
    pub(crate) const fn mask_at(self, j: usize) -> usize {
        self.quant_bytes() + j * self.p / 2
    }

    const fn mask_bytes(self) -> usize {
        if matches!(self.fmt, Fmt::Q5_0 | Fmt::Q5_1) { 4 * self.p } else { 0 }
    }

    /// Byte offset of the f16 scales in a 32-block record (the mins follow, `2p` bytes on).
    pub(crate) const fn scales_at(self) -> usize {
        self.quant_bytes() + self.mask_bytes()
    }

    /// Q4_K, Q5_K: bytes of one sub-record: 4 vectors of nibbles, and for Q5_K 8 fifth-bit
    /// masks as Q5_0's (at [`Self::mask_at`] from the sub-record's start).
    pub(crate) const fn k4_sub(self) -> usize {
        if matches!(self.fmt, Fmt::Q5K) { 4 * self.vec() + 4 * self.p } else { 4 * self.vec() }
    }

    /// Q4_K: 8 × `p` unsigned 6-bit scales: sub-block `s`, row `o` at `k4_sc() + p s + o`.
    pub(crate) const fn k4_sc(self) -> usize {
        8 * self.k4_sub()
    }

    /// Q4_K: 4 vectors; vector `k` holds in lane `o` the mins of sub-blocks `2k`, `2k + 1` of
    /// row `o` as two i16 (for `vpmaddwd` against pairs of activation block sums).
    pub(crate) const fn k4_mins(self) -> usize {
        self.k4_sc() + 8 * self.p
    }

    /// Q4_K: `p` f16 `d`, then `p` f16 `dmin`.
    pub(crate) const fn k4_d(self) -> usize {
        self.k4_mins() + 4 * self.vec()
    }

    /// Q6_K: bytes of one sub-record: 4 nibble vectors (as Q4_0's) then 2 vectors of high bits.
    pub(crate) const fn k6_sub(self) -> usize {
        6 * self.vec()
    }

    /// Q6_K: 8 × 2p signed scales: sub-record `s`, row `o`: `k6_sc() + 2p s + o` (weights
    /// 0..16 of the sub-record) and `k6_sc() + 2p s + p + o` (weights 16..32).
    pub(crate) const fn k6_sc(self) -> usize {
        8 * self.k6_sub()
    }

    /// Q6_K: `p` f16 `d`.
    pub(crate) const fn k6_d(self) -> usize {
        self.k6_sc() + 16 * self.p
    }

    /// Bytes of one record (a block of `p` rows).
    pub(crate) const fn record(self) -> usize {
        match self.fmt {
            Fmt::Q4K | Fmt::Q5K => self.k4_d() + 4 * self.p,
            Fmt::Q6K => self.k6_d() + 2 * self.p,
            f => self.scales_at() + if f.affine() { 4 * self.p } else { 2 * self.p },
        }
    }
}

/// A weight matrix in panels of `layout.p` rows (see the module docs).
pub(crate) struct Panels {
    pub(crate) layout: Layout,
    /// GGUF blocks (records) per row.
    pub(crate) nb: usize,
    pub(crate) data: Vec<u8>,
}

impl Panels {
    /// Repacks `rows × cols` weights of `ty` (`data`: the GGUF rows) into panels of `p` rows.
    /// `None` for other formats, fewer than `p` rows, a size mismatch or a failed allocation.
    pub(crate) fn new(
        p: usize,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Option<Self> {
        let fmt = Fmt::of(ty)?;
        if rows < p || !cols.is_multiple_of(fmt.block_weights()) {
            return None;
        }
        let layout = Layout { fmt, p };
        let nb = cols / fmt.block_weights();
        let (bb, rec) = (fmt.block_bytes(), layout.record());
        let row_bytes = nb * bb;
        if data.len() != rows.checked_mul(row_bytes)? {
            return None;
        }
        let panel_bytes = nb * rec;
        let total = rows.div_ceil(p).checked_mul(panel_bytes)?;
        let mut out = Vec::new();
        out.try_reserve_exact(total).ok()?;
        out.resize(total, 0u8);
        // A large matrix is read in groups of panels whose source pages are handed back to the
        // OS once packed (see `page_out`): otherwise a memory-mapped 170 MiB embedding would be
        // resident twice, source and panels, until the loader releases the source.
        let group = (PAGE_OUT_BYTES / (p * row_bytes).max(1)).max(1);
        let large = data.len() >= PAGE_OUT_BYTES;
        for (pi, panel) in out.chunks_exact_mut(panel_bytes).enumerate() {
            if large && pi % group == 0 && pi > 0 {
                page_out(&data[(pi - group) * p * row_bytes..pi * p * row_bytes]);
            }
            for (b, dst) in panel.chunks_exact_mut(rec).enumerate() {
                for o in 0..p.min(rows - pi * p) {
                    let at = (pi * p + o) * row_bytes + b * bb;
                    let src = &data[at..at + bb];
                    match fmt {
                        Fmt::Q4K | Fmt::Q5K => pack_k4(layout, src, o, dst),
                        Fmt::Q6K => pack_q6k(layout, src, o, dst),
                        _ => pack_block(layout, src, o, dst),
                    }
                }
            }
        }
        Some(Self { layout, nb, data: out })
    }

    /// The records of panel `panel`, if it exists.
    pub(crate) fn panel(&self, panel: usize) -> Option<&[u8]> {
        let len = self.nb * self.layout.record();
        self.data.get(panel * len..(panel + 1) * len)
    }

    /// Whether every activation row covers the blocks the kernels index.
    pub(crate) fn rows_fit(&self, a: &[super::q8::ActRow<'_>]) -> bool {
        let (fmt, nb) = (self.layout.fmt, self.nb);
        a.iter().all(|r| {
            r.qs.len() >= fmt.block_weights() * nb
                && r.d.len() >= nb
                && (self.layout.offset() == 0 || r.isum.len() >= nb)
                && (!fmt.affine() || r.s.len() >= nb)
                && (!fmt.superblock() || r.bsums.len() >= 16 * nb)
        })
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
fn pack_block(l: Layout, src: &[u8], o: usize, dst: &mut [u8]) {
    let (v, sc) = (l.vec(), l.scales_at());
    dst[sc + 2 * o..sc + 2 * o + 2].copy_from_slice(&src[0..2]);
    if l.fmt.affine() {
        let m = sc + 2 * l.p + 2 * o;
        dst[m..m + 2].copy_from_slice(&src[2..4]);
    }
    if l.fmt == Fmt::Q8_0 {
        let flip = if l.offset() == 128 { 0x80 } else { 0 };
        for j in 0..8 {
            for t in 0..4 {
                dst[v * j + 4 * o + t] = src[2 + 4 * j + t] ^ flip;
            }
        }
        return;
    }
    let qs = &src[src.len() - 16..];
    for j in 0..4 {
        dst[v * j + 4 * o..v * j + 4 * o + 4].copy_from_slice(&qs[4 * j..4 * j + 4]);
    }
    let h = match l.fmt {
        Fmt::Q5_0 => 2,
        Fmt::Q5_1 => 4,
        _ => return,
    };
    let qh = u32::from_le_bytes([src[h], src[h + 1], src[h + 2], src[h + 3]]);
    for e in 0..32 {
        if qh >> e & 1 == 1 {
            let (j, t) = (e / 4, e % 4);
            let bit = 4 * o + t;
            dst[l.mask_at(j) + bit / 8] |= 1 << (bit % 8);
        }
    }
}

/// Writes the 32 weights `q` (each below 16) of one sub-block of row `o` as 4 nibble vectors
/// (the layout of Q4_0's quants) at the start of `dst`.
fn pack_nibbles(l: Layout, q: &[u8], o: usize, dst: &mut [u8]) {
    let v = l.vec();
    for j in 0..4 {
        for t in 0..4 {
            dst[v * j + 4 * o + t] = (q[4 * j + t] & 0x0F) | (q[16 + 4 * j + t] & 0x0F) << 4;
        }
    }
}

/// Writes Q4_K block `src` (144 bytes) or Q5_K block (176 bytes) of panel row `o` into
/// superblock record `dst`.
fn pack_k4(l: Layout, src: &[u8], o: usize, dst: &mut [u8]) {
    let (scales, qh, qs) = if let Some(b) = src.first_chunk::<176>()
        && matches!(l.fmt, Fmt::Q5K)
    {
        let (_, _, scales, qh, qs) = super::portable::q5k_parts(b);
        (scales, Some(qh), qs)
    } else if let Some(b) = src.first_chunk::<144>() {
        let (_, _, scales, qs) = super::portable::q4k_parts(b);
        (scales, None, qs)
    } else {
        return;
    };
    let (sc, mins) = super::portable::k4_scale_mins(scales);
    let (v, sub, p) = (l.vec(), l.k4_sub(), l.p);
    for s in 0..8 {
        // Sub-block `s`: the low (even `s`) or high (odd `s`) nibbles of 32 bytes of `qs`.
        let bytes = &qs[32 * (s / 2)..32 * (s / 2) + 32];
        let q: [u8; 32] = core::array::from_fn(|i| bytes[i] >> (4 * (s % 2)) & 0x0F);
        let rec = &mut dst[sub * s..sub * (s + 1)];
        pack_nibbles(l, &q, o, rec);
        // Q5_K: bit `s` of `qh[i]` is the fifth bit of weight `i` of sub-block `s`; weight
        // `4j + t` sits in unpacked vector `j` (`pack_nibbles`), as a Q5_0 block's.
        if let Some(qh) = qh {
            for (i, h) in qh.iter().enumerate() {
                if h >> s & 1 == 1 {
                    let bit = 4 * o + i % 4;
                    rec[l.mask_at(i / 4) + bit / 8] |= 1 << (bit % 8);
                }
            }
        }
        dst[l.k4_sc() + p * s + o] = sc[s];
        let at = l.k4_mins() + v * (s / 2) + 4 * o + 2 * (s % 2);
        dst[at..at + 2].copy_from_slice(&i16::from(mins[s]).to_le_bytes());
    }
    let d = l.k4_d();
    dst[d + 2 * o..d + 2 * o + 2].copy_from_slice(&src[0..2]);
    dst[d + 2 * p + 2 * o..d + 2 * p + 2 * o + 2].copy_from_slice(&src[2..4]);
}

/// Writes Q6_K block `src` (210 bytes) of panel row `o` into superblock record `dst`.
fn pack_q6k(l: Layout, src: &[u8], o: usize, dst: &mut [u8]) {
    let Some(b) = src.first_chunk::<210>() else { return };
    let (ql, qh, sc, _) = super::portable::q6k_parts(b);
    // The 256 unsigned 6-bit quants in weight order (ggml's dequantize_row_q6_K order).
    let mut q = [0u8; 256];
    for h in 0..2 {
        let (l0, l1) = (&ql[64 * h..64 * h + 32], &ql[64 * h + 32..64 * h + 64]);
        let hb = &qh[32 * h..32 * h + 32];
        for i in 0..32 {
            q[128 * h + i] = (l0[i] & 0x0F) | (hb[i] & 3) << 4;
            q[128 * h + 32 + i] = (l1[i] & 0x0F) | (hb[i] >> 2 & 3) << 4;
            q[128 * h + 64 + i] = (l0[i] >> 4) | (hb[i] >> 4 & 3) << 4;
            q[128 * h + 96 + i] = (l1[i] >> 4) | (hb[i] >> 6 & 3) << 4;
        }
    }
    let (v, subl, p) = (l.vec(), l.k6_sub(), l.p);
    for s in 0..8 {
        let qs = &q[32 * s..32 * s + 32];
        let sub = &mut dst[subl * s..subl * (s + 1)];
        pack_nibbles(l, qs, o, sub);
        // High bits: vector `h` holds, for weight vector `4h + jj`, bits `2jj, 2jj + 1`.
        for h in 0..2 {
            for t in 0..4 {
                let mut byte = 0u8;
                for jj in 0..4 {
                    byte |= (qs[16 * h + 4 * jj + t] >> 4 & 3) << (2 * jj);
                }
                sub[4 * v + v * h + 4 * o + t] = byte;
            }
        }
        dst[l.k6_sc() + 2 * p * s + o] = sc[2 * s] as u8;
        dst[l.k6_sc() + 2 * p * s + p + o] = sc[2 * s + 1] as u8;
    }
    let d = l.k6_d();
    dst[d + 2 * o..d + 2 * o + 2].copy_from_slice(&src[208..210]);
}
