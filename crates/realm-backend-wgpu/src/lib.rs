//! realm-backend-wgpu: [`realm_core::Backend`] on WebGPU through wgpu — Vulkan, Metal or DX12
//! natively, the browser's WebGPU on wasm32.
//!
//! - **Probe.** [`WgpuBackend::new`] picks an adapter, reads its features and limits and
//!   chooses a [`Tier`] (f16 tiles in quantized matmuls with `shader-f16`, subgroup reductions
//!   in matvec with `subgroups`); [`realm_core::Backend::info`] reports the choice and why. The f32,
//!   no-subgroup baseline always exists; [`WgpuConfig`] can force it.
//! - **Weights** stay GGUF blocks (the WGSL quant includes read them in place), split at row
//!   boundaries where a tensor exceeds the largest storage binding.
//! - **Recording.** Every op is recorded into one command encoder, the dispatches between
//!   copies in one compute pass (a pass per op when profiling); [`realm_core::Backend::submit`]
//!   sends it. Per-op parameters go to a uniform arena written once per submit; activations
//!   come from a buffer pool; pipelines are cached by [`realm_shaders::Variant`] and bind groups
//!   are reused from one step to the next.
//! - **Readback** ([`realm_core::Backend::read`]) submits what is recorded with a copy and awaits the map.
//! - **Errors.** wgpu reports validation errors, out-of-memory and device loss through
//!   callbacks; they are kept and returned as [`CoreError`]s by the next op, submit or read.
//!   Nothing here panics on a device error.

mod backend;
mod gpu;
mod probe;
mod profile;
mod readback;
mod rows;
mod tensor;
mod weight;

pub use probe::{AdapterReport, adapters};
pub use realm_shaders::Tier;
pub use rows::WgpuRows;
pub use tensor::{WgpuKv, WgpuTensor};
pub use weight::WgpuWeight;

use realm_core::{CoreError, HostStat, OpStat, Result};

use gpu::Gpu;

/// What the backend may use beyond the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WgpuConfig {
    /// Use `shader-f16` where the adapter has it.
    pub allow_f16: bool,
    /// Use `subgroups` where the adapter has it.
    pub allow_subgroups: bool,
    /// Use cooperative matrices (tensor cores) in prefill matmuls where the adapter has them
    /// natively. Off by default: wgpu marks the feature experimental, and the kernel has not
    /// yet run on hardware that has it (`REALM_WGPU_COOP=1` turns it on in the runtime).
    pub allow_coop: bool,
    /// Largest buffer of a split weight, if smaller than the device's largest storage
    /// binding (which is always the cap): tests use it to exercise splitting.
    pub weight_chunk_bytes: Option<u64>,
    /// Largest activation buffer, if smaller than the device's largest storage binding: tests
    /// use it to exercise model code that splits work under [`realm_core::Backend::max_tensor_bytes`].
    pub max_tensor_bytes: Option<u64>,
    /// Weight rows from which decode matvecs take the wide variant (16 rows per workgroup);
    /// `None`: 2048 on a GPU, every matrix on a CPU adapter. Tests set it to cover both.
    pub matvec_wide_from: Option<usize>,
    /// Time every op with timestamp queries (needs `timestamp-query`; natively only, since
    /// each submit waits for its timestamps). See [`WgpuBackend::profile`].
    pub profile: bool,
}

impl Default for WgpuConfig {
    fn default() -> Self {
        Self {
            allow_f16: true,
            allow_subgroups: true,
            allow_coop: false,
            weight_chunk_bytes: None,
            max_tensor_bytes: None,
            matvec_wide_from: None,
            profile: false,
        }
    }
}

impl WgpuConfig {
    /// The f32, no-subgroup baseline whatever the adapter offers.
    pub fn baseline() -> Self {
        Self { allow_f16: false, allow_subgroups: false, allow_coop: false, ..Self::default() }
    }
}

/// Weight rows from which matvec uses its wide variant (16 rows per workgroup instead of 4)
/// on a GPU: enough workgroups remain to fill the device, and each reads the activations for
/// 4× the weights. CPU adapters (lavapipe, SwiftShader) always take it: there the work per
/// workgroup dominates.
const MATVEC_WIDE_FROM: usize = 2048;

/// The WebGPU backend.
pub struct WgpuBackend {
    gpu: Gpu,
    /// Why there is no profile, when profiling was asked for and is unavailable.
    profile_missing: Option<String>,
}

fn no_device(detail: String) -> CoreError {
    CoreError::NoAdapter { detail }
}

impl WgpuBackend {
    /// Finds an adapter (high performance preferred), probes it and opens a device.
    /// Errors (never panics) when there is no adapter or the device cannot be opened.
    pub async fn new(config: WgpuConfig) -> Result<Self> {
        // Without `navigator.gpu` (Node, older browsers) creating a WebGPU instance traps with
        // a bare `unreachable`: probe first and return an error instead.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(CoreError::NoAdapter {
                detail: "this browser has no WebGPU (navigator.gpu is missing)".into(),
            });
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| CoreError::NoAdapter {
                detail: if cfg!(target_arch = "wasm32") {
                    e.to_string()
                } else {
                    format!(
                        "{e} (without a GPU, install Mesa's software Vulkan driver: \
                         apt-get install mesa-vulkan-drivers libvulkan1)"
                    )
                },
            })?;
        let info = adapter.get_info();
        let features = adapter.features();
        let limits = adapter.limits();
        let (tier, mut details) =
            probe::choose_tier(config, features, &info, probe::coop_f16(&adapter));
        let has_timestamps = features.contains(wgpu::Features::TIMESTAMP_QUERY);
        let profile_missing = match (config.profile, has_timestamps) {
            (false, _) => None,
            _ if cfg!(target_arch = "wasm32") => {
                Some("per-op GPU timing is not available in the browser build".to_string())
            }
            (true, false) => {
                Some(format!("{} has no timestamp-query feature: no per-op GPU times", info.name))
            }
            (true, true) => None,
        };
        let profiling = config.profile && profile_missing.is_none();
        let mut required = wgpu::Features::empty();
        if profiling {
            required |= wgpu::Features::TIMESTAMP_QUERY;
        }
        if tier.f16 {
            required |= wgpu::Features::SHADER_F16;
        }
        if tier.subgroups {
            required |= wgpu::Features::SUBGROUP;
        }
        #[cfg(not(target_arch = "wasm32"))]
        if tier.coop {
            required |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let experimental = if tier.coop {
            // SAFETY: an opt-in (`WgpuConfig::allow_coop`) to wgpu's experimental cooperative
            // matrices, which wgpu asks its users to acknowledge; used only by the prefill
            // matmul variant that the conformance suite checks against the CPU oracle.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("realm"),
                required_features: required,
                required_limits: limits.clone(),
                experimental_features: experimental,
                ..Default::default()
            })
            .await
            .map_err(|e| no_device(format!("requesting a device from {}: {e}", info.name)))?;
        // Browsers do not tell pages the adapter's name.
        let adapter = if info.name.is_empty() { "WebGPU adapter" } else { info.name.as_str() };
        let name = format!("{adapter} ({:?}, {:?})", info.device_type, info.backend);
        details.insert(
            0,
            format!(
                "limits: storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations",
                limits.max_storage_buffer_binding_size >> 20,
                limits.max_buffer_size >> 20,
                limits.max_compute_workgroup_storage_size >> 10,
                limits.max_compute_invocations_per_workgroup
            ),
        );
        if profiling {
            details.push(
                "profiling: every op timed with timestamp queries (serializes submits)".into(),
            );
        }
        let mut gpu = Gpu::new(device, queue, tier, name, details);
        let cpu_adapter = info.device_type == wgpu::DeviceType::Cpu;
        gpu.matvec_wide_from =
            config.matvec_wide_from.unwrap_or(if cpu_adapter { 0 } else { MATVEC_WIDE_FROM });
        gpu.details.push(match gpu.matvec_wide_from {
            0 => {
                "matvec: 16 rows per workgroup (a CPU adapter: work per workgroup dominates)".into()
            }
            usize::MAX => "matvec: 4 rows per workgroup".into(),
            n => format!("matvec: 16 rows per workgroup for matrices of {n} rows or more, 4 below"),
        });
        if profiling {
            gpu.profiler = Some(profile::Profiler::new(&gpu.device, &gpu.queue));
        }
        if let Some(cap) = config.max_tensor_bytes {
            gpu.tensor_cap = cap.max(256);
            gpu.details.push(format!("activations of at most {} bytes", gpu.tensor_cap));
        }
        if let Some(cap) = config.weight_chunk_bytes {
            gpu.weight_chunk = gpu.weight_chunk.min(cap.max(4));
            gpu.details
                .push(format!("weights split into buffers of at most {} bytes", gpu.weight_chunk));
        }
        Ok(Self { gpu, profile_missing })
    }

    /// The tier in use.
    pub fn tier(&self) -> Tier {
        self.gpu.tier
    }

    /// What recording the GPU work has cost the host so far.
    pub fn host_stats(&self) -> HostStat {
        self.gpu.host_stats()
    }

    /// GPU time per op so far (slowest first) and the number of passes that ran untimed,
    /// or why there is none (profiling not asked for, or no `timestamp-query`).
    pub fn profile(&self) -> Result<(Vec<OpStat>, u64), String> {
        match (&self.gpu.profiler, &self.profile_missing) {
            (Some(p), _) => p.report().map_err(|e| e.to_string()),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Err("profiling was not enabled (REALM_PROFILE=1)".into()),
        }
    }
}
