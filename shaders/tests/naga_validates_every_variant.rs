//! Every variant of the table, expanded for both targets, parses and validates with naga (no
//! GPU needed), with exactly the capabilities the variant declares it needs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use naga::valid::{Capabilities, ValidationFlags, Validator};
use realm_shaders::{
    KvFormat, Op, Precision, Target, Tier, Variant, WeightFormat, source, table, variant,
};

fn capabilities(v: &Variant) -> Capabilities {
    let mut caps = Capabilities::empty();
    if v.precision != Precision::F32 {
        caps |= Capabilities::SHADER_FLOAT16;
    }
    if v.precision == Precision::CoopF16 {
        caps |= Capabilities::COOPERATIVE_MATRIX;
    }
    if v.subgroups {
        caps |= Capabilities::SUBGROUP;
    }
    caps
}

fn validate(v: &Variant, wgsl: &str, caps: Capabilities) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| e.emit_to_string(wgsl))?;
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| format!("{}: {}", v.name(), e.emit_to_string(wgsl)))?;
    // What wgpu's Vulkan backend will do with it: naga writes SPIR-V (cooperative matrices
    // are the least travelled path, and no adapter here runs them).
    naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
        .map_err(|e| format!("{}: SPIR-V: {e}", v.name()))?;
    Ok(())
}

#[test]
fn every_variant_validates_natively() {
    let mut failures = Vec::new();
    for v in table() {
        let wgsl = source(v, Target::Native).unwrap();
        if let Err(e) = validate(v, &wgsl, capabilities(v)) {
            failures.push(format!("{}:\n{e}", v.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        table().len(),
        failures.join("\n")
    );
    assert!(table().len() > 60, "only {} variants", table().len());
}

#[test]
fn variants_without_optional_features_need_no_capabilities() {
    for v in table().iter().filter(|v| v.precision == Precision::F32 && !v.subgroups) {
        let wgsl = source(v, Target::Native).unwrap();
        validate(v, &wgsl, Capabilities::empty()).unwrap();
    }
}

/// The browser text differs from the native one only by `enable subgroups;`, which naga
/// rejects (so it is checked here as text) and browsers require; cooperative-matrix variants
/// are refused for the browser.
#[test]
fn browser_variants_enable_subgroups() {
    for v in table() {
        let native = source(v, Target::Native).unwrap();
        if !v.runs_on(Target::Browser) {
            assert!(source(v, Target::Browser).is_err(), "{}", v.name());
            continue;
        }
        let browser = source(v, Target::Browser).unwrap();
        if v.subgroups {
            let (head, rest) = browser.split_once("enable subgroups;\n").unwrap();
            assert_eq!(format!("{head}{rest}"), native, "{}", v.name());
        } else {
            assert_eq!(browser, native, "{}", v.name());
        }
    }
}

#[test]
fn every_op_and_format_has_a_baseline_variant() {
    for op in Op::all() {
        let formats: Vec<Option<WeightFormat>> = if op.reads_weights() {
            WeightFormat::ALL.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        for w in formats {
            for kv in [KvFormat::F16, KvFormat::F32] {
                let base = variant(op, w, Some(kv), Tier::default());
                assert_eq!((base.precision, base.subgroups), (Precision::F32, false));
                assert!(table().contains(&base), "{}", base.name());
                for tier in Tier::ALL {
                    assert!(table().contains(&variant(op, w, Some(kv), tier)));
                }
            }
        }
    }
}

#[test]
fn variants_outside_the_table_are_refused() {
    let mut v = variant(Op::RmsNorm, None, None, Tier::default());
    v.workgroup = 48;
    assert!(source(&v, Target::Native).is_err());
}

#[test]
fn block_sizes_match_the_includes() {
    for w in WeightFormat::ALL {
        let text = realm_shaders::file(w.include()).unwrap();
        let (qk, bytes) = w.block();
        assert!(text.contains(&format!("const QK: u32 = {qk}u;")), "{w:?}");
        assert!(text.contains(&format!("const QBYTES: u32 = {bytes}u;")), "{w:?}");
    }
}
