//! matmul of every weight type.

use realm_core::{Activation, Backend, Epilogue, GgmlType, WeightLayout};

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

/// The weight types of the models Realm is tested with, for the larger and the fused cases.
const MODEL_TYPES: [GgmlType; 6] =
    [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16];

/// What a fused case puts after the matmul.
#[derive(Debug, Clone, Copy)]
enum Then {
    Store,
    Add,
    Glu(Activation),
}

/// One `matmul_fused` case: `[n, k] × [m, k]ᵀ`, with or without a norm before it.
fn fused<B: Backend>(
    cx: &mut Cx<'_, B>,
    ty: GgmlType,
    (n, m, k): (usize, usize, usize),
    norm: bool,
    then: Then,
) {
    let name = format!(
        "matmul_fused {} n={n} {m}x{k}{} {then:?}",
        ty.name(),
        if norm { " norm" } else { "" }
    );
    cx.case(&name, |cx, rng| {
        let bytes = random_weight(ty, m, k, rng);
        let (wb, wo) = cx.weight(&name, ty, (m, k), bytes, WeightLayout::Matrix)?;
        let (xb, xo) = cx.input(n, k, &rng.vec(n * k, 2.0))?;
        let nw: Vec<f32> = (0..k).map(|_| 0.5 + rng.unit()).collect();
        let (nb, no) = cx.vector("norm", &nw)?;
        let (gb, go) = cx.input(n, m, &rng.vec(n * m, 3.0))?;
        // The output starts as other values, which an add must keep and a store overwrite.
        let (mut b, mut o) = cx.input(n, m, &rng.vec(n * m, 4.0))?;
        let (tb, to) = match then {
            Then::Store => (Epilogue::Store, Epilogue::Store),
            Then::Add => (Epilogue::Add, Epilogue::Add),
            Then::Glu(act) => (Epilogue::Glu { gate: &gb, act }, Epilogue::Glu { gate: &go, act }),
        };
        let eps = 1e-5;
        let (bn, on) = if norm { (Some((&nb, eps)), Some((&no, eps))) } else { (None, None) };
        ok("matmul_fused", "backend", cx.b.matmul_fused(&wb, None, &xb, bn, tb, &mut b))?;
        ok("matmul_fused", "oracle", cx.o.matmul_fused(&wo, None, &xo, on, to, &mut o))?;
        cx.compare(&name, Check::MatmulFused(ty), &b, &o)
    });
}

pub(crate) fn run<B: Backend>(cx: &mut Cx<'_, B>) {
    // Decode shapes (matvec on a GPU, which folds the norm in) and a prefill shape.
    for ty in MODEL_TYPES.into_iter().chain([GgmlType::F32]) {
        fused(cx, ty, (1, 64, 256), true, Then::Store);
        fused(cx, ty, (2, 64, 256), true, Then::Glu(Activation::Silu));
        fused(cx, ty, (1, 48, 256), false, Then::Add);
        fused(cx, ty, (3, 64, 256), true, Then::Glu(Activation::GeluTanh));
        fused(cx, ty, (6, 40, 256), true, Then::Add);
        fused(cx, ty, (7, 64, 256), false, Then::Glu(Activation::Silu));
    }
    for ty in weight_types() {
        case(cx, ty, (1, 64, 256), false);
        case(cx, ty, (5, 64, 256), true);
    }
    // Big enough (≈0.8 M multiply-adds) for a threaded backend to split the work.
    for (i, ty) in MODEL_TYPES.into_iter().enumerate() {
        case(cx, ty, (17, 96, 512), i % 2 == 0);
        case(cx, ty, (1, 1600, 512), false);
    }
}
