//! rope, both styles, each row at its own position.

use realm_core::{Backend, RopeParams, RopeStyle};

use crate::cases::attention::Pool;
use crate::harness::{Cx, ok};
use crate::tolerance::Check;

pub(crate) fn run<B: Backend>(cx: &mut Cx<'_, B>) {
    // (style, head_dim, rope_dim, start_pos, freq_base, freq_scale)
    let cases = [
        (RopeStyle::Normal, 64, 64, 0, 10000.0, 1.0),
        (RopeStyle::Neox, 64, 64, 0, 10000.0, 1.0),
        (RopeStyle::Normal, 64, 32, 17, 10000.0, 1.0),
        (RopeStyle::Neox, 64, 32, 17, 1_000_000.0, 1.0),
        (RopeStyle::Normal, 128, 128, 1000, 500_000.0, 0.25),
        (RopeStyle::Neox, 256, 256, 4000, 1_000_000.0, 1.0),
    ];
    for (style, head_dim, rope_dim, start_pos, freq_base, freq_scale) in cases {
        let name = format!(
            "rope {style:?} head_dim={head_dim} rope_dim={rope_dim} pos={start_pos}+ base={freq_base} scale={freq_scale}"
        );
        let positions: Vec<usize> = (start_pos..start_pos + 5).collect();
        cx.case(&name, |cx, rng| {
            let p = RopeParams { n_heads: 3, head_dim, rope_dim, freq_base, freq_scale, style };
            one(cx, &name, p, &positions, rng)
        });
    }
    // Rows of several sequences, each at its own position, in no order.
    let name = "rope rows at their own positions";
    cx.case(name, |cx, rng| {
        let p = RopeParams {
            n_heads: 2,
            head_dim: 64,
            rope_dim: 64,
            freq_base: 10000.0,
            freq_scale: 1.0,
            style: RopeStyle::Neox,
        };
        one(cx, name, p, &[3, 1000, 17, 0, 4000, 4, 5], rng)
    });
}

/// `rope` of rows at `positions` (each its own sequence) against the oracle.
fn one<B: Backend>(
    cx: &mut Cx<'_, B>,
    name: &str,
    p: RopeParams,
    positions: &[usize],
    rng: &mut crate::rng::SplitMix64,
) -> Result<(), String> {
    let max = positions.iter().max().copied().unwrap_or(0) + 1;
    let mut pool = Pool::new(max, positions.len(), rng);
    let rows: Vec<(usize, usize)> =
        positions.iter().map(|&pos| (pool.sequence(pos + 1, None), pos)).collect();
    let (rb, ro) = cx.rows(&pool, &rows)?;
    let (n, cols) = (positions.len(), p.n_heads * p.head_dim);
    let (mut b, mut o) = cx.input(n, cols, &rng.vec(n * cols, 2.0))?;
    ok("rope", "backend", cx.b.rope(&mut b, &p, &rb))?;
    ok("rope", "oracle", cx.o.rope(&mut o, &p, &ro))?;
    cx.compare(name, Check::Rope, &b, &o)
}
