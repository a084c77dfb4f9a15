//! rope, both styles.

use realm_core::{Backend, RopeParams, RopeStyle};

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
        cx.case(&name, |cx, rng| {
            let (rows, n_heads) = (5, 3);
            let p =
                RopeParams { n_heads, head_dim, rope_dim, start_pos, freq_base, freq_scale, style };
            let cols = n_heads * head_dim;
            let (mut b, mut o) = cx.input(rows, cols, &rng.vec(rows * cols, 2.0))?;
            ok("rope", "backend", cx.b.rope(&mut b, &p))?;
            ok("rope", "oracle", cx.o.rope(&mut o, &p))?;
            cx.compare(&name, Check::Rope, &b, &o)
        });
    }
}
