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

/// The instruction-set level of the CPU backend's fast paths, lowest first. The backend runs
/// the best level the CPU has unless told a lower one ([`crate::CpuConfig::isa`], or the
/// environment variable `REALM_CPU_ISA` read by [`CpuIsa::from_env`]), so any machine can
/// measure and test every level it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuIsa {
    /// Plain Rust, auto-vectorized for whatever the build targets (the path of aarch64, and
    /// of wasm32 without simd128).
    Portable,
    /// x86_64 AVX2 + FMA + F16C: weights in 8-row panels, `vpmaddubsw` int8 dot products.
    Avx2,
    /// AVX2 plus a 256-bit `vpdpbusd` (AVX-VNNI; or AVX-512 VNNI with VL, which has the same
    /// instruction): weights in 8-row panels.
    AvxVnni,
    /// AVX-512 F/BW/VL with VNNI: weights in 16-row panels, the AVX-512 attention kernel.
    Avx512Vnni,
}

impl CpuIsa {
    /// Every level, lowest first.
    pub const ALL: [CpuIsa; 4] = [Self::Portable, Self::Avx2, Self::AvxVnni, Self::Avx512Vnni];

    /// The name `REALM_CPU_ISA` takes: `portable`, `avx2`, `avx-vnni` or `avx512-vnni`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::AvxVnni => "avx-vnni",
            Self::Avx512Vnni => "avx512-vnni",
        }
    }

    /// Whether this CPU can run the level (`Portable` always).
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c");
            let vnni512 = avx2
                && has!("avx512f")
                && has!("avx512bw")
                && has!("avx512vl")
                && has!("avx512vnni");
            match self {
                Self::Portable => true,
                Self::Avx2 => avx2,
                Self::AvxVnni => avx2 && has!("avxvnni") || vnni512,
                Self::Avx512Vnni => vnni512,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        matches!(self, Self::Portable)
    }

    /// The best level this CPU runs.
    pub fn best() -> Self {
        Self::ALL.into_iter().rev().find(|l| l.supported()).unwrap_or(Self::Portable)
    }

    /// The levels this CPU runs, lowest first.
    pub fn available() -> Vec<Self> {
        Self::ALL.into_iter().filter(|l| l.supported()).collect()
    }

    /// `Ok(self)` if this CPU runs the level, else an error naming what it lacks and what it has.
    pub fn check(self) -> realm_core::Result<Self> {
        if self.supported() {
            return Ok(self);
        }
        let have: Vec<&str> = Self::available().into_iter().map(Self::name).collect();
        Err(realm_core::CoreError::Unsupported {
            op: "cpu instruction set",
            what: format!("{} (this CPU runs {})", self.name(), have.join(", ")),
            backend: "cpu",
        })
    }

    /// The level asked for by the environment variable `REALM_CPU_ISA`: `None` where unset or
    /// empty, an error where it names no level or one this CPU lacks.
    pub fn from_env() -> realm_core::Result<Option<Self>> {
        match std::env::var("REALM_CPU_ISA") {
            Ok(v) if !v.trim().is_empty() => v.parse::<Self>().and_then(Self::check).map(Some),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Display for CpuIsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CpuIsa {
    type Err = realm_core::CoreError;

    fn from_str(s: &str) -> realm_core::Result<Self> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|l| l.name() == t || (t == "avx512" && *l == Self::Avx512Vnni))
            .ok_or_else(|| realm_core::CoreError::Unsupported {
                op: "cpu instruction set",
                what: format!("{s:?} (known: portable, avx2, avx-vnni, avx512-vnni)"),
                backend: "cpu",
            })
    }
}

/// The panel kernel a level runs (x86_64), made only from a level this CPU supports.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PanelKernel {
    /// 16-row panels, AVX-512 VNNI.
    Vnni512(Vnni512Token),
    /// 8-row panels with the given 256-bit dot product.
    P8(Avx2Token, crate::matmul::panel8::Dot),
}

#[cfg(target_arch = "x86_64")]
impl PanelKernel {
    /// The kernel of `level`, `None` for `Portable` or a level this CPU lacks.
    pub(crate) fn of(level: CpuIsa) -> Option<Self> {
        use crate::matmul::panel8::Dot;
        if !level.supported() {
            return None;
        }
        let avx2 = Avx2Token(());
        Some(match level {
            CpuIsa::Portable => return None,
            CpuIsa::Avx2 => Self::P8(avx2, Dot::Avx2),
            CpuIsa::AvxVnni if std::is_x86_feature_detected!("avxvnni") => {
                Self::P8(avx2, Dot::VnniVex)
            }
            CpuIsa::AvxVnni => Self::P8(avx2, Dot::VnniEvex),
            CpuIsa::Avx512Vnni => Self::Vnni512(Vnni512Token::detect()?),
        })
    }

    /// Weight rows per panel.
    pub(crate) fn width(self) -> usize {
        match self {
            Self::Vnni512(_) => crate::matmul::vnni::PANEL,
            Self::P8(..) => crate::matmul::panel8::PANEL,
        }
    }

    /// A line for `BackendInfo::details`.
    pub(crate) fn describe(self) -> &'static str {
        use crate::matmul::panel8::Dot;
        match self {
            Self::Vnni512(_) => "16-row panels, avx512 vpdpbusd",
            Self::P8(_, Dot::Avx2) => "8-row panels, avx2 vpmaddubsw",
            Self::P8(_, Dot::VnniVex) => "8-row panels, avx-vnni vpdpbusd",
            Self::P8(_, Dot::VnniEvex) => "8-row panels, 256-bit vpdpbusd (avx512-vl encoding)",
        }
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

    /// The SIMD level the non-panel paths of `level` run (`level` supported by this CPU). The
    /// levels are x86_64's: elsewhere (wasm32's simd128 is chosen at compile time, aarch64 has
    /// only the portable code) the backend runs what [`Self::detect`] finds.
    pub(crate) fn of(level: CpuIsa) -> Self {
        match level {
            #[cfg(target_arch = "x86_64")]
            CpuIsa::Portable => Self::Portable,
            _ => Self::detect(),
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::CpuIsa;

    /// The levels are x86_64's: wasm32 keeps its simd128 kernels at every level it has.
    #[test]
    fn other_architectures_keep_their_compile_time_simd() {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        assert!(matches!(super::Isa::of(CpuIsa::best()), super::Isa::Simd128));
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(super::Isa::of(CpuIsa::Portable), super::Isa::Portable));
        assert_eq!(super::Isa::of(CpuIsa::best()), super::Isa::detect());
    }

    #[test]
    fn levels_parse_by_name_and_unknown_names_are_errors() {
        for l in CpuIsa::ALL {
            assert_eq!(l.name().parse::<CpuIsa>().unwrap(), l);
            assert_eq!(l.name().to_uppercase().replace('-', "_").parse::<CpuIsa>().unwrap(), l);
        }
        let e = "avx1024".parse::<CpuIsa>().unwrap_err().to_string();
        assert!(e.contains("\"avx1024\"") && e.contains("avx512-vnni"), "{e}");
    }

    #[test]
    fn the_cpu_runs_its_best_level_and_everything_below_portable_is_there() {
        let have = CpuIsa::available();
        assert_eq!(have.first(), Some(&CpuIsa::Portable));
        assert_eq!(have.last(), Some(&CpuIsa::best()));
        for l in CpuIsa::ALL {
            match l.check() {
                Ok(x) => assert!(x == l && have.contains(&l)),
                Err(e) => {
                    assert!(!have.contains(&l));
                    let e = e.to_string();
                    assert!(e.contains(l.name()) && e.contains("this CPU runs portable"), "{e}");
                }
            }
        }
    }
}
