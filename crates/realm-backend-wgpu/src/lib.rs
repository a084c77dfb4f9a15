//! realm-backend-wgpu: [`realm_core::Backend`] on WebGPU through wgpu — Vulkan, Metal or DX12
//! natively, the browser's WebGPU on wasm32.
//!
//! - **Probe.** [`WgpuBackend::new`] picks an adapter, reads its features and limits and
//!   chooses a [`Tier`] (f16 tiles in quantized matmuls with `shader-f16`, subgroup reductions
//!   in matvec with `subgroups`); [`realm_core::Backend::info`] reports the choice and why. The f32,
//!   no-subgroup baseline always exists; [`WgpuConfig`] can force it.
//! - **Weights** stay GGUF blocks (the WGSL quant includes read them in place), split at row
//!   boundaries where a tensor exceeds the largest storage binding.
//! - **Recording.** Every op is recorded into one command encoder (a compute pass per op);
//!   [`realm_core::Backend::submit`] sends it. Per-op parameters go to a uniform arena; activations come
//!   from a buffer pool; pipelines are cached by [`realm_shaders::Variant`].
//! - **Readback** ([`realm_core::Backend::read`]) submits what is recorded with a copy and awaits the map.
//! - **Errors.** wgpu reports validation errors, out-of-memory and device loss through
//!   callbacks; they are kept and returned as [`CoreError`]s by the next op, submit or read.
//!   Nothing here panics on a device error.

mod backend;
mod gpu;
mod readback;
mod tensor;
mod weight;

pub use realm_shaders::Tier;
pub use tensor::{WgpuKv, WgpuTensor};
pub use weight::WgpuWeight;

use realm_core::{CoreError, Result};

use gpu::Gpu;

/// What the backend may use beyond the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WgpuConfig {
    /// Use `shader-f16` where the adapter has it.
    pub allow_f16: bool,
    /// Use `subgroups` where the adapter has it.
    pub allow_subgroups: bool,
    /// Largest buffer of a split weight, if smaller than the device's largest storage
    /// binding (which is always the cap): tests use it to exercise splitting.
    pub weight_chunk_bytes: Option<u64>,
}

impl Default for WgpuConfig {
    fn default() -> Self {
        Self { allow_f16: true, allow_subgroups: true, weight_chunk_bytes: None }
    }
}

impl WgpuConfig {
    /// The f32, no-subgroup baseline whatever the adapter offers.
    pub fn baseline() -> Self {
        Self { allow_f16: false, allow_subgroups: false, weight_chunk_bytes: None }
    }
}

/// The WebGPU backend.
pub struct WgpuBackend {
    gpu: Gpu,
}

fn no_device(detail: String) -> CoreError {
    CoreError::Backend { op: "wgpu init", detail }
}

impl WgpuBackend {
    /// Finds an adapter (high performance preferred), probes it and opens a device.
    /// Errors (never panics) when there is no adapter or the device cannot be opened.
    pub async fn new(config: WgpuConfig) -> Result<Self> {
        // Without `navigator.gpu` (Node, older browsers) creating a WebGPU instance traps with
        // a bare `unreachable`: probe first and return an error instead.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(no_device("this browser has no WebGPU (navigator.gpu is missing)".into()));
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| no_device(format!("no WebGPU adapter: {e}")))?;
        let info = adapter.get_info();
        let features = adapter.features();
        let limits = adapter.limits();
        let (tier, mut details) = choose_tier(config, features, &info);
        let mut required = wgpu::Features::empty();
        if tier.f16 {
            required |= wgpu::Features::SHADER_F16;
        }
        if tier.subgroups {
            required |= wgpu::Features::SUBGROUP;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("realm"),
                required_features: required,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| no_device(format!("requesting a device from {}: {e}", info.name)))?;
        let name = format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend);
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
        let mut gpu = Gpu::new(device, queue, tier, name, details);
        if let Some(cap) = config.weight_chunk_bytes {
            gpu.weight_chunk = gpu.weight_chunk.min(cap.max(4));
            gpu.details
                .push(format!("weights split into buffers of at most {} bytes", gpu.weight_chunk));
        }
        Ok(Self { gpu })
    }

    /// The tier in use.
    pub fn tier(&self) -> Tier {
        self.gpu.tier
    }
}

/// The tier `config` and the adapter allow, and a line per choice saying why.
fn choose_tier(
    config: WgpuConfig,
    features: wgpu::Features,
    info: &wgpu::AdapterInfo,
) -> (Tier, Vec<String>) {
    let mut details = Vec::new();
    let has_f16 = features.contains(wgpu::Features::SHADER_F16);
    let f16 = config.allow_f16 && has_f16;
    details.push(match (has_f16, config.allow_f16) {
        (true, true) => "f16: on (shader-f16): quantized matmuls stage tiles in f16".into(),
        (true, false) => "f16: off (disabled by configuration): f32 tiles".into(),
        (false, _) => "f16: off (no shader-f16 on this adapter): f32 tiles".into(),
    });
    let has_sg = features.contains(wgpu::Features::SUBGROUP);
    let subgroups = config.allow_subgroups && has_sg;
    details.push(match (has_sg, config.allow_subgroups) {
        (true, true) => format!(
            "subgroups: on (subgroup size {}..{}): matvec reduces with subgroupAdd",
            info.subgroup_min_size, info.subgroup_max_size
        ),
        (true, false) => {
            "subgroups: off (disabled by configuration): workgroup-memory reductions".into()
        }
        (false, _) => {
            "subgroups: off (no subgroups on this adapter): workgroup-memory reductions".into()
        }
    });
    details.push(
        "kernels: matvec for ≤ 4 rows, 32×32 tiled matmul above; attention splits decode over \
         key positions (≥ 128) and merges; weights read as GGUF blocks in place"
            .into(),
    );
    (Tier { f16, subgroups }, details)
}
