//! What an adapter offers and which tier the backend would choose on it, with the reasons:
//! `realm info --devices` prints this, and [`crate::WgpuBackend::new`] uses the same choice.

use realm_shaders::Tier;

use crate::WgpuConfig;

/// One adapter as wgpu sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterReport {
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl or BrowserWebGpu.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    pub driver: String,
    /// The features Realm can use, present or not: `shader-f16`, `subgroups`, `timestamp-query`.
    pub features: Vec<(&'static str, bool)>,
    /// Key limits as `(name, value)`.
    pub limits: Vec<(&'static str, u64)>,
    /// The tier [`crate::WgpuBackend::new`] with `WgpuConfig::default()` would choose.
    pub tier: Tier,
    /// Why, a line per choice.
    pub reasons: Vec<String>,
}

/// Every adapter wgpu finds (natively every backend compiled in; in the browser the one
/// `navigator.gpu` gives). Empty when there is none.
pub async fn adapters() -> Vec<AdapterReport> {
    #[cfg(target_arch = "wasm32")]
    if !wgpu::util::is_browser_webgpu_supported().await {
        return Vec::new();
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapters = instance.enumerate_adapters(wgpu::Backends::PRIMARY).await;
    adapters.iter().map(|a| report(a, WgpuConfig::default())).collect()
}

pub(crate) fn report(adapter: &wgpu::Adapter, config: WgpuConfig) -> AdapterReport {
    let info = adapter.get_info();
    let f = adapter.features();
    let l = adapter.limits();
    let (tier, reasons) = choose_tier(config, f, &info, coop_f16(adapter));
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        features: vec![
            ("shader-f16", f.contains(wgpu::Features::SHADER_F16)),
            ("subgroups", f.contains(wgpu::Features::SUBGROUP)),
            ("timestamp-query", f.contains(wgpu::Features::TIMESTAMP_QUERY)),
            ("cooperative-matrix 16x16x16 f16->f32", coop_f16(adapter)),
        ],
        limits: vec![
            ("max_storage_buffer_binding_size", l.max_storage_buffer_binding_size),
            ("max_buffer_size", l.max_buffer_size),
            ("max_compute_workgroup_storage_size", u64::from(l.max_compute_workgroup_storage_size)),
            (
                "max_compute_invocations_per_workgroup",
                u64::from(l.max_compute_invocations_per_workgroup),
            ),
            (
                "max_compute_workgroups_per_dimension",
                u64::from(l.max_compute_workgroups_per_dimension),
            ),
            (
                "max_storage_buffers_per_shader_stage",
                u64::from(l.max_storage_buffers_per_shader_stage),
            ),
            ("subgroup_min_size", u64::from(info.subgroup_min_size)),
            ("subgroup_max_size", u64::from(info.subgroup_max_size)),
        ],
        tier,
        reasons,
    }
}

/// Whether the adapter multiplies 16 × 16 f16 cooperative matrices into f32 ones within a
/// subgroup (wgpu's native `EXPERIMENTAL_COOPERATIVE_MATRIX`; never in the browser).
pub(crate) fn coop_f16(adapter: &wgpu::Adapter) -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = adapter;
        false
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use wgpu::CooperativeScalarType as S;
        adapter.features().contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            && adapter.cooperative_matrix_properties().iter().any(|p| {
                (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                    && p.ab_type == S::F16
                    && p.cr_type == S::F32
            })
    }
}

/// The tier `config` and the adapter allow, and a line per choice saying why. `coop`: the
/// adapter has the cooperative matrices [`coop_f16`] looks for.
pub(crate) fn choose_tier(
    config: WgpuConfig,
    features: wgpu::Features,
    info: &wgpu::AdapterInfo,
    coop: bool,
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
    // The cooperative-matrix kernel assumes subgroups of exactly 32 (4 per workgroup of 128).
    let sg32 = info.subgroup_min_size == 32 && info.subgroup_max_size == 32;
    let use_coop = config.allow_coop && coop && f16 && sg32;
    details.push(match (coop, config.allow_coop) {
        _ if use_coop => "cooperative matrices: on (experimental): quantized prefill matmuls \
                          multiply f16 tiles with 16×16×16 cooperative matrices"
            .into(),
        (false, _) => "cooperative matrices: off (none on this adapter)".into(),
        (true, false) => "cooperative matrices: off (experimental and not verified on \
                          hardware yet; REALM_WGPU_COOP=1 turns them on)"
            .into(),
        (true, true) if !f16 => "cooperative matrices: off (they need shader-f16)".into(),
        (true, true) => format!(
            "cooperative matrices: off (subgroups are {}..{} wide, the kernel needs 32)",
            info.subgroup_min_size, info.subgroup_max_size
        ),
    });
    details.push(
        if use_coop {
            "kernels: matvec for ≤ 16 rows (8 rows per workgroup above 4), 64×64 \
             cooperative-matrix tiles above (32×32 tiled matmul for float weights); paged \
             attention splits the key positions of a step of few rows (< 1024 head × row \
             pairs, spans ≥ 128) and merges; weights read as GGUF blocks in place"
        } else {
            "kernels: matvec for ≤ 16 rows (8 rows per workgroup above 4), 32×32 tiled matmul \
             above; paged attention splits the key positions of a step of few rows (< 1024 \
             head × row pairs, spans ≥ 128) and merges; weights read as GGUF blocks in place"
        }
        .into(),
    );
    (Tier { f16, subgroups, coop: use_coop }, details)
}
