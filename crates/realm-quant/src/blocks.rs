//! `#[repr(C)]` block structs, one per GGML block format.
//!
//! Field order and sizes follow the `block_*` typedefs in llama.cpp
//! `ggml/src/ggml-common.h` (commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`); the
//! compile-time assertions below pin each size to ggml's `static_assert`.
//!
//! One deliberate difference: multi-byte scalars are stored as little-endian byte arrays
//! ([`LeF16`], [`LeF32`], [`LeI16`], [`LeU16`]) instead of native `uint16_t`/`float`. That
//! makes every block alignment 1, so a `&[u8]` of whole blocks — at any address, as GGUF
//! tensor data in a file buffer often is — can be viewed as `&[Block]` with
//! `bytemuck::try_cast_slice` without copying and without an alignment hazard, and the
//! byte order is right on big-endian hosts too. The `align_of == 1` assertions keep it so.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::types::QK_K;

/// An IEEE binary16 stored as 2 little-endian bytes (`ggml_half` on disk).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LeF16(pub [u8; 2]);

impl LeF16 {
    /// The value widened to `f32` (exact).
    #[inline]
    pub fn to_f32(self) -> f32 {
        f16::from_bits(u16::from_le_bytes(self.0)).to_f32()
    }

    /// `v` rounded to the nearest binary16, ties to even (`GGML_FP32_TO_FP16`).
    #[inline]
    pub fn from_f32(v: f32) -> Self {
        Self(f16::from_f32(v).to_bits().to_le_bytes())
    }

    /// The raw bit pattern.
    #[inline]
    pub fn to_bits(self) -> u16 {
        u16::from_le_bytes(self.0)
    }
}

impl core::fmt::Debug for LeF16 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.to_f32())
    }
}

/// An IEEE binary32 stored as 4 little-endian bytes.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct LeF32(pub [u8; 4]);

impl LeF32 {
    /// The value.
    #[inline]
    pub fn get(self) -> f32 {
        f32::from_le_bytes(self.0)
    }

    /// Stores `v` bit for bit.
    #[inline]
    pub fn new(v: f32) -> Self {
        Self(v.to_le_bytes())
    }
}

impl core::fmt::Debug for LeF32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// An `i16` stored as 2 little-endian bytes.
#[repr(transparent)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct LeI16(pub [u8; 2]);

impl LeI16 {
    /// The value.
    #[inline]
    pub fn get(self) -> i16 {
        i16::from_le_bytes(self.0)
    }

    /// Stores `v`.
    #[inline]
    pub fn new(v: i16) -> Self {
        Self(v.to_le_bytes())
    }
}

/// A `u16` stored as 2 little-endian bytes.
#[repr(transparent)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct LeU16(pub [u8; 2]);

impl LeU16 {
    /// The value.
    #[inline]
    pub fn get(self) -> u16 {
        u16::from_le_bytes(self.0)
    }

    /// Stores `v`.
    #[inline]
    pub fn new(v: u16) -> Self {
        Self(v.to_le_bytes())
    }
}

/// Elements per Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / Q8_1 / IQ4_NL block.
pub const QK32: usize = 32;

/// Q4_0: 32 weights `d * (q - 8)`, `q` in 0..16. 4.5 bits per weight.
///
/// `qs[j]` holds element `j` in its low nibble and element `j + 16` in its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: LeF16,
    /// Nibbles.
    pub qs: [u8; QK32 / 2],
}

/// Q4_1: 32 weights `d * q + m`, `q` in 0..16. 5 bits per weight.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: LeF16,
    /// Minimum (offset).
    pub m: LeF16,
    /// Nibbles, laid out as in [`BlockQ4_0`].
    pub qs: [u8; QK32 / 2],
}

/// Q5_0: 32 weights `d * (q - 16)`, `q` in 0..32. 5.5 bits per weight.
///
/// The low 4 bits are laid out as in [`BlockQ4_0`]; bit `j` of the little-endian `u32`
/// `qh` is bit 4 of element `j`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: LeF16,
    /// Fifth bits, one per element.
    pub qh: [u8; 4],
    /// Low nibbles.
    pub qs: [u8; QK32 / 2],
}

/// Q5_1: 32 weights `d * q + m`, `q` in 0..32. 6 bits per weight.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: LeF16,
    /// Minimum (offset).
    pub m: LeF16,
    /// Fifth bits, laid out as in [`BlockQ5_0`].
    pub qh: [u8; 4],
    /// Low nibbles.
    pub qs: [u8; QK32 / 2],
}

/// Q8_0: 32 weights `d * q`, `q` an `i8`. 8.5 bits per weight.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: LeF16,
    /// Quants.
    pub qs: [i8; QK32],
}

/// Q8_1: 32 weights `d * q` plus `s = d * sum(q)` for dot products. 9 bits per weight.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: LeF16,
    /// `d * sum(qs)`.
    pub s: LeF16,
    /// Quants.
    pub qs: [i8; QK32],
}

/// Q2_K: 256 weights in 16 groups of 16, `d * sc * q - dmin * m`, `q` in 0..4.
/// 2.625 bits per weight.
///
/// `scales[g]` holds the 4-bit scale `sc` (low nibble) and min `m` (high nibble) of group
/// `g`. Each 128-weight half uses 32 bytes of `qs`; element `32 * s + l` of the half is
/// bits `2s..2s+2` of byte `l`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ2K {
    /// Group scales and mins, 4 bits each.
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale of the group scales.
    pub d: LeF16,
    /// Super-block scale of the group mins.
    pub dmin: LeF16,
}

/// Q3_K: 256 weights in 16 groups of 16, `d * (sc - 32) * (q - 4)`, `q` in 0..8.
/// 3.4375 bits per weight.
///
/// The low 2 bits of `q` are packed as in [`BlockQ2K`]; bit 2 of element `e` is bit `e / 32`
/// of `hmask[e % 32]`. The 6-bit group scales are packed into 12 bytes: low nibbles in bytes
/// 0..8 (groups 0..8 in the low halves, 8..16 in the high halves), top 2 bits in bytes 8..12.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ3K {
    /// High bits of the quants.
    pub hmask: [u8; QK_K / 8],
    /// Low 2 bits of the quants.
    pub qs: [u8; QK_K / 4],
    /// Packed 6-bit group scales.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: LeF16,
}

impl BlockQ3K {
    /// The 16 signed group scales (the packed 6-bit values minus 32).
    #[inline]
    pub fn group_scales(&self) -> [i8; QK_K / 16] {
        let s = &self.scales;
        let mut out = [0i8; QK_K / 16];
        for (k, o) in out.iter_mut().enumerate() {
            let lo = if k < 8 { s[k] & 0x0F } else { s[k - 8] >> 4 };
            let hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
            *o = (lo | (hi << 4)) as i8 - 32;
        }
        out
    }
}

/// Bytes of packed 6-bit scales and mins in Q4_K and Q5_K (`K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// The 6-bit scale and min of group `j` (0..8) from the packed `scales` of a Q4_K/Q5_K block.
///
/// Follows `get_scale_min_k4` in ggml-quants.c: groups 0..4 keep their 6 bits in the low
/// bits of bytes `j` (scale) and `j + 4` (min); groups 4..8 keep 4 bits in byte `j + 4` and
/// their top 2 bits in the spare top bits of bytes `j - 4` (scale) and `j` (min).
/// `j` is taken modulo 8.
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    let j = j % 8;
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (sc, m)
    }
}

/// Q4_K: 256 weights in 8 groups of 32, `d * sc * q - dmin * m`, `q` in 0..16.
/// 4.5 bits per weight.
///
/// Each 64-weight chunk uses 32 bytes of `qs`: the low nibbles are its first group, the
/// high nibbles its second. The 6-bit `sc`/`m` pairs are packed as in `get_scale_min_k4`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale of the group scales.
    pub d: LeF16,
    /// Super-block scale of the group mins.
    pub dmin: LeF16,
    /// Packed 6-bit group scales and mins.
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit quants.
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: as [`BlockQ4K`] with a fifth bit, `q` in 0..32. 5.5 bits per weight.
///
/// Bit 4 of element `32 * g + l` is bit `g` of `qh[l]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale of the group scales.
    pub d: LeF16,
    /// Super-block scale of the group mins.
    pub dmin: LeF16,
    /// Packed 6-bit group scales and mins.
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bits.
    pub qh: [u8; QK_K / 8],
    /// Low 4 bits.
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 256 weights in 16 groups of 16, `d * sc * (q - 32)`, `q` in 0..64, `sc` an `i8`.
/// 6.5625 bits per weight.
///
/// Per 128-weight half: 64 bytes of `ql` (element `m` in the low nibble of byte `m % 64`
/// for `m < 64`, else the high nibble) and 32 bytes of `qh` (element `32 * s + l` takes bits
/// `2s..2s+2` of byte `l` as its top 2 bits).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits of the quants.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of the quants.
    pub qh: [u8; QK_K / 4],
    /// Group scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: LeF16,
}

/// Q8_K: 256 weights `d * q` with an f32 scale and per-16 sums (activations for k-quant dot
/// products). 9.125 bits per weight.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale.
    pub d: LeF32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// `sum(qs[16 * g..16 * g + 16])` per group `g`.
    pub bsums: [LeI16; QK_K / 16],
}

/// IQ4_NL: 32 weights `d * KVALUES_IQ4NL[q]`, `q` in 0..16. 4.5 bits per weight.
///
/// Nibbles laid out as in [`BlockQ4_0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockIq4Nl {
    /// Scale.
    pub d: LeF16,
    /// Table indices.
    pub qs: [u8; QK32 / 2],
}

/// IQ4_XS: 256 weights in 8 groups of 32, `d * (ls - 32) * KVALUES_IQ4NL[q]`.
/// 4.25 bits per weight.
///
/// The 6-bit group scale `ls` of group `g` is nibble `g % 2` of `scales_l[g / 2]` plus
/// bits `2g..2g+2` of `scales_h` on top. Each group's 16 bytes of `qs` are laid out as in
/// [`BlockQ4_0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockIq4Xs {
    /// Super-block scale.
    pub d: LeF16,
    /// High 2 bits of the 8 group scales.
    pub scales_h: LeU16,
    /// Low 4 bits of the 8 group scales.
    pub scales_l: [u8; QK_K / 64],
    /// Table indices.
    pub qs: [u8; QK_K / 2],
}

/// The IQ4_NL / IQ4_XS non-linear 4-bit codebook (`kvalues_iq4nl` in ggml-common.h).
pub const KVALUES_IQ4NL: [i8; 16] =
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

use core::mem::{align_of, size_of};

// Sizes from the static_asserts in ggml-common.h.
const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ8_1>() == 36);
const _: () = assert!(size_of::<BlockQ2K>() == 84);
const _: () = assert!(size_of::<BlockQ3K>() == 110);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ6K>() == 210);
const _: () = assert!(size_of::<BlockQ8K>() == 292);
const _: () = assert!(size_of::<BlockIq4Nl>() == 18);
const _: () = assert!(size_of::<BlockIq4Xs>() == 136);

// Alignment 1 is what lets any byte slice be viewed as blocks (see the module docs).
const _: () = assert!(align_of::<BlockQ4_0>() == 1);
const _: () = assert!(align_of::<BlockQ4_1>() == 1);
const _: () = assert!(align_of::<BlockQ5_0>() == 1);
const _: () = assert!(align_of::<BlockQ5_1>() == 1);
const _: () = assert!(align_of::<BlockQ8_0>() == 1);
const _: () = assert!(align_of::<BlockQ8_1>() == 1);
const _: () = assert!(align_of::<BlockQ2K>() == 1);
const _: () = assert!(align_of::<BlockQ3K>() == 1);
const _: () = assert!(align_of::<BlockQ4K>() == 1);
const _: () = assert!(align_of::<BlockQ5K>() == 1);
const _: () = assert!(align_of::<BlockQ6K>() == 1);
const _: () = assert!(align_of::<BlockQ8K>() == 1);
const _: () = assert!(align_of::<BlockIq4Nl>() == 1);
const _: () = assert!(align_of::<BlockIq4Xs>() == 1);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::types::GgmlType;

    #[test]
    fn struct_sizes_match_the_type_table() {
        let pairs = [
            (GgmlType::Q4_0, size_of::<BlockQ4_0>()),
            (GgmlType::Q4_1, size_of::<BlockQ4_1>()),
            (GgmlType::Q5_0, size_of::<BlockQ5_0>()),
            (GgmlType::Q5_1, size_of::<BlockQ5_1>()),
            (GgmlType::Q8_0, size_of::<BlockQ8_0>()),
            (GgmlType::Q8_1, size_of::<BlockQ8_1>()),
            (GgmlType::Q2_K, size_of::<BlockQ2K>()),
            (GgmlType::Q3_K, size_of::<BlockQ3K>()),
            (GgmlType::Q4_K, size_of::<BlockQ4K>()),
            (GgmlType::Q5_K, size_of::<BlockQ5K>()),
            (GgmlType::Q6_K, size_of::<BlockQ6K>()),
            (GgmlType::Q8_K, size_of::<BlockQ8K>()),
            (GgmlType::IQ4_NL, size_of::<BlockIq4Nl>()),
            (GgmlType::IQ4_XS, size_of::<BlockIq4Xs>()),
        ];
        for (ty, size) in pairs {
            assert_eq!(ty.type_size(), size, "{ty}");
        }
    }

    #[test]
    fn field_offsets_follow_ggml() {
        use core::mem::offset_of;
        assert_eq!(offset_of!(BlockQ2K, d), 80);
        assert_eq!(offset_of!(BlockQ3K, scales), 96);
        assert_eq!(offset_of!(BlockQ3K, d), 108);
        assert_eq!(offset_of!(BlockQ5K, qh), 16);
        assert_eq!(offset_of!(BlockQ6K, scales), 192);
        assert_eq!(offset_of!(BlockQ6K, d), 208);
        assert_eq!(offset_of!(BlockQ8K, bsums), 260);
        assert_eq!(offset_of!(BlockIq4Xs, qs), 8);
    }

    #[test]
    fn scalars_are_little_endian() {
        assert_eq!(LeF16([0x00, 0x3c]).to_f32(), 1.0);
        assert_eq!(LeF16::from_f32(-2.0).0, [0x00, 0xc0]);
        assert_eq!(LeF32::new(1.0).0, [0x00, 0x00, 0x80, 0x3f]);
        assert_eq!(LeI16([0xfe, 0xff]).get(), -2);
        assert_eq!(LeU16([0x34, 0x12]).get(), 0x1234);
        assert_eq!(LeF16::from_f32(65520.0).to_f32(), f32::INFINITY);
    }

    #[test]
    fn unaligned_bytes_view_as_blocks() {
        let bytes = [0u8; 1 + 2 * 18];
        let blocks: &[BlockQ4_0] = bytemuck::try_cast_slice(&bytes[1..]).unwrap();
        assert_eq!(blocks.len(), 2);
    }
}
