//! Argument checks every backend makes the same way: the contract's shapes, so a CPU and a GPU
//! backend reject the same misuse with the same error.

use crate::{AttentionParams, CoreError, KvDesc, Result, shape_err};

/// `a` must equal `b` (`(rows, cols)` shapes); `what` names the argument.
pub fn same_shape(
    op: &'static str,
    what: &str,
    a: (usize, usize),
    b: (usize, usize),
) -> Result<()> {
    if a == b { Ok(()) } else { Err(shape_err(op, format!("{what}: {a:?} vs {b:?}"))) }
}

/// `layer` must be one of the cache's `n_layers`.
pub fn kv_layer(op: &'static str, n_layers: usize, layer: usize) -> Result<()> {
    if layer < n_layers {
        Ok(())
    } else {
        Err(shape_err(op, format!("layer {layer} of a cache with {n_layers} layers")))
    }
}

/// The arguments of `Backend::attention`: heads that group evenly, parameters that agree with
/// the cache, `q` and `out` shapes, a non-empty window, and positions inside the cache.
pub fn attention(
    q: (usize, usize),
    desc: &KvDesc,
    p: &AttentionParams,
    out: (usize, usize),
) -> Result<()> {
    const OP: &str = "attention";
    let d = desc;
    if p.n_head_kv == 0 || !p.n_head.is_multiple_of(p.n_head_kv) {
        return Err(shape_err(OP, format!("{} heads over {} KV heads", p.n_head, p.n_head_kv)));
    }
    if (p.n_head_kv, p.head_dim, p.head_dim_v) != (d.n_head_kv, d.head_dim, d.head_dim_v) {
        return Err(shape_err(
            OP,
            format!(
                "params (n_head_kv, head_dim, head_dim_v) = {:?}, cache has {:?}",
                (p.n_head_kv, p.head_dim, p.head_dim_v),
                (d.n_head_kv, d.head_dim, d.head_dim_v)
            ),
        ));
    }
    if p.window == Some(0) {
        return Err(shape_err(OP, "a window of 0 positions"));
    }
    let rows = q.0;
    same_shape(OP, "q", q, (rows, p.n_head * p.head_dim))?;
    same_shape(OP, "out", out, (rows, p.n_head * p.head_dim_v))?;
    let end = p.start_pos.saturating_add(rows);
    if end > d.n_ctx {
        return Err(CoreError::ContextOverflow { op: OP, pos: end - 1, n_ctx: d.n_ctx });
    }
    Ok(())
}
