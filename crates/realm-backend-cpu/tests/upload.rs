//! Weights stay where they are: the backend keeps the shared bytes, never a copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuMode};
use realm_core::{Backend, CoreError, GgmlType, SharedBytes, WeightDesc, WeightLayout};

fn desc(
    bytes: &SharedBytes,
    offset: usize,
    len: usize,
    rows: usize,
    cols: usize,
    ty: GgmlType,
) -> WeightDesc {
    WeightDesc {
        name: "w".into(),
        ty,
        rows,
        cols,
        layout: WeightLayout::Matrix,
        bytes: Arc::clone(bytes),
        offset,
        len,
    }
}

#[test]
fn upload_keeps_a_reference_not_a_copy() {
    let cpu = CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Auto, ..Default::default() });
    let file: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let bytes: SharedBytes = Arc::new(file);
    // A Q8_0 [2, 64] weight at an odd offset, as tensor data in a GGUF file may be.
    let w = cpu.upload(desc(&bytes, 101, 2 * 2 * 34, 2, 64, GgmlType::Q8_0)).unwrap();
    assert!(w.shares(&bytes));
    let base = (*bytes).as_ref().as_ptr();
    assert_eq!(w.data().as_ptr(), base.wrapping_add(101));
    assert_eq!(Arc::strong_count(&bytes), 2);
    drop(w);
    assert_eq!(Arc::strong_count(&bytes), 1);
}

#[test]
fn hostile_descriptors_are_errors() {
    let cpu = CpuBackend::new(CpuConfig::default());
    let bytes: SharedBytes = Arc::new(vec![0u8; 64]);
    let bad = [
        desc(&bytes, usize::MAX, 34, 1, 32, GgmlType::Q8_0),
        desc(&bytes, 40, 34, 1, 32, GgmlType::Q8_0),
        desc(&bytes, 0, 34, usize::MAX, 32, GgmlType::Q8_0),
        desc(&bytes, 0, 34, 1, 33, GgmlType::Q8_0),
        desc(&bytes, 0, 4, 1, 1, GgmlType::I32),
    ];
    for d in bad {
        let shown = format!("{d:?}");
        assert!(cpu.upload(d).is_err(), "{shown}");
    }
    let e = cpu.upload(desc(&bytes, 0, 4, 1, 1, GgmlType::IQ2_XXS)).unwrap_err();
    assert!(matches!(e, CoreError::Unsupported { .. } | CoreError::BadWeight { .. }), "{e}");
}

#[test]
fn huge_tensors_are_an_error_not_an_abort() {
    let cpu = CpuBackend::new(CpuConfig::default());
    assert!(matches!(cpu.tensor(usize::MAX / 2, 3), Err(CoreError::OutOfMemory { .. })));
    assert!(matches!(cpu.tensor(1 << 40, 1 << 20), Err(CoreError::OutOfMemory { .. })));
}

#[test]
fn info_reports_the_chosen_paths() {
    let cpu = CpuBackend::new(CpuConfig { threads: 2, mode: CpuMode::Auto, ..Default::default() });
    let info = cpu.info();
    assert_eq!(info.name, "cpu");
    let details = info.details.join("; ");
    assert!(details.contains("threads: 2") || !cfg!(target_os = "linux"), "{details}");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(details.contains("avx2+fma+f16c"), "{details}");
    }
    let scalar =
        CpuBackend::new(CpuConfig { threads: 8, mode: CpuMode::Scalar, ..Default::default() });
    assert_eq!(scalar.threads(), 1);
    assert!(scalar.info().details.join(" ").contains("scalar"));
}

/// A level the CPU lacks is a typed error from `try_new` (and lowered by `new`); every level it
/// has is the one the backend reports running.
#[test]
fn isa_levels_are_chosen_or_refused() {
    use realm_backend_cpu::CpuIsa;
    for level in CpuIsa::ALL {
        let config = CpuConfig { threads: 1, mode: CpuMode::Auto, isa: Some(level) };
        match CpuBackend::try_new(config) {
            Ok(cpu) => {
                assert!(level.supported());
                assert_eq!(cpu.isa(), level);
                let details = cpu.info().details.join("; ");
                assert!(details.contains(&format!("isa: {level}")), "{details}");
            }
            Err(e) => {
                assert!(!level.supported());
                assert!(matches!(e, realm_core::CoreError::Unsupported { .. }), "{e}");
                assert!(CpuBackend::new(config).isa() < level);
            }
        }
    }
    // The other modes run no SIMD level at all.
    let portable =
        CpuBackend::try_new(CpuConfig { threads: 1, mode: CpuMode::Portable, isa: None });
    assert_eq!(portable.unwrap().isa(), CpuIsa::Portable);
}
