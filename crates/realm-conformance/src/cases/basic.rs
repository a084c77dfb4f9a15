//! embed, rms_norm and the elementwise ops.

use realm_core::{Activation, Backend, WeightLayout};

use crate::harness::{Cx, ok, random_weight, weight_types};
use crate::tolerance::Check;

pub(crate) fn embed<B: Backend>(cx: &mut Cx<'_, B>) {
    for ty in weight_types() {
        let name = format!("embed {}", ty.name());
        cx.case(&name, |cx, rng| {
            let (rows, cols) = (16, 256);
            let bytes = random_weight(ty, rows, cols, rng);
            let (tb, to) = cx.weight(&name, ty, (rows, cols), bytes, WeightLayout::Embedding)?;
            let tokens = [3u32, 0, 15, 3, 7];
            let (mut b, mut o) = cx.output(tokens.len(), cols)?;
            ok("embed", "backend", cx.b.embed(&tb, &tokens, &mut b))?;
            ok("embed", "oracle", cx.o.embed(&to, &tokens, &mut o))?;
            cx.compare(&name, Check::Embed(ty), &b, &o)?;
            // The same ids held on the device, as argmax leaves them.
            let ids: Vec<f32> = tokens.iter().map(|&t| t as f32).collect();
            let (ib, io) = cx.input(tokens.len(), 1, &ids)?;
            let (mut b, mut o) = cx.output(tokens.len(), cols)?;
            ok("embed_ids", "backend", cx.b.embed_ids(&tb, &ib, &mut b))?;
            ok("embed_ids", "oracle", cx.o.embed_ids(&to, &io, &mut o))?;
            cx.compare(&format!("embed_ids {}", ty.name()), Check::Embed(ty), &b, &o)
        });
    }
}

pub(crate) fn rms_norm<B: Backend>(cx: &mut Cx<'_, B>) {
    // (rows, cols, group, eps, amplitude): whole rows, per-head groups, and values small
    // enough that eps matters.
    for (rows, cols, group, eps, amp) in
        [(3, 576, 576, 1e-5, 2.0), (4, 256, 64, 1e-6, 3.0), (2, 128, 128, 1e-5, 1e-3)]
    {
        let name = format!("rms_norm {rows}x{cols} group={group} eps={eps} amp={amp}");
        cx.case(&name, |cx, rng| {
            let (xb, xo) = cx.input(rows, cols, &rng.vec(rows * cols, amp))?;
            let w: Vec<f32> = (0..group).map(|_| 1.0 + rng.unit() * 0.5).collect();
            let (wb, wo) = cx.vector("norm", &w)?;
            let (mut b, mut o) = cx.output(rows, cols)?;
            ok("rms_norm", "backend", cx.b.rms_norm(&xb, &wb, group, eps, &mut b))?;
            ok("rms_norm", "oracle", cx.o.rms_norm(&xo, &wo, group, eps, &mut o))?;
            cx.compare(&name, Check::RmsNorm, &b, &o)
        });
    }
}

pub(crate) fn glu<B: Backend>(cx: &mut Cx<'_, B>) {
    for act in [Activation::Silu, Activation::GeluTanh] {
        let name = format!("glu {act:?}");
        cx.case(&name, |cx, rng| {
            let (rows, cols) = (4, 96);
            let mut gate = rng.vec(rows * cols, 6.0);
            // Large magnitudes, where exp/tanh saturate.
            gate[..6].copy_from_slice(&[-40.0, -15.0, 12.0, 40.0, 0.0, -0.0]);
            let (gb, go) = cx.input(rows, cols, &gate)?;
            let (ub, uo) = cx.input(rows, cols, &rng.vec(rows * cols, 2.0))?;
            let (mut b, mut o) = cx.output(rows, cols)?;
            ok("glu", "backend", cx.b.glu(&gb, &ub, act, &mut b))?;
            ok("glu", "oracle", cx.o.glu(&go, &uo, act, &mut o))?;
            cx.compare(&name, Check::Glu, &b, &o)
        });
    }
}

pub(crate) fn add<B: Backend>(cx: &mut Cx<'_, B>) {
    cx.case("add", |cx, rng| {
        let (mut xb, mut xo) = cx.input(3, 50, &rng.vec(150, 10.0))?;
        let (yb, yo) = cx.input(3, 50, &rng.vec(150, 0.1))?;
        ok("add", "backend", cx.b.add(&mut xb, &yb))?;
        ok("add", "oracle", cx.o.add(&mut xo, &yo))?;
        cx.compare("add", Check::Add, &xb, &xo)
    });
}

pub(crate) fn scale<B: Backend>(cx: &mut Cx<'_, B>) {
    for s in [0.125f32, -3.7, 24.0f32.sqrt()] {
        let name = format!("scale {s}");
        cx.case(&name, |cx, rng| {
            let (mut xb, mut xo) = cx.input(3, 50, &rng.vec(150, 5.0))?;
            ok("scale", "backend", cx.b.scale(&mut xb, s))?;
            ok("scale", "oracle", cx.o.scale(&mut xo, s))?;
            cx.compare(&name, Check::Scale, &xb, &xo)
        });
    }
}

pub(crate) fn softcap<B: Backend>(cx: &mut Cx<'_, B>) {
    for cap in [30.0f32, 50.0] {
        let name = format!("softcap {cap}");
        cx.case(&name, |cx, rng| {
            let (mut xb, mut xo) = cx.input(2, 64, &rng.vec(128, 3.0 * cap))?;
            ok("softcap", "backend", cx.b.softcap(&mut xb, cap))?;
            ok("softcap", "oracle", cx.o.softcap(&mut xo, cap))?;
            cx.compare(&name, Check::Softcap, &xb, &xo)
        });
    }
}

pub(crate) fn gather_rows<B: Backend>(cx: &mut Cx<'_, B>) {
    let cases: [&[u32]; 4] = [&[2, 3, 4], &[6], &[0, 1, 2, 3, 4, 5, 6], &[6, 0, 3, 3]];
    for idx in cases {
        let name = format!("gather_rows {idx:?} of 7");
        cx.case(&name, |cx, rng| {
            let (xb, xo) = cx.input(7, 33, &rng.vec(7 * 33, 1.0))?;
            let (mut b, mut o) = cx.output(idx.len(), 33)?;
            ok("gather_rows", "backend", cx.b.gather_rows(&xb, idx, &mut b))?;
            ok("gather_rows", "oracle", cx.o.gather_rows(&xo, idx, &mut o))?;
            cx.compare(&name, Check::GatherRows, &b, &o)
        });
    }
}

pub(crate) fn argmax<B: Backend>(cx: &mut Cx<'_, B>) {
    cx.case("argmax with ties", |cx, rng| {
        let cols = 40;
        let mut x = rng.vec(7 * cols, 1.0);
        let row = |r: usize| r * cols;
        // A tie between two maxima; a constant row; an all-negative row; the maximum last;
        // infinities; a tie between the first and last columns.
        x[row(0) + 5] = 3.0;
        x[row(0) + 17] = 3.0;
        x[row(1)..row(2)].fill(0.5);
        x[row(2)..row(3)].iter_mut().for_each(|v| *v = -1.0 - v.abs());
        x[row(4) + cols - 1] = 9.0;
        x[row(5) + 9] = f32::INFINITY;
        x[row(5) + 30] = f32::INFINITY;
        x[row(6)] = 2.0;
        x[row(6) + cols - 1] = 2.0;
        let (xb, xo) = cx.input(7, cols, &x)?;
        let (mut b, mut o) = cx.output(7, 1)?;
        ok("argmax", "backend", cx.b.argmax(&xb, &mut b))?;
        ok("argmax", "oracle", cx.o.argmax(&xo, &mut o))?;
        cx.compare("argmax with ties", Check::Argmax, &b, &o)
    });
}

/// `read_rows`: the rows asked for, exactly as written (an f32 tensor round-trips); none; and
/// past the end, an error.
pub(crate) fn read_rows<B: Backend>(cx: &mut Cx<'_, B>) {
    cx.case("read_rows", |cx, rng| {
        let (rows, cols) = (7, 40);
        let x = rng.vec(rows * cols, 1.0);
        let (xb, _) = cx.input(rows, cols, &x)?;
        ok("submit", "backend", cx.b.submit())?;
        for (first, count) in [(0, rows), (2, 3), (6, 1), (7, 0)] {
            let got =
                ok("read_rows", "backend", crate::block_on(cx.b.read_rows(&xb, first, count)))?;
            let want = &x[first * cols..(first + count) * cols];
            if got != want {
                let at = got.iter().zip(want).position(|(g, w)| g != w);
                return Err(format!(
                    "rows {first}+{count}: {} values read for {} written, first difference at {at:?}",
                    got.len(),
                    want.len()
                ));
            }
        }
        for (first, count) in [(6, 2), (8, 0), (usize::MAX, 2)] {
            if crate::block_on(cx.b.read_rows(&xb, first, count)).is_ok() {
                return Err(format!("rows {first}+{count} of {rows} were read"));
            }
        }
        Ok(())
    });
}
