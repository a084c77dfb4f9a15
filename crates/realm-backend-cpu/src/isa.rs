//! Run-time choice of the instruction set the fast paths use (compile-time on wasm32, which
//! has no feature detection: a module either validates with simd128 or does not load).

/// The SIMD level of the fast paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Plain Rust that LLVM auto-vectorizes for whatever the build targets (SSE2 on x86_64,
    /// NEON on aarch64, simd128 on wasm32 when enabled).
    Portable,
    /// x86_64 AVX2 + FMA + F16C, detected at run time.
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2Token),
    /// wasm32 built with `-C target-feature=+simd128`: explicit 128-bit kernels.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
}

/// Proof that AVX2, FMA and F16C were detected on this CPU: only [`Isa::detect`] makes one,
/// so code holding it may call `#[target_feature(enable = "avx2,fma,f16c")]` functions.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2Token(());

/// Proof that AVX-512 F/BW/VL with VNNI (`vpdpbusd`) were detected, besides AVX2, FMA and
/// F16C: only [`Vnni512Token::detect`] makes one.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vnni512Token(());

#[cfg(target_arch = "x86_64")]
impl Vnni512Token {
    pub(crate) fn detect() -> Option<Self> {
        let all = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c");
        all.then_some(Self(()))
    }
}

impl Isa {
    /// The best level this CPU supports.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            return Self::Avx2(Avx2Token(()));
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Self::Simd128;
        #[allow(unreachable_code)]
        Self::Portable
    }

    /// A line for `BackendInfo::details`.
    pub(crate) fn describe(self) -> String {
        match self {
            Self::Portable => format!("{} portable (auto-vectorized)", std::env::consts::ARCH),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(_) => "x86_64 avx2+fma+f16c".to_string(),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Simd128 => "wasm32 simd128".to_string(),
        }
    }
}
