//! GPU adapters, opening the wgpu backend, and the CPU pool's thread hook.

#[cfg(feature = "wgpu")]
use realm_backend_wgpu::{WgpuBackend, WgpuConfig};

#[cfg(feature = "wgpu")]
use super::DeviceOptions;
#[cfg(feature = "wgpu")]
use crate::error::Result;

/// What a GPU adapter offers and the tier the wgpu backend would choose on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    /// The native API (Vulkan, Metal, Dx12, ...) or the browser's WebGPU.
    pub api: String,
    pub device_type: String,
    pub driver: String,
    /// The features Realm can use and whether the adapter has each.
    pub features: Vec<(&'static str, bool)>,
    /// Key limits as `(name, value)`.
    pub limits: Vec<(&'static str, u64)>,
    /// The tier the backend would choose, e.g. "f16 + subgroups", and why (a line per choice).
    pub tier: String,
    pub reasons: Vec<String>,
}

/// The GPU adapters the wgpu backend can see (empty when there is none).
pub async fn gpu_adapters() -> Vec<AdapterInfo> {
    #[cfg(not(feature = "wgpu"))]
    return Vec::new();
    #[cfg(feature = "wgpu")]
    realm_backend_wgpu::adapters()
        .await
        .into_iter()
        .map(|a| AdapterInfo {
            name: a.name,
            api: a.backend,
            device_type: a.device_type,
            driver: a.driver,
            features: a.features,
            limits: a.limits,
            tier: match (a.tier.f16, a.tier.subgroups) {
                (true, true) => "f16 + subgroups",
                (true, false) => "f16, no subgroups",
                (false, true) => "f32 + subgroups",
                (false, false) => "f32, no subgroups (baseline)",
            }
            .to_string(),
            reasons: a.reasons,
        })
        .collect()
}

/// Lets the CPU backend's thread pool start threads where `std::thread` cannot: the browser's
/// threads build, whose threads are Web Workers the embedder starts. Once per process.
pub fn set_cpu_thread_spawner(spawn: realm_backend_cpu::pool::Spawn) -> bool {
    realm_backend_cpu::pool::set_thread_spawner(spawn)
}

/// Opens the wgpu backend (in the browser: the page's WebGPU device, awaited on its event loop).
#[cfg(feature = "wgpu")]
pub(super) async fn open_wgpu(opts: DeviceOptions) -> Result<WgpuBackend> {
    // Cooperative matrices are opt-in while they are unverified on hardware (see WgpuConfig).
    let allow_coop = std::env::var("REALM_WGPU_COOP").is_ok_and(|v| v == "1");
    let config = WgpuConfig { profile: opts.profile, allow_coop, ..WgpuConfig::default() };
    Ok(WgpuBackend::new(config).await?)
}

/// The error of asking for wgpu in a build without it.
#[cfg(not(feature = "wgpu"))]
pub(super) fn no_wgpu() -> crate::error::RuntimeError {
    realm_core::CoreError::NoAdapter {
        detail: "this build has no WebGPU backend (the Memory64 build is CPU-only)".into(),
    }
    .into()
}
