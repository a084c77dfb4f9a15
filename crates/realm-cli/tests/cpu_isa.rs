//! The CPU instruction-set level from the command line: `--cpu-isa` and `REALM_CPU_ISA` pick
//! it, `realm bench` and `realm info --devices` report it, and a level this CPU lacks or an
//! unknown name is a clear error, not a silent fallback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use realm_runtime::CpuIsa;
use realm_testdata::{SMOLLM2, model};

fn realm(args: &[&str], env: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_realm"));
    c.args(args).env_remove("REALM_CPU_ISA");
    if let Some(v) = env {
        c.env("REALM_CPU_ISA", v);
    }
    c.output().unwrap()
}

fn bench_isa(flag: Option<&str>, env: Option<&str>) -> Result<String, String> {
    let m = model(SMOLLM2);
    let mut args = vec!["bench", m.to_str().unwrap(), "-p", "8", "-n", "2", "-r", "1", "--json"];
    if let Some(f) = flag {
        args.extend(["--cpu-isa", f]);
    }
    let out = realm(&args, env);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(v["cpu_isa"].as_str().unwrap().to_string())
}

#[test]
fn every_level_this_cpu_runs_is_chosen_and_reported() {
    assert_eq!(bench_isa(None, None).unwrap(), CpuIsa::best().name());
    for level in CpuIsa::available() {
        assert_eq!(bench_isa(Some(level.name()), None).unwrap(), level.name());
        assert_eq!(bench_isa(None, Some(level.name())).unwrap(), level.name());
    }
    // The flag wins over the environment.
    assert_eq!(bench_isa(Some("portable"), Some(CpuIsa::best().name())).unwrap(), "portable");
}

#[test]
fn unknown_or_missing_levels_are_errors() {
    let e = bench_isa(Some("avx9"), None).unwrap_err();
    assert!(e.contains("avx9") && e.contains("avx512-vnni"), "{e}");
    let e = bench_isa(None, Some("avx9")).unwrap_err();
    assert!(e.contains("avx9"), "{e}");
    for level in CpuIsa::ALL.into_iter().filter(|l| !l.supported()) {
        let e = bench_isa(Some(level.name()), None).unwrap_err();
        assert!(e.contains(level.name()) && e.contains("this CPU runs"), "{e}");
    }
}

#[test]
fn info_devices_lists_the_levels() {
    let out = realm(&["info", "--devices", "--json"], Some("avx2"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let levels: Vec<&str> =
        v["cpu"]["isa_levels"].as_array().unwrap().iter().filter_map(|l| l.as_str()).collect();
    let want: Vec<&str> = CpuIsa::available().into_iter().map(CpuIsa::name).collect();
    assert_eq!(levels, want);
    let expected = if CpuIsa::Avx2.supported() { "avx2" } else { "none" };
    assert_eq!(v["cpu"]["isa"], expected);
}
