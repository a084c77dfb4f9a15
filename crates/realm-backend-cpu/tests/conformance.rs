//! The conformance suite (realm-conformance) on the CPU backend's fast paths: Auto mode on 1
//! and 2 threads, Portable mode, and the scalar reference against itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_backend_cpu::{CpuBackend, CpuConfig, CpuIsa, CpuMode};

fn conforms(mode: CpuMode, threads: usize) {
    conforms_at(mode, threads, None);
}

fn conforms_at(mode: CpuMode, threads: usize, isa: Option<CpuIsa>) {
    let cpu = CpuBackend::try_new(CpuConfig { threads, mode, isa }).unwrap();
    let report = realm_conformance::run_report(&cpu);
    let lines: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(lines.is_empty(), "{mode:?} {isa:?} × {threads} threads:\n{}", lines.join("\n"));
    assert!(report.measured.len() > 100, "only {} comparisons ran", report.measured.len());
}

/// Every instruction-set level this CPU runs below its best (the best is `auto_*` above).
#[test]
fn every_lower_isa_level_two_threads() {
    for level in CpuIsa::available() {
        if level != CpuIsa::best() {
            conforms_at(CpuMode::Auto, 2, Some(level));
        }
    }
}

#[test]
fn auto_one_thread() {
    conforms(CpuMode::Auto, 1);
}

#[test]
fn auto_two_threads() {
    conforms(CpuMode::Auto, 2);
}

#[test]
fn portable_two_threads() {
    conforms(CpuMode::Portable, 2);
}

#[test]
fn scalar_matches_itself_exactly() {
    let cpu =
        CpuBackend::new(CpuConfig { threads: 1, mode: CpuMode::Scalar, ..Default::default() });
    let report = realm_conformance::run_report(&cpu);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for m in &report.measured {
        assert_eq!((m.error.nmse, m.error.max_rel), (0.0, 0.0), "{}", m.case);
    }
}

/// Prints the largest measured error per check next to its budget (run with
/// `--nocapture`), so the table's headroom is visible.
#[test]
fn tolerances_have_headroom() {
    let cpu = CpuBackend::new(CpuConfig { threads: 2, mode: CpuMode::Auto, ..Default::default() });
    let report = realm_conformance::run_report(&cpu);
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
    assert!(report.failures.is_empty());
}
