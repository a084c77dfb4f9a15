//! kv_store + attention: a prefix stored first, then a prefill step that starts after it,
//! then a decode step, each attention compared with the oracle.

use realm_core::{AttentionParams, Backend, KvDesc, KvDtype, RopeParams, RopeStyle};

use crate::harness::{Cx, ok};
use crate::rng::SplitMix64;
use crate::tolerance::Check;

#[derive(Debug, Clone, Copy)]
struct Scenario {
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    head_dim_v: usize,
    dtype: KvDtype,
    window: Option<usize>,
    softcap: Option<f32>,
    /// Positions stored before the prefill step.
    prefix: usize,
    /// Rows of the prefill step.
    prefill: usize,
    /// Amplitude of q and k.
    amp: f32,
}

const LAYER: usize = 1;

pub(crate) fn run<B: Backend>(cx: &mut Cx<'_, B>) {
    let base = Scenario {
        n_head: 4,
        n_head_kv: 2,
        head_dim: 64,
        head_dim_v: 64,
        dtype: KvDtype::F16,
        window: None,
        softcap: None,
        prefix: 40,
        prefill: 8,
        amp: 1.5,
    };
    let scenarios = [
        base,
        Scenario { dtype: KvDtype::F32, ..base },
        Scenario { n_head: 3, n_head_kv: 3, head_dim: 32, head_dim_v: 32, ..base },
        Scenario { n_head: 8, n_head_kv: 1, ..base },
        Scenario { window: Some(16), ..base },
        Scenario { window: Some(16), dtype: KvDtype::F32, prefill: 20, ..base },
        Scenario { softcap: Some(10.0), amp: 4.0, ..base },
        Scenario { head_dim_v: 32, prefix: 0, ..base },
        // Gemma-like: one KV head for 4 query heads, wide heads, a prefill longer than one
        // block of keys with the causal edge inside blocks.
        Scenario {
            n_head: 4,
            n_head_kv: 1,
            head_dim: 128,
            head_dim_v: 128,
            prefix: 5,
            prefill: 37,
            ..base
        },
        // A long cache, so a backend that splits decode over positions does.
        Scenario { prefix: 300, prefill: 3, n_head: 2, n_head_kv: 1, ..base },
        Scenario { prefix: 300, prefill: 3, window: Some(100), ..base },
    ];
    for s in scenarios {
        let name = format!(
            "attention {}h/{}kv d={}/{} {:?} window={:?} softcap={:?} prefix={} prefill={}",
            s.n_head,
            s.n_head_kv,
            s.head_dim,
            s.head_dim_v,
            s.dtype,
            s.window,
            s.softcap,
            s.prefix,
            s.prefill
        );
        cx.case(&name, |cx, rng| scenario(cx, &name, s, rng));
    }
}

fn scenario<B: Backend>(
    cx: &mut Cx<'_, B>,
    name: &str,
    s: Scenario,
    rng: &mut SplitMix64,
) -> Result<(), String> {
    let n_ctx = s.prefix + s.prefill + 1;
    let desc = KvDesc {
        n_layer: 2,
        n_ctx,
        n_head_kv: s.n_head_kv,
        head_dim: s.head_dim,
        head_dim_v: s.head_dim_v,
        dtype: s.dtype,
    };
    let mut kb = ok("kv_cache", "backend", cx.b.kv_cache(desc))?;
    let mut ko = ok("kv_cache", "oracle", cx.o.kv_cache(desc))?;
    let (kdim, vdim) = (s.n_head_kv * s.head_dim, s.n_head_kv * s.head_dim_v);
    // Fill both layers: layer 0 holds unrelated values, so reading the wrong layer shows.
    let mut store = |cx: &mut Cx<'_, B>, kb: &mut B::Kv, layer: usize, start: usize, n: usize| {
        let (k_b, k_o) = cx.input(n, kdim, &rng.vec(n * kdim, s.amp))?;
        let (v_b, v_o) = cx.input(n, vdim, &rng.vec(n * vdim, 1.0))?;
        ok("kv_store", "backend", cx.b.kv_store(kb, layer, start, &k_b, &v_b))?;
        ok("kv_store", "oracle", cx.o.kv_store(&mut ko, layer, start, &k_o, &v_o))
    };
    store(cx, &mut kb, 0, 0, n_ctx)?;
    if s.prefix > 0 {
        store(cx, &mut kb, LAYER, 0, s.prefix)?;
    }
    store(cx, &mut kb, LAYER, s.prefix, s.prefill)?;
    store(cx, &mut kb, LAYER, s.prefix + s.prefill, 1)?;
    let params = |start_pos| AttentionParams {
        n_head: s.n_head,
        n_head_kv: s.n_head_kv,
        head_dim: s.head_dim,
        head_dim_v: s.head_dim_v,
        start_pos,
        scale: if s.softcap.is_some() { 1.0 } else { 1.0 / (s.head_dim as f32).sqrt() },
        window: s.window,
        softcap: s.softcap,
    };
    for (step, start_pos, n) in
        [("prefill", s.prefix, s.prefill), ("decode", s.prefix + s.prefill, 1)]
    {
        let qdim = s.n_head * s.head_dim;
        let mut rng = SplitMix64::for_case(&format!("{name} {step}"));
        let (qb, qo) = cx.input(n, qdim, &rng.vec(n * qdim, s.amp))?;
        let (mut b, mut o) = cx.output(n, s.n_head * s.head_dim_v)?;
        let p = params(start_pos);
        ok("attention", "backend", cx.b.attention(&qb, &kb, LAYER, &p, &mut b))?;
        ok("attention", "oracle", cx.o.attention(&qo, &ko, LAYER, &p, &mut o))?;
        cx.compare(&format!("{name} {step}"), Check::Attention, &b, &o)
            .map_err(|e| format!("{step}: {e}"))?;
    }
    Ok(())
}

/// `rope_kv_store` (rope of q and k, k and v into the cache): q compared after it, and the
/// cache through an attention that reads it.
pub(crate) fn rope_kv<B: Backend>(cx: &mut Cx<'_, B>) {
    // (n_head, n_head_kv, head_dim, rope_dim, style, dtype, start, rows)
    let cases = [
        (4, 2, 64, 64, RopeStyle::Normal, KvDtype::F16, 5, 3),
        (4, 2, 64, 32, RopeStyle::Neox, KvDtype::F32, 5, 3),
        (4, 2, 64, 64, RopeStyle::Neox, KvDtype::F16, 40, 1),
        (8, 1, 128, 128, RopeStyle::Neox, KvDtype::F16, 0, 7),
        (3, 3, 32, 16, RopeStyle::Normal, KvDtype::F32, 9, 1),
    ];
    for (n_head, n_head_kv, head_dim, rope_dim, style, dtype, start, n) in cases {
        let name = format!(
            "rope_kv_store {n_head}h/{n_head_kv}kv d={head_dim} rope={rope_dim} {style:?} {dtype:?} at {start} rows={n}"
        );
        cx.case(&name, |cx, rng| {
            let desc = KvDesc {
                n_layer: 2,
                n_ctx: start + n + 2,
                n_head_kv,
                head_dim,
                head_dim_v: head_dim,
                dtype,
            };
            let mut kb = ok("kv_cache", "backend", cx.b.kv_cache(desc))?;
            let mut ko = ok("kv_cache", "oracle", cx.o.kv_cache(desc))?;
            let (qdim, kdim) = (n_head * head_dim, n_head_kv * head_dim);
            if start > 0 {
                let (k_b, k_o) = cx.input(start, kdim, &rng.vec(start * kdim, 1.5))?;
                let (v_b, v_o) = cx.input(start, kdim, &rng.vec(start * kdim, 1.0))?;
                ok("kv_store", "backend", cx.b.kv_store(&mut kb, LAYER, 0, &k_b, &v_b))?;
                ok("kv_store", "oracle", cx.o.kv_store(&mut ko, LAYER, 0, &k_o, &v_o))?;
            }
            let (mut qb, mut qo) = cx.input(n, qdim, &rng.vec(n * qdim, 1.5))?;
            let (mut k_b, mut k_o) = cx.input(n, kdim, &rng.vec(n * kdim, 1.5))?;
            let (v_b, v_o) = cx.input(n, kdim, &rng.vec(n * kdim, 1.0))?;
            let rope = |n_heads| RopeParams {
                n_heads,
                head_dim,
                rope_dim,
                start_pos: start,
                freq_base: 10000.0,
                freq_scale: 1.0,
                style,
            };
            let (rq, rk) = (rope(n_head), rope(n_head_kv));
            let r = cx.b.rope_kv_store(&mut qb, &mut k_b, &v_b, &mut kb, LAYER, &rq, &rk);
            ok("rope_kv_store", "backend", r)?;
            let r = cx.o.rope_kv_store(&mut qo, &mut k_o, &v_o, &mut ko, LAYER, &rq, &rk);
            ok("rope_kv_store", "oracle", r)?;
            cx.compare(&format!("{name} q"), Check::Rope, &qb, &qo)?;
            let p = AttentionParams {
                n_head,
                n_head_kv,
                head_dim,
                head_dim_v: head_dim,
                start_pos: start,
                scale: 1.0 / (head_dim as f32).sqrt(),
                window: None,
                softcap: None,
            };
            let (mut b, mut o) = cx.output(n, n_head * head_dim)?;
            ok("attention", "backend", cx.b.attention(&qb, &kb, LAYER, &p, &mut b))?;
            ok("attention", "oracle", cx.o.attention(&qo, &ko, LAYER, &p, &mut o))?;
            cx.compare(&format!("{name} attention"), Check::Attention, &b, &o)
        });
    }
}
