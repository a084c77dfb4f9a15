//! kv_store + attention: a prefix stored first, then a prefill step that starts after it,
//! then a decode step, each attention compared with the oracle.

use realm_core::{AttentionParams, Backend, KvDesc, KvDtype};

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
