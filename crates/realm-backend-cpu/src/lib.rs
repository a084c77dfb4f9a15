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
//! let cpu = CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Auto });
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
}

/// The CPU backend.
pub struct CpuBackend {
    mode: CpuMode,
    isa: Isa,
    /// Set where the CPU has AVX-512 VNNI (in `Auto` mode): weights are repacked at upload.
    #[cfg(target_arch = "x86_64")]
    vnni: Option<isa::Vnni512Token>,
    pool: ThreadPool,
    /// The last quantized activations (q, k and v read the same rows).
    acts: matmul::ActCache,
}

impl CpuBackend {
    /// A backend with `config`'s mode and threads (workers start now and park when idle).
    pub fn new(config: CpuConfig) -> Self {
        let threads = match (config.mode, config.threads) {
            (CpuMode::Scalar, _) => 1,
            (_, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (_, t) => t,
        };
        let isa = match config.mode {
            CpuMode::Auto => Isa::detect(),
            CpuMode::Scalar | CpuMode::Portable => Isa::Portable,
        };
        Self {
            mode: config.mode,
            isa,
            #[cfg(target_arch = "x86_64")]
            vnni: match config.mode {
                CpuMode::Auto => isa::Vnni512Token::detect(),
                CpuMode::Scalar | CpuMode::Portable => None,
            },
            pool: ThreadPool::new(threads),
            acts: matmul::ActCache::default(),
        }
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
        d.push(self.isa.describe());
        #[cfg(target_arch = "x86_64")]
        if self.vnni.is_some() {
            d.push(
                "avx512-vnni: q4_0,q4_1,q5_0,q5_1,q8_0,q4_K,q6_K weights repacked in 16-row panels"
                    .into(),
            );
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
