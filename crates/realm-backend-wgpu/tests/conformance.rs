//! The conformance suite (realm-conformance) on the wgpu backend: the adapter's best tier and
//! the f32, no-subgroup baseline. Without a GPU this runs on lavapipe (Mesa's software Vulkan:
//! `apt-get install mesa-vulkan-drivers libvulkan1`, see scripts/setup.sh). No adapter is a
//! failure, unless `REALM_SKIP_WGPU=1` says to skip (printed, never silent).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_backend_wgpu::{WgpuBackend, WgpuConfig};
use realm_core::Backend;

fn backend(config: WgpuConfig) -> Option<WgpuBackend> {
    match realm_conformance::block_on(WgpuBackend::new(config)) {
        Ok(b) => {
            let info = b.info();
            println!("{} on {}", info.name, info.device);
            for d in &info.details {
                println!("  {d}");
            }
            Some(b)
        }
        Err(e) if std::env::var("REALM_SKIP_WGPU").is_ok_and(|v| v == "1") => {
            println!("SKIPPED (REALM_SKIP_WGPU=1): no wgpu device: {e}");
            None
        }
        Err(e) => panic!(
            "no wgpu device: {e}\nInstall a Vulkan driver (lavapipe: `apt-get install -y \
             mesa-vulkan-drivers libvulkan1`, see scripts/setup.sh) or set REALM_SKIP_WGPU=1 \
             to skip the wgpu tests."
        ),
    }
}

fn conforms(config: WgpuConfig) {
    let Some(b) = backend(config) else { return };
    let report = realm_conformance::run_report(&b);
    let mut worst: Vec<(String, f64, f64)> = Vec::new();
    for m in &report.measured {
        let key = format!("{:?}", m.check);
        match worst.iter_mut().find(|w| w.0 == key) {
            Some(w) => {
                w.1 = w.1.max(m.error.nmse);
                w.2 = w.2.max(m.error.max_rel);
            }
            None => worst.push((key, m.error.nmse, m.error.max_rel)),
        }
    }
    for (check, nmse, max_rel) in &worst {
        println!("{check:<20} nmse {nmse:.2e}  max_rel {max_rel:.2e}");
    }
    let lines: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(lines.is_empty(), "{} failures:\n{}", lines.len(), lines.join("\n"));
    assert!(report.measured.len() > 100, "only {} comparisons ran", report.measured.len());
}

#[test]
fn best_tier() {
    conforms(WgpuConfig::default());
}

/// Also the narrow matvec (4 rows per workgroup), which a GPU uses for smaller matrices
/// (best_tier covers the wide one: a CPU adapter takes it everywhere).
#[test]
fn baseline_f32_no_subgroups() {
    conforms(WgpuConfig { matvec_wide_from: Some(usize::MAX), ..WgpuConfig::baseline() });
}

/// Weights split into many small buffers (a few rows each), as large tensors are split at the
/// device's largest storage binding: matmul and embed must stitch the rows back together.
#[test]
fn split_weights() {
    conforms(WgpuConfig {
        weight_chunk_bytes: Some(4096),
        matvec_wide_from: Some(usize::MAX),
        ..WgpuConfig::default()
    });
}

/// Cooperative matrices (tensor cores) in quantized prefill matmuls, where the adapter has
/// them (a real GPU through the device tool; lavapipe has none, and the test says so).
#[test]
fn cooperative_matrices_where_the_adapter_has_them() {
    let config = WgpuConfig { allow_coop: true, ..WgpuConfig::default() };
    let Some(b) = backend(config) else { return };
    if !b.tier().coop {
        println!("NOT RUN: no cooperative-matrix tier here: {}", b.info().details.join("; "));
        return;
    }
    drop(b);
    conforms(config);
}
