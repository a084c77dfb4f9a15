//! GGML tensor type ids and their block geometry.
//!
//! The ids are the values of `enum ggml_type` in llama.cpp `ggml/include/ggml.h`, and the
//! names, block sizes and block byte sizes follow the `type_traits` table in
//! `ggml/src/ggml.c` (llama.cpp commit `0c1e57098bba43ac29e6e3b677cdceebdd22334f`).
//! Ids 4, 5 (Q4_2, Q4_3), 31–33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36–38 (IQ4_NL_4_4,
//! IQ4_NL_4_8, IQ4_NL_8_8) were removed upstream and are rejected here.
//!
//! Everything in this module is used on hostile input (a GGUF tensor table): no function
//! panics, and every size computation is overflow-checked.

use core::fmt;

use crate::error::QuantError;

/// Elements in one k-quant super-block (`QK_K` in ggml-common.h).
pub const QK_K: usize = 256;

/// A GGML tensor element type, with its on-disk id as the discriminant.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)] // the upstream spelling (Q4_K, IQ2_XXS) is what users search for
pub enum GgmlType {
    /// 32-bit IEEE float.
    F32 = 0,
    /// 16-bit IEEE float.
    F16 = 1,
    /// 4-bit, one f16 scale per 32.
    Q4_0 = 2,
    /// 4-bit, f16 scale and min per 32.
    Q4_1 = 3,
    /// 5-bit, one f16 scale per 32.
    Q5_0 = 6,
    /// 5-bit, f16 scale and min per 32.
    Q5_1 = 7,
    /// 8-bit, one f16 scale per 32.
    Q8_0 = 8,
    /// 8-bit, f16 scale and f16 `scale * sum(q)` per 32 (activations for dot products).
    Q8_1 = 9,
    /// 2-bit k-quant.
    Q2_K = 10,
    /// 3-bit k-quant.
    Q3_K = 11,
    /// 4-bit k-quant.
    Q4_K = 12,
    /// 5-bit k-quant.
    Q5_K = 13,
    /// 6-bit k-quant.
    Q6_K = 14,
    /// 8-bit k-quant with an f32 scale (activations for dot products).
    Q8_K = 15,
    /// i-quant, 2.0625 bits per weight.
    IQ2_XXS = 16,
    /// i-quant, 2.3125 bits per weight.
    IQ2_XS = 17,
    /// i-quant, 3.0625 bits per weight.
    IQ3_XXS = 18,
    /// i-quant, 1.5625 bits per weight.
    IQ1_S = 19,
    /// 4-bit non-linear, 32 per block.
    IQ4_NL = 20,
    /// i-quant, 3.4375 bits per weight.
    IQ3_S = 21,
    /// i-quant, 2.5625 bits per weight.
    IQ2_S = 22,
    /// 4-bit non-linear with 6-bit sub-block scales.
    IQ4_XS = 23,
    /// 8-bit signed integer.
    I8 = 24,
    /// 16-bit signed integer.
    I16 = 25,
    /// 32-bit signed integer.
    I32 = 26,
    /// 64-bit signed integer.
    I64 = 27,
    /// 64-bit IEEE float.
    F64 = 28,
    /// i-quant, 1.75 bits per weight.
    IQ1_M = 29,
    /// bfloat16.
    BF16 = 30,
    /// Ternary, 1.6875 bits per weight.
    TQ1_0 = 34,
    /// Ternary, 2.0625 bits per weight.
    TQ2_0 = 35,
    /// OCP microscaling FP4 (E2M1 values, E8M0 scale per 32).
    MXFP4 = 39,
    /// NVIDIA FP4 (E2M1 values, UE4M3 scale per 16, 64 per block).
    NVFP4 = 40,
    /// 1-bit sign with an f16 scale per 128.
    Q1_0 = 41,
    /// 2-bit (ternary plus +2) with an f16 scale per 64.
    Q2_0 = 42,
}

/// (name, elements per block, bytes per block), as in ggml.c `type_traits`.
struct Traits {
    name: &'static str,
    block_size: usize,
    type_size: usize,
}

const fn traits(name: &'static str, block_size: usize, type_size: usize) -> Traits {
    Traits { name, block_size, type_size }
}

impl GgmlType {
    /// Every type this crate knows, in id order.
    pub const ALL: [GgmlType; 35] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q8_1,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::Q8_K,
        Self::IQ2_XXS,
        Self::IQ2_XS,
        Self::IQ3_XXS,
        Self::IQ1_S,
        Self::IQ4_NL,
        Self::IQ3_S,
        Self::IQ2_S,
        Self::IQ4_XS,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::F64,
        Self::IQ1_M,
        Self::BF16,
        Self::TQ1_0,
        Self::TQ2_0,
        Self::MXFP4,
        Self::NVFP4,
        Self::Q1_0,
        Self::Q2_0,
    ];

    /// The type with on-disk id `id`, or `None` for an unknown or removed id.
    pub const fn from_u32(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            9 => Self::Q8_1,
            10 => Self::Q2_K,
            11 => Self::Q3_K,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            15 => Self::Q8_K,
            16 => Self::IQ2_XXS,
            17 => Self::IQ2_XS,
            18 => Self::IQ3_XXS,
            19 => Self::IQ1_S,
            20 => Self::IQ4_NL,
            21 => Self::IQ3_S,
            22 => Self::IQ2_S,
            23 => Self::IQ4_XS,
            24 => Self::I8,
            25 => Self::I16,
            26 => Self::I32,
            27 => Self::I64,
            28 => Self::F64,
            29 => Self::IQ1_M,
            30 => Self::BF16,
            34 => Self::TQ1_0,
            35 => Self::TQ2_0,
            39 => Self::MXFP4,
            40 => Self::NVFP4,
            41 => Self::Q1_0,
            42 => Self::Q2_0,
            _ => return None,
        })
    }

    /// The on-disk id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    const fn traits(self) -> Traits {
        // Sizes from ggml-common.h block structs (commit 0c1e570); QK_K = 256.
        match self {
            Self::F32 => traits("f32", 1, 4),
            Self::F16 => traits("f16", 1, 2),
            Self::Q4_0 => traits("q4_0", 32, 18),
            Self::Q4_1 => traits("q4_1", 32, 20),
            Self::Q5_0 => traits("q5_0", 32, 22),
            Self::Q5_1 => traits("q5_1", 32, 24),
            Self::Q8_0 => traits("q8_0", 32, 34),
            Self::Q8_1 => traits("q8_1", 32, 36),
            Self::Q2_K => traits("q2_K", QK_K, 84),
            Self::Q3_K => traits("q3_K", QK_K, 110),
            Self::Q4_K => traits("q4_K", QK_K, 144),
            Self::Q5_K => traits("q5_K", QK_K, 176),
            Self::Q6_K => traits("q6_K", QK_K, 210),
            Self::Q8_K => traits("q8_K", QK_K, 292),
            Self::IQ2_XXS => traits("iq2_xxs", QK_K, 66),
            Self::IQ2_XS => traits("iq2_xs", QK_K, 74),
            Self::IQ3_XXS => traits("iq3_xxs", QK_K, 98),
            Self::IQ1_S => traits("iq1_s", QK_K, 50),
            Self::IQ4_NL => traits("iq4_nl", 32, 18),
            Self::IQ3_S => traits("iq3_s", QK_K, 110),
            Self::IQ2_S => traits("iq2_s", QK_K, 82),
            Self::IQ4_XS => traits("iq4_xs", QK_K, 136),
            Self::I8 => traits("i8", 1, 1),
            Self::I16 => traits("i16", 1, 2),
            Self::I32 => traits("i32", 1, 4),
            Self::I64 => traits("i64", 1, 8),
            Self::F64 => traits("f64", 1, 8),
            Self::IQ1_M => traits("iq1_m", QK_K, 56),
            Self::BF16 => traits("bf16", 1, 2),
            Self::TQ1_0 => traits("tq1_0", QK_K, 54),
            Self::TQ2_0 => traits("tq2_0", QK_K, 66),
            Self::MXFP4 => traits("mxfp4", 32, 17),
            Self::NVFP4 => traits("nvfp4", 64, 36),
            Self::Q1_0 => traits("q1_0", 128, 18),
            Self::Q2_0 => traits("q2_0", 64, 18),
        }
    }

    /// The ggml name (`ggml_type_name`), e.g. `"q4_K"`.
    pub const fn name(self) -> &'static str {
        self.traits().name
    }

    /// Elements per block (`ggml_blck_size`); 1 for plain scalar types.
    pub const fn block_size(self) -> usize {
        self.traits().block_size
    }

    /// Bytes per block (`ggml_type_size`).
    pub const fn type_size(self) -> usize {
        self.traits().type_size
    }

    /// Whether the type stores blocks of several elements (`ggml_is_quantized`).
    pub const fn is_quantized(self) -> bool {
        !matches!(
            self,
            Self::F32
                | Self::F16
                | Self::BF16
                | Self::F64
                | Self::I8
                | Self::I16
                | Self::I32
                | Self::I64
        )
    }

    /// Bytes taken by one row of `n_elements` (`ggml_row_size`).
    ///
    /// Errors when `n_elements` is not a multiple of [`block_size`](Self::block_size) or the
    /// byte count overflows `u64`.
    pub fn row_bytes(self, n_elements: u64) -> Result<u64, QuantError> {
        self.bytes_for("row_bytes", n_elements)
    }

    /// Bytes taken by a contiguous tensor of `n_elements`.
    ///
    /// Same rule as [`row_bytes`](Self::row_bytes): the count must be whole blocks. For a
    /// shape whose rows must each be whole blocks, use [`shape_bytes`](Self::shape_bytes).
    pub fn tensor_bytes(self, n_elements: u64) -> Result<u64, QuantError> {
        self.bytes_for("tensor_bytes", n_elements)
    }

    /// Bytes taken by a tensor of shape `dims` (`ne[0]` first, the ggml/GGUF order).
    ///
    /// `dims[0]` (the row length) must be a multiple of the block size, as ggml requires;
    /// the element product and the byte count are overflow-checked. An empty `dims` is a
    /// scalar (one element).
    pub fn shape_bytes(self, dims: &[u64]) -> Result<u64, QuantError> {
        const OP: &str = "shape_bytes";
        let row = dims.first().copied().unwrap_or(1);
        let row_bytes = self.bytes_for(OP, row)?;
        let mut total = row_bytes;
        let mut n_elements = row;
        for &d in dims.iter().skip(1) {
            n_elements = n_elements.checked_mul(d).ok_or(QuantError::Overflow {
                op: OP,
                ty: self,
                n_elements,
            })?;
            total = total.checked_mul(d).ok_or(QuantError::Overflow {
                op: OP,
                ty: self,
                n_elements,
            })?;
        }
        Ok(total)
    }

    /// Errors unless `actual_bytes` is exactly what `n_elements` of this type take.
    pub(crate) fn check_bytes(
        self,
        op: &'static str,
        n_elements: u64,
        actual_bytes: u64,
    ) -> Result<(), QuantError> {
        let expected_bytes = self.bytes_for(op, n_elements)?;
        if actual_bytes != expected_bytes {
            return Err(QuantError::ByteLenMismatch {
                op,
                ty: self,
                n_elements,
                expected_bytes,
                actual_bytes,
            });
        }
        Ok(())
    }

    pub(crate) fn bytes_for(self, op: &'static str, n_elements: u64) -> Result<u64, QuantError> {
        let block_size = self.block_size() as u64;
        let type_size = self.type_size() as u64;
        if !n_elements.is_multiple_of(block_size) {
            return Err(QuantError::NotBlockMultiple { op, ty: self, n_elements, block_size });
        }
        (n_elements / block_size).checked_mul(type_size).ok_or(QuantError::Overflow {
            op,
            ty: self,
            n_elements,
        })
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u32> for GgmlType {
    type Error = u32;

    /// Same as [`GgmlType::from_u32`], handing back the unknown id as the error.
    fn try_from(id: u32) -> Result<Self, u32> {
        Self::from_u32(id).ok_or(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// (id, name, block size, type size) copied by hand from ggml.c `type_traits` and the
    /// `static_assert`s in ggml-common.h, independent of the `match` above.
    const GGML_TABLE: &[(u32, &str, usize, usize)] = &[
        (0, "f32", 1, 4),
        (1, "f16", 1, 2),
        (2, "q4_0", 32, 2 + 16),
        (3, "q4_1", 32, 2 + 2 + 16),
        (6, "q5_0", 32, 2 + 4 + 16),
        (7, "q5_1", 32, 2 + 2 + 4 + 16),
        (8, "q8_0", 32, 2 + 32),
        (9, "q8_1", 32, 2 + 2 + 32),
        (10, "q2_K", 256, 2 + 2 + 256 / 16 + 256 / 4),
        (11, "q3_K", 256, 2 + 256 / 4 + 256 / 8 + 12),
        (12, "q4_K", 256, 2 + 2 + 12 + 256 / 2),
        (13, "q5_K", 256, 2 + 2 + 12 + 256 / 8 + 256 / 2),
        (14, "q6_K", 256, 2 + 256 / 16 + 3 * 256 / 4),
        (15, "q8_K", 256, 4 + 256 + 2 * 256 / 16),
        (16, "iq2_xxs", 256, 2 + 256 / 4),
        (17, "iq2_xs", 256, 2 + 256 / 4 + 256 / 32),
        (18, "iq3_xxs", 256, 2 + 3 * 256 / 8),
        (19, "iq1_s", 256, 2 + 256 / 8 + 256 / 16),
        (20, "iq4_nl", 32, 2 + 16),
        (21, "iq3_s", 256, 2 + 13 * 256 / 32 + 256 / 64),
        (22, "iq2_s", 256, 2 + 256 / 4 + 256 / 16),
        (23, "iq4_xs", 256, 2 + 2 + 256 / 2 + 256 / 64),
        (24, "i8", 1, 1),
        (25, "i16", 1, 2),
        (26, "i32", 1, 4),
        (27, "i64", 1, 8),
        (28, "f64", 1, 8),
        (29, "iq1_m", 256, 256 / 8 + 256 / 16 + 256 / 32),
        (30, "bf16", 1, 2),
        (34, "tq1_0", 256, 2 + 4 * 13),
        (35, "tq2_0", 256, 2 + 256 / 4),
        (39, "mxfp4", 32, 1 + 16),
        (40, "nvfp4", 64, 4 + 32),
        (41, "q1_0", 128, 2 + 128 / 8),
        (42, "q2_0", 64, 2 + 64 / 4),
    ];

    #[test]
    fn table_matches_ggml() {
        assert_eq!(GGML_TABLE.len(), GgmlType::ALL.len());
        for &(id, name, bs, ts) in GGML_TABLE {
            let ty = GgmlType::from_u32(id).unwrap();
            assert_eq!(ty.id(), id);
            assert_eq!(ty.name(), name, "id {id}");
            assert_eq!(ty.block_size(), bs, "{name}");
            assert_eq!(ty.type_size(), ts, "{name}");
            assert_eq!(ty.to_string(), name);
        }
    }

    #[test]
    fn all_is_in_id_order_and_round_trips() {
        for pair in GgmlType::ALL.windows(2) {
            assert!(pair[0].id() < pair[1].id());
        }
        for ty in GgmlType::ALL {
            assert_eq!(GgmlType::from_u32(ty.id()), Some(ty));
            assert_eq!(GgmlType::try_from(ty.id()), Ok(ty));
        }
    }

    #[test]
    fn removed_and_unknown_ids_are_rejected() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 142, u32::MAX] {
            assert_eq!(GgmlType::from_u32(id), None, "id {id}");
            assert_eq!(GgmlType::try_from(id), Err(id));
        }
        let known = (0..=1000).filter(|&id| GgmlType::from_u32(id).is_some()).count();
        assert_eq!(known, GgmlType::ALL.len());
    }

    #[test]
    fn quantized_flag() {
        for ty in GgmlType::ALL {
            assert_eq!(ty.is_quantized(), ty.block_size() > 1, "{ty}");
        }
    }

    #[test]
    fn row_bytes_counts_blocks() {
        assert_eq!(GgmlType::F32.row_bytes(7), Ok(28));
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Ok(36));
        assert_eq!(GgmlType::Q6_K.row_bytes(512), Ok(420));
        assert_eq!(GgmlType::Q4_K.tensor_bytes(0), Ok(0));
        assert_eq!(GgmlType::Q8_K.tensor_bytes(256 * 3), Ok(292 * 3));
    }

    #[test]
    fn row_bytes_rejects_partial_blocks() {
        let err = GgmlType::Q4_K.row_bytes(255).unwrap_err();
        assert_eq!(
            err,
            QuantError::NotBlockMultiple {
                op: "row_bytes",
                ty: GgmlType::Q4_K,
                n_elements: 255,
                block_size: 256
            }
        );
        assert!(GgmlType::Q8_0.tensor_bytes(33).is_err());
        assert!(err.to_string().contains("q4_K"));
    }

    #[test]
    fn row_bytes_overflow_is_an_error() {
        assert!(matches!(GgmlType::F64.row_bytes(u64::MAX), Err(QuantError::Overflow { .. })));
        assert!(matches!(
            GgmlType::F32.tensor_bytes(u64::MAX / 2),
            Err(QuantError::Overflow { .. })
        ));
        // Q8_K takes more bytes than elements, so the largest whole-block count overflows;
        // Q4_0 takes fewer, so it never does.
        let n = u64::MAX / 256 * 256;
        assert!(matches!(GgmlType::Q8_K.row_bytes(n), Err(QuantError::Overflow { .. })));
        assert_eq!(GgmlType::Q4_0.row_bytes(n), Ok(n / 32 * 18));
        assert_eq!(GgmlType::I8.row_bytes(u64::MAX), Ok(u64::MAX));
    }

    #[test]
    fn shape_bytes_checks_rows_and_overflow() {
        assert_eq!(GgmlType::Q4_0.shape_bytes(&[64, 3, 2]), Ok(36 * 6));
        assert_eq!(GgmlType::F16.shape_bytes(&[]), Ok(2));
        assert_eq!(GgmlType::F16.shape_bytes(&[5, 0]), Ok(0));
        assert!(matches!(
            GgmlType::Q4_0.shape_bytes(&[16, 2]),
            Err(QuantError::NotBlockMultiple { .. })
        ));
        assert!(matches!(
            GgmlType::F32.shape_bytes(&[1 << 40, 1 << 30]),
            Err(QuantError::Overflow { .. })
        ));
        assert!(matches!(
            GgmlType::I8.shape_bytes(&[1 << 32, 1 << 32]),
            Err(QuantError::Overflow { .. })
        ));
    }
}
