//! The non-linear 4-bit formats IQ4_NL and IQ4_XS.
//!
//! Element order and arithmetic follow gguf-py `IQ4_NL.dequantize_blocks` /
//! `IQ4_XS.dequantize_blocks` and ggml-quants.c `dequantize_row_iq4_nl` /
//! `dequantize_row_iq4_xs` (commit 0c1e570): `scale * codebook[q]`, one multiply.

use crate::blocks::{BlockIq4Nl, BlockIq4Xs, KVALUES_IQ4NL, QK32};
use crate::types::QK_K;

#[inline]
fn kvalue(q: u8) -> f32 {
    f32::from(KVALUES_IQ4NL[usize::from(q & 0x0F)])
}

pub(super) fn iq4_nl(b: &BlockIq4Nl, y: &mut [f32; QK32]) {
    let d = b.d.to_f32();
    for (j, &q) in b.qs.iter().enumerate() {
        y[j] = d * kvalue(q);
        y[j + QK32 / 2] = d * kvalue(q >> 4);
    }
}

pub(super) fn iq4_xs(b: &BlockIq4Xs, y: &mut [f32; QK_K]) {
    let d = b.d.to_f32();
    let scales_h = b.scales_h.get();
    for (g, (out, qs)) in y.chunks_exact_mut(32).zip(b.qs.chunks_exact(16)).enumerate() {
        let lo = (b.scales_l[g / 2] >> (4 * (g % 2))) & 0x0F;
        let hi = ((scales_h >> (2 * g)) & 3) as u8;
        let dl = d * (i32::from(lo | (hi << 4)) - 32) as f32;
        for (j, &q) in qs.iter().enumerate() {
            out[j] = dl * kvalue(q);
            out[j + 16] = dl * kvalue(q >> 4);
        }
    }
}
