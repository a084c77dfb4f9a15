//! realm-backend-cpu: the [`realm_core::Backend`] on the CPU, natively and in the browser
//! (wasm32) where WebGPU is missing.
//!
//! Two modes, chosen in [`CpuConfig`]:
//! - [`CpuMode::Scalar`]: the plain reference. Simple loops, f32 accumulation in a fixed
//!   order, weights dequantized with `realm_quant`'s reference before every dot product,
//!   one thread. It is the **oracle** every fast path (here and on other backends) is tested
//!   against; `realm-conformance` runs that comparison.
//! - [`CpuMode::Auto`]: the fast paths, chosen at run time and reported in
//!   [`realm_core::BackendInfo::details`]: 8-bit integer dot products for the common weight
//!   formats (AVX2 on x86_64, simd128 on wasm32 when built with it, plain Rust elsewhere), a
//!   dequantize-once f32 path for the rest, online-softmax attention, and a persistent thread
//!   pool ([`pool`]).
//! - [`CpuMode::Portable`]: `Auto` without architecture-specific SIMD, i.e. what aarch64
//!   (and wasm32 without simd128) runs today; elsewhere it lets tests cover that path.
//!
//! Weights are never copied: a [`CpuWeight`] keeps the `SharedBytes` (usually a memory-mapped
//! GGUF file) and a byte range, and kernels read the GGUF blocks in place.
//!
//! ```
//! use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
//! use realm_core::Backend;
//!
//! let cpu = CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Auto, ..Default::default() });
//! assert_eq!(cpu.info().name, "cpu");
//! let t = cpu.tensor(2, 3)?;
//! assert_eq!(cpu.shape(&t), (2, 3));
//! # Ok::<(), realm_core::CoreError>(())
//! ```

mod backend;
mod isa;
mod matmul;
mod ops;
pub mod pool;
mod tensor;
mod vec;

pub use isa::CpuIsa;
pub use tensor::{CpuKv, CpuTensor, CpuWeight};

use isa::Isa;
use pool::ThreadPool;

/// Which code paths the backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuMode {
    /// The single-threaded scalar reference (the oracle).
    Scalar,
    /// The fastest paths this CPU supports, detected at run time.
    #[default]
    Auto,
    /// The fast algorithms in plain Rust, without architecture-specific intrinsics.
    Portable,
}

/// How to build a [`CpuBackend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuConfig {
    /// Threads that run ops, the caller included; 0 = `std::thread::available_parallelism`.
    /// Ignored in [`CpuMode::Scalar`], and 1 on wasm32 without the `atomics` feature.
    pub threads: usize,
    pub mode: CpuMode,
    /// In [`CpuMode::Auto`], the instruction-set level to run: `None` = the environment
    /// variable `REALM_CPU_ISA` where it is set, else the best level this CPU has. A level
    /// above the CPU's is an error in [`CpuBackend::try_new`].
    pub isa: Option<CpuIsa>,
}

/// The CPU backend.
pub struct CpuBackend {
    mode: CpuMode,
    /// The instruction-set level the fast paths run (`Portable` in the other modes).
    level: CpuIsa,
    isa: Isa,
    /// The panel kernel of `level` (x86_64 from AVX2 up): weights are repacked at upload.
    #[cfg(target_arch = "x86_64")]
    panel: Option<isa::PanelKernel>,
    pool: ThreadPool,
    /// The last quantized activations (q, k and v read the same rows).
    acts: matmul::ActCache,
}

impl CpuBackend {
    /// A backend with `config`'s mode and threads (workers start now and park when idle). A
    /// level this CPU lacks (`config.isa` or `REALM_CPU_ISA`) is lowered to the best one it
    /// has at or below it, an unknown `REALM_CPU_ISA` ignored; [`Self::try_new`] refuses both.
    pub fn new(config: CpuConfig) -> Self {
        let wanted = config.isa.or_else(|| CpuIsa::from_env().ok().flatten());
        let level = match wanted {
            Some(l) => CpuIsa::ALL.into_iter().rev().find(|x| *x <= l && x.supported()),
            None => None,
        };
        Self::build(config, level.unwrap_or_else(CpuIsa::best))
    }

    /// As [`Self::new`], but a level this CPU lacks, or an unknown `REALM_CPU_ISA`, is an error
    /// (`CoreError::Unsupported`) naming the levels it has.
    pub fn try_new(config: CpuConfig) -> realm_core::Result<Self> {
        let level = match (config.mode, config.isa) {
            (CpuMode::Auto, Some(l)) => l.check()?,
            (CpuMode::Auto, None) => CpuIsa::from_env()?.unwrap_or_else(CpuIsa::best),
            _ => CpuIsa::Portable,
        };
        Ok(Self::build(config, level))
    }

    fn build(config: CpuConfig, level: CpuIsa) -> Self {
        let threads = match (config.mode, config.threads) {
            (CpuMode::Scalar, _) => 1,
            (_, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (_, t) => t,
        };
        let level = if config.mode == CpuMode::Auto { level } else { CpuIsa::Portable };
        Self {
            mode: config.mode,
            level,
            isa: Isa::of(level),
            #[cfg(target_arch = "x86_64")]
            panel: isa::PanelKernel::of(level),
            pool: ThreadPool::new(threads),
            acts: matmul::ActCache::default(),
        }
    }

    /// The instruction-set level the fast paths run (`Portable` in the scalar and portable
    /// modes).
    pub fn isa(&self) -> CpuIsa {
        self.level
    }

    /// The mode this backend was built with.
    pub fn mode(&self) -> CpuMode {
        self.mode
    }

    /// Threads that run ops (workers plus the caller).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// The CPU model, where the OS says.
    fn device() -> String {
        #[cfg(target_os = "linux")]
        if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo")
            && let Some(line) = info.lines().find(|l| l.starts_with("model name"))
            && let Some((_, name)) = line.split_once(':')
        {
            return name.trim().to_string();
        }
        std::env::consts::ARCH.to_string()
    }

    fn details(&self) -> Vec<String> {
        let mut d = vec![format!("mode: {:?}", self.mode).to_lowercase()];
        if self.mode == CpuMode::Scalar {
            d.push("scalar reference: dequantize + f32 dot, 1 thread".into());
            return d;
        }
        // The levels are x86_64's; wasm32's simd128 (chosen at build time) is the next line.
        let simd_elsewhere =
            cfg!(not(target_arch = "x86_64")) && !matches!(self.isa, Isa::Portable);
        if !simd_elsewhere {
            d.push(format!(
                "isa: {}{}",
                self.level,
                // Below the best in auto mode (portable mode is not a cap).
                if self.mode == CpuMode::Auto && self.level < CpuIsa::best() {
                    format!(" (capped; this CPU runs up to {})", CpuIsa::best())
                } else {
                    String::new()
                }
            ));
        }
        d.push(self.isa.describe());
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = self.panel {
            d.push(format!(
                "q4_0,q4_1,q5_0,q5_1,q8_0,q4_K,q5_K,q6_K weights repacked: {}",
                p.describe()
            ));
        }
        d.push(format!("threads: {}", self.pool.threads()));
        let int: Vec<&str> = matmul::INT_TYPES.iter().map(|t| t.name()).collect();
        d.push(format!(
            "matmul: int8 dot ({}) for {}; dequantize + f32 dot for other types",
            if matches!(self.isa, Isa::Portable) { "portable" } else { "simd" },
            int.join(",")
        ));
        d.push("attention: online softmax, split over KV positions (decode) or query tiles".into());
        d
    }
}
