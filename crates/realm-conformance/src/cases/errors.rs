//! Bad shapes and bad weights: a backend must return an error, on every op, and never panic
//! or silently succeed. The oracle is held to the same rule.

use std::sync::Arc;

use realm_core::{
    Activation, AttentionParams, Backend, GgmlType, KvDesc, KvDtype, RopeParams, RopeStyle,
    RowsDesc, WeightDesc, WeightLayout,
};

use crate::harness::Cx;

pub(crate) fn run<B: Backend>(cx: &mut Cx<'_, B>) {
    for f in misuse(cx.b) {
        cx.fail("errors", format!("backend {f}"));
    }
    for f in misuse(&cx.o) {
        cx.fail("errors", format!("oracle {f}"));
    }
}

fn weight(ty: GgmlType, (rows, cols): (usize, usize), len: usize, buffer: usize) -> WeightDesc {
    WeightDesc {
        name: "bad".into(),
        ty,
        rows,
        cols,
        layout: WeightLayout::Matrix,
        bytes: Arc::new(vec![0u8; buffer]),
        offset: 0,
        len,
    }
}

/// Makes every kind of bad call on `be`; returns what it wrongly accepted.
fn misuse<C: Backend>(be: &C) -> Vec<String> {
    let mut accepted = Vec::new();
    let mut expect_err = |what: &str, r: realm_core::Result<()>| {
        if r.is_ok() {
            accepted.push(format!("accepted {what}"));
        }
    };
    let upload = |d| be.upload(d).map(|_| ());
    expect_err("a weight with too few bytes", upload(weight(GgmlType::Q4_0, (2, 32), 18, 36)));
    expect_err("a weight past the end of its buffer", upload(weight(GgmlType::F32, (1, 4), 16, 8)));
    expect_err("a partial block", upload(weight(GgmlType::Q8_0, (1, 48), 51, 51)));

    let setup = (|| {
        let w = be.upload(weight(GgmlType::F32, (8, 32), 8 * 32 * 4, 8 * 32 * 4))?;
        let norm = be.upload(WeightDesc {
            layout: WeightLayout::Vector,
            ..weight(GgmlType::F32, (1, 32), 128, 128)
        })?;
        let kv = be.kv_cache(KvDesc {
            n_layer: 1,
            n_blocks: 2,
            block_size: 2,
            n_head_kv: 1,
            head_dim: 8,
            head_dim_v: 8,
            dtype: KvDtype::F16,
        })?;
        Ok::<_, realm_core::CoreError>((
            w,
            norm,
            kv,
            be.tensor(2, 16)?,
            be.tensor(2, 32)?,
            be.tensor(2, 8)?,
            be.tensor(3, 8)?,
        ))
    })();
    let Ok((w, norm, mut kv, mut x16, mut x32, mut o8, mut o3x8)) = setup else {
        return vec!["could not set up the misuse checks".into()];
    };
    let (Ok(mut o2x32), Ok(mut o2x16)) = (be.tensor(2, 32), be.tensor(2, 16)) else {
        return vec!["could not allocate a tensor".into()];
    };
    expect_err("matmul with mismatched columns", be.matmul(&w, None, &x16, &mut o8));
    expect_err("matmul into the wrong shape", be.matmul(&w, None, &x32, &mut o3x8));
    expect_err("matmul with a bias of the wrong length", be.matmul(&w, Some(&norm), &x32, &mut o8));
    expect_err("embed of a token outside the table", be.embed(&w, &[0, 8], &mut o2x32));
    expect_err("embed into the wrong shape", be.embed(&w, &[0, 1, 2], &mut o2x32));
    expect_err(
        "rms_norm with a group that does not divide the row",
        be.rms_norm(&x32, &norm, 24, 1e-5, &mut o2x32),
    );
    expect_err(
        "rms_norm with a weight of the wrong length",
        be.rms_norm(&x16, &norm, 16, 1e-5, &mut x32),
    );
    // Row placements: the descriptor itself must be refused when it is inconsistent.
    let rows = |pos: &[u32], seq: &[u32], tables: &[&[u32]], block_size: usize| {
        be.rows(&RowsDesc { pos, seq, tables, block_size })
    };
    let refused = |pos: &[u32], seq: &[u32], tables: &[&[u32]], bs: usize| {
        rows(pos, seq, tables, bs).map(|_| ())
    };
    expect_err("rows with fewer sequences than positions", refused(&[0, 1], &[0], &[&[0]], 2));
    expect_err("rows of a block size of 0", refused(&[0], &[0], &[&[0]], 0));
    expect_err("a row of a missing sequence", refused(&[0], &[1], &[&[0]], 2));
    expect_err("a row past its table", refused(&[2], &[0], &[&[0]], 2));
    expect_err("two rows in one slot", refused(&[1, 1], &[0, 1], &[&[0], &[0]], 2));
    let (Ok(two), Ok(three), Ok(past), Ok(other_bs)) = (
        rows(&[0, 1], &[0, 0], &[&[0]], 2),
        rows(&[0, 1, 2], &[0, 0, 0], &[&[0, 1]], 2),
        rows(&[0, 1], &[0, 0], &[&[5]], 2),
        rows(&[0, 1], &[0, 0], &[&[0]], 4),
    ) else {
        return vec!["could not make a valid row placement".into()];
    };
    let rope = RopeParams {
        n_heads: 2,
        head_dim: 16,
        rope_dim: 18,
        freq_base: 10000.0,
        freq_scale: 1.0,
        style: RopeStyle::Normal,
    };
    expect_err("rope with rope_dim > head_dim", be.rope(&mut x32, &rope, &two));
    expect_err(
        "rope with an odd rope_dim",
        be.rope(&mut x32, &RopeParams { rope_dim: 7, ..rope }, &two),
    );
    expect_err(
        "rope with the wrong number of heads",
        be.rope(&mut x32, &RopeParams { n_heads: 3, rope_dim: 16, ..rope }, &two),
    );
    expect_err(
        "rope with a position for each of 3 rows on 2",
        be.rope(&mut x32, &RopeParams { rope_dim: 16, ..rope }, &three),
    );
    expect_err("kv_store past the pool", be.kv_store(&mut kv, 0, &past, &o8, &o8));
    expect_err("kv_store into a missing layer", be.kv_store(&mut kv, 1, &two, &o8, &o8));
    expect_err("kv_store of the wrong width", be.kv_store(&mut kv, 0, &two, &x16, &o8));
    expect_err("kv_store of 2 rows placed as 3", be.kv_store(&mut kv, 0, &three, &o8, &o8));
    expect_err(
        "kv_store in blocks unlike the pool's",
        be.kv_store(&mut kv, 0, &other_bs, &o8, &o8),
    );
    let attn = AttentionParams {
        n_head: 2,
        n_head_kv: 1,
        head_dim: 8,
        head_dim_v: 8,
        scale: 1.0,
        window: None,
        softcap: None,
    };
    expect_err("attention past the pool", be.attention(&x16, &kv, 0, &attn, &past, &mut o2x16));
    expect_err("attention on a missing layer", be.attention(&x16, &kv, 1, &attn, &two, &mut o2x32));
    expect_err(
        "attention with heads not a multiple of KV heads",
        be.attention(&x16, &kv, 0, &AttentionParams { n_head: 3, ..attn }, &two, &mut o2x32),
    );
    expect_err(
        "attention with a head_dim unlike the cache",
        be.attention(
            &x32,
            &kv,
            0,
            &AttentionParams { head_dim: 16, head_dim_v: 16, ..attn },
            &two,
            &mut o2x32,
        ),
    );
    expect_err(
        "attention of 2 rows placed as 3",
        be.attention(&x16, &kv, 0, &attn, &three, &mut o2x16),
    );
    expect_err("glu of mismatched shapes", be.glu(&x16, &x32, Activation::Silu, &mut o2x32));
    expect_err("add of mismatched shapes", be.add(&mut x16, &x32));
    expect_err("gather_rows past the end", be.gather_rows(&x32, &[0, 2], &mut o2x32));
    expect_err("gather_rows of another width", be.gather_rows(&x32, &[0, 1], &mut o8));
    expect_err("gather_rows into too many rows", be.gather_rows(&x32, &[0], &mut o2x32));
    expect_err("argmax into the wrong shape", be.argmax(&x32, &mut o8));
    accepted
}
