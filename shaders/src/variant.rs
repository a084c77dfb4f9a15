//! The typed shader variants and THE table of every variant the runtime may request.

use std::sync::OnceLock;

use crate::preprocess::Defines;

/// A GGUF weight format with a `quant/<format>.wgsl` include.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WeightFormat {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    IQ4NL,
    IQ4XS,
}

impl WeightFormat {
    pub const ALL: [WeightFormat; 17] = [
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q8_1,
        Self::Q2K,
        Self::Q3K,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
        Self::Q8K,
        Self::IQ4NL,
        Self::IQ4XS,
    ];

    /// The include's path under `wgsl/`.
    pub fn include(self) -> &'static str {
        match self {
            Self::F32 => "quant/f32.wgsl",
            Self::F16 => "quant/f16.wgsl",
            Self::BF16 => "quant/bf16.wgsl",
            Self::Q4_0 => "quant/q4_0.wgsl",
            Self::Q4_1 => "quant/q4_1.wgsl",
            Self::Q5_0 => "quant/q5_0.wgsl",
            Self::Q5_1 => "quant/q5_1.wgsl",
            Self::Q8_0 => "quant/q8_0.wgsl",
            Self::Q8_1 => "quant/q8_1.wgsl",
            Self::Q2K => "quant/q2_k.wgsl",
            Self::Q3K => "quant/q3_k.wgsl",
            Self::Q4K => "quant/q4_k.wgsl",
            Self::Q5K => "quant/q5_k.wgsl",
            Self::Q6K => "quant/q6_k.wgsl",
            Self::Q8K => "quant/q8_k.wgsl",
            Self::IQ4NL => "quant/iq4_nl.wgsl",
            Self::IQ4XS => "quant/iq4_xs.wgsl",
        }
    }

    /// `(values, bytes)` of one block, as the include's `QK` and `QBYTES` say.
    pub fn block(self) -> (u32, u32) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 | Self::IQ4NL => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q8_1 => (32, 36),
            Self::Q2K => (256, 84),
            Self::Q3K => (256, 110),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
            Self::Q8K => (256, 292),
            Self::IQ4XS => (256, 136),
        }
    }

    /// Whether values are block-quantized (not a plain float format).
    pub fn is_quantized(self) -> bool {
        self.block().0 > 1
    }
}

/// How the KV cache stores values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KvFormat {
    /// Two f16 values per u32 word.
    F16,
    F32,
}

/// The storage type of matmul's workgroup tiles (accumulation is always f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    F32,
    /// Needs the `shader-f16` feature (`enable f16;`).
    F16,
    /// f16 tiles multiplied with cooperative matrices (tensor cores; f32 accumulators):
    /// wgpu's native `EXPERIMENTAL_COOPERATIVE_MATRIX` (`enable wgpu_cooperative_matrix;`),
    /// with subgroups of exactly 32.
    CoopF16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElementwiseKind {
    Add,
    Scale,
    Softcap,
}

/// What a matmul kernel does with each result (compiled in, so that an implementation that
/// runs invocations as SIMD lanes does not pay for the branches it does not take).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Epilogue {
    /// `y = r`.
    Store,
    /// `y += r` (a residual add).
    Add,
    /// `y = silu(gate) · r`.
    GluSilu,
    /// `y = gelu(gate) · r`.
    GluGelu,
}

impl Epilogue {
    pub const ALL: [Epilogue; 4] = [Self::Store, Self::Add, Self::GluSilu, Self::GluGelu];
}

/// The block of outputs one matvec workgroup computes: output rows × activation rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatvecShape {
    /// 4 output rows of one activation row (a z-slice of workgroups per activation row).
    Narrow,
    /// 16 output rows of one activation row: less re-reading of the activations per weight
    /// byte; fewer, larger workgroups.
    Wide,
    /// 4 output rows of 8 activation rows: batched decode, each weight block dequantized once
    /// for the 8 rows.
    Batch,
}

impl MatvecShape {
    pub const ALL: [MatvecShape; 3] = [Self::Narrow, Self::Wide, Self::Batch];

    /// `(output rows, activation rows)` of one workgroup (`ROWS`, `NB` in matvec.wgsl).
    pub fn block(self) -> (u32, u32) {
        match self {
            Self::Narrow => (4, 1),
            Self::Wide => (16, 1),
            Self::Batch => (4, 8),
        }
    }
}

/// One kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Decode matmul: one workgroup per block of [`MatvecShape`]; with `norm`, the input rows
    /// are RMS-normalized first, in the kernel.
    Matvec {
        shape: MatvecShape,
        norm: bool,
        epilogue: Epilogue,
    },
    /// Prefill matmul: 32 × 32 output tiles through workgroup memory.
    Matmul {
        epilogue: Epilogue,
    },
    /// Gather rows of a (quantized) table.
    Embed,
    RmsNorm,
    Rope,
    /// Gated linear unit: GELU (tanh, ggml rounding) when `gelu`, else SiLU.
    Glu {
        gelu: bool,
    },
    Elementwise(ElementwiseKind),
    Argmax,
    /// Whole rows of an activation by index.
    GatherRows,
    /// Scatters rows of K or V into their pool slots.
    KvStore,
    /// Rope of q in place, rope of k into the cache, v into the cache: one dispatch.
    RopeKv,
    /// Paged attention; `split` writes partials over a slice of each row's positions (decode).
    Attention {
        split: bool,
    },
    /// Merges the partials of a split attention.
    AttentionReduce,
}

impl Op {
    /// The op's file under `wgsl/`.
    pub fn file(self) -> &'static str {
        match self {
            Self::Matvec { .. } => "ops/matvec.wgsl",
            Self::Matmul { .. } => "ops/matmul.wgsl",
            Self::Embed => "ops/embed.wgsl",
            Self::RmsNorm => "ops/rms_norm.wgsl",
            Self::Rope => "ops/rope.wgsl",
            Self::Glu { .. } => "ops/glu.wgsl",
            Self::Elementwise(_) => "ops/elementwise.wgsl",
            Self::Argmax => "ops/argmax.wgsl",
            Self::GatherRows => "ops/gather_rows.wgsl",
            Self::KvStore => "ops/kv_store.wgsl",
            Self::RopeKv => "ops/rope_kv.wgsl",
            Self::Attention { .. } => "ops/attention.wgsl",
            Self::AttentionReduce => "ops/attention_reduce.wgsl",
        }
    }

    /// Whether the op reads a weight (and so has one variant per [`WeightFormat`]).
    pub fn reads_weights(self) -> bool {
        matches!(self, Self::Matvec { .. } | Self::Matmul { .. } | Self::Embed)
    }

    /// Whether the op reads or writes the KV cache (one variant per [`KvFormat`]).
    pub fn uses_kv(self) -> bool {
        matches!(self, Self::KvStore | Self::RopeKv | Self::Attention { .. })
    }

    /// Every op.
    pub fn all() -> Vec<Op> {
        let mut ops = Vec::new();
        for epilogue in Epilogue::ALL {
            for shape in MatvecShape::ALL {
                for norm in [false, true] {
                    ops.push(Self::Matvec { shape, norm, epilogue });
                }
            }
            ops.push(Self::Matmul { epilogue });
        }
        ops.extend([
            Self::Embed,
            Self::RmsNorm,
            Self::Rope,
            Self::Glu { gelu: false },
            Self::Glu { gelu: true },
            Self::Elementwise(ElementwiseKind::Add),
            Self::Elementwise(ElementwiseKind::Scale),
            Self::Elementwise(ElementwiseKind::Softcap),
            Self::Argmax,
            Self::GatherRows,
            Self::KvStore,
            Self::RopeKv,
            Self::Attention { split: false },
            Self::Attention { split: true },
            Self::AttentionReduce,
        ]);
        ops
    }
}

/// What the adapter allows beyond the baseline (chosen after probing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tier {
    /// f16 workgroup tiles in quantized matmuls (`shader-f16`).
    pub f16: bool,
    /// Subgroup reductions in matvec (`subgroups`).
    pub subgroups: bool,
    /// Cooperative-matrix prefill matmuls (with `f16`; native only).
    pub coop: bool,
}

impl Tier {
    /// Every tier, the baseline (f32, no subgroups) first.
    pub const ALL: [Tier; 6] = [
        Tier { f16: false, subgroups: false, coop: false },
        Tier { f16: true, subgroups: false, coop: false },
        Tier { f16: false, subgroups: true, coop: false },
        Tier { f16: true, subgroups: true, coop: false },
        Tier { f16: true, subgroups: false, coop: true },
        Tier { f16: true, subgroups: true, coop: true },
    ];
}

/// Where the WGSL runs: the browser needs `enable subgroups;`, naga (native wgpu) rejects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Native,
    Browser,
}

/// One compiled form of one kernel: the pipeline cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variant {
    pub op: Op,
    /// The weight format, for ops that read weights.
    pub weights: Option<WeightFormat>,
    /// The KV format, for ops on the cache.
    pub kv: Option<KvFormat>,
    pub precision: Precision,
    pub subgroups: bool,
    pub workgroup: u32,
}

/// The variant of `op` the runtime uses on `tier` (the only constructor the backend needs:
/// the table below is built from it, so whatever it returns is in the table).
pub fn variant(op: Op, weights: Option<WeightFormat>, kv: Option<KvFormat>, tier: Tier) -> Variant {
    let weights =
        if op.reads_weights() { Some(weights.unwrap_or(WeightFormat::F32)) } else { None };
    let kv = if op.uses_kv() { Some(kv.unwrap_or(KvFormat::F32)) } else { None };
    let f16_tiles = matches!(op, Op::Matmul { .. })
        && tier.f16
        && weights.is_some_and(WeightFormat::is_quantized);
    let precision = match (f16_tiles, tier.coop) {
        (true, true) => Precision::CoopF16,
        (true, false) => Precision::F16,
        (false, _) => Precision::F32,
    };
    let workgroup = match op {
        Op::Matmul { .. } if precision == Precision::CoopF16 => 128,
        Op::Matvec { .. } | Op::Matmul { .. } | Op::RmsNorm | Op::Argmax => 64,
        Op::Attention { .. } | Op::AttentionReduce => 64,
        Op::Embed
        | Op::Rope
        | Op::Glu { .. }
        | Op::Elementwise(_)
        | Op::GatherRows
        | Op::KvStore
        | Op::RopeKv => 256,
    };
    Variant {
        op,
        weights,
        kv,
        precision,
        subgroups: matches!(op, Op::Matvec { .. }) && tier.subgroups,
        workgroup,
    }
}

impl Variant {
    /// The kernel's file under `wgsl/`.
    pub fn file(&self) -> &'static str {
        match (self.op, self.precision) {
            (Op::Matmul { .. }, Precision::CoopF16) => "ops/matmul_coop.wgsl",
            (op, _) => op.file(),
        }
    }

    /// Whether `target` can run this variant (cooperative matrices are wgpu-native only).
    pub fn runs_on(&self, target: Target) -> bool {
        self.precision != Precision::CoopF16 || target == Target::Native
    }

    /// The preprocessor defines of this variant.
    pub fn defines(&self) -> Defines {
        let mut d = Defines::new();
        let mut set = |k: &str, v: String| {
            d.insert(k.to_string(), v);
        };
        set("WG", format!("{}u", self.workgroup));
        set("SUBGROUPS", u8::from(self.subgroups).to_string());
        set("PRECISION_F16", u8::from(self.precision == Precision::F16).to_string());
        if let Some(w) = self.weights {
            set("QUANT", format!("\"{}\"", w.include()));
        }
        if let Some(kv) = self.kv {
            set("KV_F16", u8::from(kv == KvFormat::F16).to_string());
        }
        match self.op {
            Op::Glu { gelu } => set("ACT_GELU", u8::from(gelu).to_string()),
            Op::Matvec { shape, norm, epilogue } => {
                let (rows, nb) = shape.block();
                set("ROWS", format!("{rows}u"));
                set("NB", format!("{nb}u"));
                set("NORM", u8::from(norm).to_string());
                set("EPILOGUE", (epilogue as u8).to_string());
            }
            Op::Matmul { epilogue } => set("EPILOGUE", (epilogue as u8).to_string()),
            Op::Elementwise(k) => set("KIND", format!("{k:?}").to_uppercase()),
            Op::Attention { split } => set("SPLIT", u8::from(split).to_string()),
            _ => {}
        }
        d
    }

    /// A short name for logs and errors, e.g. `matvec q4_K wg64 sg`.
    pub fn name(&self) -> String {
        let epilogue = |e: Epilogue| match e {
            Epilogue::Store => "",
            Epilogue::Add => " +add",
            Epilogue::GluSilu => " +swiglu",
            Epilogue::GluGelu => " +geglu",
        };
        let mut s = match self.op {
            Op::Matvec { shape, norm, epilogue: e } => format!(
                "matvec{}{}{}",
                match shape {
                    MatvecShape::Narrow => "4",
                    MatvecShape::Wide => "16",
                    MatvecShape::Batch => "4x8",
                },
                if norm { " norm" } else { "" },
                epilogue(e)
            ),
            Op::Matmul { epilogue: e } => format!("matmul{}", epilogue(e)),
            op => format!("{op:?}").to_lowercase(),
        };
        if let Some(w) = self.weights {
            s.push_str(&format!(" {w:?}"));
        }
        if let Some(kv) = self.kv {
            s.push_str(&format!(" kv={kv:?}"));
        }
        s.push_str(&format!(" wg{}", self.workgroup));
        match self.precision {
            Precision::F32 => {}
            Precision::F16 => s.push_str(" f16"),
            Precision::CoopF16 => s.push_str(" coop f16"),
        }
        if self.subgroups {
            s.push_str(" subgroups");
        }
        s
    }
}

/// THE table: every variant the runtime may request, on any tier, sorted.
pub fn table() -> &'static [Variant] {
    static TABLE: OnceLock<Vec<Variant>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut all = Vec::new();
        for tier in Tier::ALL {
            for op in Op::all() {
                let formats: Vec<Option<WeightFormat>> = if op.reads_weights() {
                    WeightFormat::ALL.into_iter().map(Some).collect()
                } else {
                    vec![None]
                };
                let kvs: Vec<Option<KvFormat>> = if op.uses_kv() {
                    vec![Some(KvFormat::F16), Some(KvFormat::F32)]
                } else {
                    vec![None]
                };
                for &w in &formats {
                    for &kv in &kvs {
                        all.push(variant(op, w, kv, tier));
                    }
                }
            }
        }
        all.sort();
        all.dedup();
        all
    })
}
