//! matmul of every weight type.

use realm_core::{Backend, GgmlType, WeightLayout};

use crate::harness::{Cx, ok, random_weight, weight_types};
use crate::tolerance::Check;

/// One case: `[n, k] × [m, k]ᵀ (+ bias)`.
fn case<B: Backend>(
    cx: &mut Cx<'_, B>,
    ty: GgmlType,
    (n, m, k): (usize, usize, usize),
    bias: bool,
) {
    let name = format!("matmul {} n={n} {m}x{k}{}", ty.name(), if bias { " bias" } else { "" });
    cx.case(&name, |cx, rng| {
        let bytes = random_weight(ty, m, k, rng);
        let (wb, wo) = cx.weight(&name, ty, (m, k), bytes, WeightLayout::Matrix)?;
        let (xb, xo) = cx.input(n, k, &rng.vec(n * k, 2.0))?;
        let biases = if bias { Some(cx.vector("bias", &rng.vec(m, 1.0))?) } else { None };
        let (bb, bo) = match &biases {
            Some((b, o)) => (Some(b), Some(o)),
            None => (None, None),
        };
        let (mut b, mut o) = cx.output(n, m)?;
        ok("matmul", "backend", cx.b.matmul(&wb, bb, &xb, &mut b))?;
        ok("matmul", "oracle", cx.o.matmul(&wo, bo, &xo, &mut o))?;
        cx.compare(&name, Check::Matmul(ty), &b, &o)
    });
}

pub(crate) fn run<B: Backend>(cx: &mut Cx<'_, B>) {
    for ty in weight_types() {
        case(cx, ty, (1, 64, 256), false);
        case(cx, ty, (5, 64, 256), true);
    }
    // Big enough (≈0.8 M multiply-adds) for a threaded backend to split the work.
    for (i, ty) in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::F16,
    ]
    .into_iter()
    .enumerate()
    {
        case(cx, ty, (17, 96, 512), i % 2 == 0);
        case(cx, ty, (1, 1600, 512), false);
    }
}
