//! Bit-exact comparison with gguf-py (`gguf.quants.dequantize` / `gguf.quants.quantize`)
//! through the committed fixtures in `tests/fixtures/quant/` (format and regeneration
//! command in its README.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use realm_quant::{GgmlType, dequantize, quantize};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/quant");

const DEQUANT_TYPES: [&str; 17] = [
    "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K", "q4_K",
    "q5_K", "q6_K", "q8_K", "iq4_nl", "iq4_xs",
];
const QUANT_TYPES: [&str; 7] = ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"];

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Dequantize,
    Quantize,
}

struct Fixture {
    kind: Kind,
    ty: GgmlType,
    blocks: Vec<u8>,
    values: Vec<f32>,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn parse(bytes: &[u8]) -> Result<Fixture, String> {
    if bytes.len() < 24 || &bytes[..4] != b"RQFX" {
        return Err("not an RQFX fixture".into());
    }
    if u32_at(bytes, 4) != 1 {
        return Err(format!("unknown version {}", u32_at(bytes, 4)));
    }
    let kind = match u32_at(bytes, 8) {
        0 => Kind::Dequantize,
        1 => Kind::Quantize,
        k => return Err(format!("unknown kind {k}")),
    };
    let id = u32_at(bytes, 12);
    let ty = GgmlType::from_u32(id).ok_or(format!("unknown type id {id}"))?;
    let n_elements = u32_at(bytes, 16) as usize;
    let n_bytes = u32_at(bytes, 20) as usize;
    if bytes.len() != 24 + n_bytes + 4 * n_elements {
        return Err(format!("length {} disagrees with the header", bytes.len()));
    }
    let blocks = bytes[24..24 + n_bytes].to_vec();
    let values = bytes[24 + n_bytes..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Ok(Fixture { kind, ty, blocks, values })
}

fn load(path: &Path) -> Fixture {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `Err` with the first differing element and a count, comparing bit patterns (so
/// `-0.0 != 0.0` and NaN payloads count).
fn compare_bits(got: &[f32], want: &[f32]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} values, expected {}", got.len(), want.len()));
    }
    let diffs: Vec<usize> =
        (0..got.len()).filter(|&i| got[i].to_bits() != want[i].to_bits()).collect();
    match diffs.first() {
        None => Ok(()),
        Some(&i) => Err(format!(
            "{} of {} values differ; first at {i}: got {:e} ({:#010x}), want {:e} ({:#010x})",
            diffs.len(),
            got.len(),
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        )),
    }
}

fn compare_bytes(got: &[u8], want: &[u8], type_size: usize) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} bytes, expected {}", got.len(), want.len()));
    }
    let diffs: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    match diffs.first() {
        None => Ok(()),
        Some(&i) => Err(format!(
            "{} of {} bytes differ; first at {i} (block {}, byte {}): got {:#04x}, want {:#04x}",
            diffs.len(),
            got.len(),
            i / type_size,
            i % type_size,
            got[i],
            want[i]
        )),
    }
}

fn check(f: &Fixture) -> Result<(), String> {
    match f.kind {
        Kind::Dequantize => {
            let mut got = vec![0.0f32; f.values.len()];
            dequantize(f.ty, &f.blocks, &mut got).map_err(|e| e.to_string())?;
            compare_bits(&got, &f.values)
        }
        Kind::Quantize => {
            let mut got = vec![0u8; f.blocks.len()];
            quantize(f.ty, &f.values, &mut got).map_err(|e| e.to_string())?;
            compare_bytes(&got, &f.blocks, f.ty.type_size())
        }
    }
}

fn path(prefix: &str, name: &str) -> PathBuf {
    Path::new(DIR).join(format!("{prefix}-{name}.bin"))
}

#[test]
fn dequantize_matches_gguf_py_bit_for_bit() {
    let mut failures = Vec::new();
    let mut n_values = 0;
    for name in DEQUANT_TYPES {
        let f = load(&path("dequant", name));
        assert_eq!(f.kind, Kind::Dequantize);
        assert_eq!(f.ty.name(), name);
        assert!(!f.values.is_empty(), "{name}: empty fixture");
        n_values += f.values.len();
        if let Err(e) = check(&f) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(n_values > 10_000, "only {n_values} values compared");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn quantize_matches_gguf_py_bit_for_bit() {
    let mut failures = Vec::new();
    for name in QUANT_TYPES {
        let f = load(&path("quantize", name));
        assert_eq!(f.kind, Kind::Quantize);
        assert_eq!(f.ty.name(), name);
        assert!(!f.blocks.is_empty(), "{name}: empty fixture");
        if let Err(e) = check(&f) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every `.bin` in the directory is one of the fixtures above, so none is silently skipped.
#[test]
fn every_fixture_file_is_checked() {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    let mut expected: Vec<String> = DEQUANT_TYPES
        .iter()
        .map(|n| format!("dequant-{n}.bin"))
        .chain(QUANT_TYPES.iter().map(|n| format!("quantize-{n}.bin")))
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

/// The type table agrees with gguf-py's `GGML_QUANT_SIZES`, except where gguf-py is stale.
#[test]
fn type_table_matches_gguf_py() {
    let text = std::fs::read_to_string(Path::new(DIR).join("gguf-py-types.tsv")).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [id, name, bs, ts] = cols[..] else { panic!("bad line {line:?}") };
        let ty = GgmlType::from_u32(id.parse().unwrap())
            .unwrap_or_else(|| panic!("gguf-py knows id {id} ({name}), realm-quant does not"));
        assert_eq!(ty.name(), name);
        assert_eq!(ty.block_size(), bs.parse::<usize>().unwrap(), "{name}");
        if ty == GgmlType::Q8_1 {
            // gguf-py 0.19.0 still has the pre-2024 f32 layout (40 bytes); ggml has 36.
            assert_eq!((ts, ty.type_size()), ("40", 36));
        } else {
            assert_eq!(ty.type_size(), ts.parse::<usize>().unwrap(), "{name}");
        }
        n += 1;
    }
    assert!(n >= 34, "only {n} types in the table");
}

#[test]
fn comparer_catches_differences() {
    assert!(compare_bits(&[1.0, 2.0], &[1.0, 2.0]).is_ok());
    assert!(compare_bits(&[1.0], &[f32::from_bits(1.0f32.to_bits() + 1)]).is_err());
    assert!(compare_bits(&[0.0], &[-0.0]).is_err());
    assert!(compare_bits(&[1.0], &[1.0, 1.0]).is_err());
    assert!(compare_bytes(&[1, 2], &[1, 3], 2).is_err());

    // A corrupted fixture must fail the check.
    let mut f = load(&path("dequant", "q4_K"));
    assert!(check(&f).is_ok());
    f.blocks[0] ^= 0x01; // low bit of the f16 super-block scale
    assert!(check(&f).is_err());
    let mut f = load(&path("quantize", "q4_0"));
    f.values[3] += 0.5;
    assert!(check(&f).is_err());
}

#[test]
fn parser_rejects_malformed_files() {
    let good = std::fs::read(path("dequant", "q8_0")).unwrap();
    assert!(parse(&good).is_ok());
    assert!(parse(&good[..good.len() - 1]).is_err());
    assert!(parse(&good[..10]).is_err());
    let mut bad = good.clone();
    bad[12] = 4; // removed type id
    assert!(parse(&bad).is_err());
}
