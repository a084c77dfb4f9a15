//! `realm info` on malformed models: truncations of both real models at many offsets, bit-flipped
//! length fields, absurd counts, a v1 file, an empty file, files that are not GGUF. Each must exit
//! with status 1 and one line on stderr naming the problem (never a panic), with peak memory
//! bounded by twice the file size above the binary's own baseline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use realm_gguf::{Gguf, MappedFile};
use realm_testdata::{MODELS, model};

struct Outcome {
    code: i32,
    stderr: String,
    max_rss_kib: i64,
}

/// Run `realm info PATH`, returning exit code, stderr and the child's own peak RSS (which it
/// reports through `REALM_PEAK_RSS_FILE`).
fn info(path: &Path) -> Outcome {
    let rss_file = path.with_extension("rss");
    let out = Command::new(env!("CARGO_BIN_EXE_realm"))
        .arg("info")
        .arg(path)
        .env("REALM_PEAK_RSS_FILE", &rss_file)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let max_rss_kib =
        std::fs::read_to_string(&rss_file).ok().and_then(|s| s.parse().ok()).unwrap_or(i64::MAX);
    let _ = std::fs::remove_file(&rss_file);
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        max_rss_kib,
    }
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("realm-malformed-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Check one malformed file; returns a description of the failure, if any.
fn check(path: &Path, expect: &str, baseline_kib: i64) -> Option<String> {
    let size_kib = (std::fs::metadata(path).unwrap().len() / 1024) as i64;
    let o = info(path);
    let line = o.stderr.trim_end();
    let name = path.file_name().unwrap().to_string_lossy();
    let mut problems = Vec::new();
    if o.code != 1 {
        problems.push(format!("exit code {}", o.code));
    }
    if line.lines().count() != 1 || !line.starts_with("error: ") {
        problems.push("stderr is not one 'error:' line".into());
    }
    if line.contains("internal error") || line.contains("panicked") {
        problems.push("panicked".into());
    }
    if !line.to_lowercase().contains(&expect.to_lowercase()) {
        problems.push(format!("message does not mention '{expect}'"));
    }
    let limit = baseline_kib + 2 * size_kib + 1024;
    if o.max_rss_kib > limit {
        problems.push(format!("peak RSS {} KiB > {limit} KiB", o.max_rss_kib));
    }
    (!problems.is_empty()).then(|| format!("{name}: {} — stderr: {line}", problems.join(", ")))
}

/// Baseline RSS: `realm info` on a valid file with no tensors.
fn baseline(s: &Scratch) -> i64 {
    let mut w = realm_gguf::GgufWriter::new();
    w.add_kv("general.architecture", realm_gguf::OwnedValue::str("llama")).unwrap();
    let p = s.write("tiny.gguf", &w.to_bytes(&[]).unwrap());
    let o = info(&p);
    assert_eq!(o.code, 0, "valid tiny file failed: {}", o.stderr);
    o.max_rss_kib
}

/// Where the tensor table starts and ends in a real file.
fn tensor_table(g: &Gguf<'_>, bytes: &[u8]) -> (usize, usize) {
    let infos: usize =
        g.tensors().iter().map(|t| 8 + t.name.len() + 4 + 8 * t.dims().len() + 12).sum();
    let first = g.tensors()[0].name.as_bytes();
    let data = g.data_offset() as usize;
    for pad in 0..g.alignment() as usize {
        let end = data - pad;
        let start = end - infos;
        if bytes[start..start + 8] == (first.len() as u64).to_le_bytes()
            && &bytes[start + 8..start + 8 + first.len()] == first
        {
            return (start, end);
        }
    }
    panic!("tensor table not found");
}

/// The header (and a little more) with one u64 field replaced: small files, and the patched
/// field is the first thing that fails.
fn patched(bytes: &[u8], header_end: usize, at: usize, value: u64) -> Vec<u8> {
    let mut b = bytes[..bytes.len().min(header_end.max(at + 8) + 64)].to_vec();
    b[at..at + 8].copy_from_slice(&value.to_le_bytes());
    b
}

/// A truncated copy made by the kernel (copy, then shorten), so this process never touches the
/// model's pages: a child's peak RSS includes what its parent had resident when it was spawned.
fn truncated_copy(src: &Path, dst: &Path, len: u64) {
    std::fs::copy(src, dst).unwrap();
    std::fs::OpenOptions::new().write(true).open(dst).unwrap().set_len(len).unwrap();
}

#[test]
fn malformed_real_models_fail_cleanly() {
    let s = Scratch::new("real");
    let base = baseline(&s);
    let mut failures = Vec::new();
    for m in MODELS {
        let path = model(m);
        // Read only what the cases need from the header, then unmap before running anything.
        let (cuts, header_cases, v1) = {
            let map = MappedFile::open(&path).unwrap();
            let bytes = map.bytes();
            let g = map.gguf().unwrap();
            let (table, header_end) = tensor_table(&g, bytes);
            let data = g.data_offset() as usize;
            let n = bytes.len();
            let cuts: Vec<(usize, &str)> = vec![
                (3, "truncated"),
                (12, "truncated"),
                (30, "truncated"),
                (100, "truncated"),
                (table / 2, "truncated"),
                (table - 1, "truncated"),
                (table + 10, "truncated"),
                ((table + header_end) / 2, "truncated"),
                (data + 1000, "needs"),
                (n / 2, "needs"),
                (n - 1, "needs"),
            ];
            let tokens_key = b"tokenizer.ggml.tokens";
            let tk = bytes.windows(tokens_key.len()).position(|w| w == tokens_key).unwrap();
            let tokens_len_at = tk + tokens_key.len() + 4 + 4;
            let n_tokens =
                u64::from_le_bytes(bytes[tokens_len_at..tokens_len_at + 8].try_into().unwrap());
            let first_dim_at = table + 8 + g.tensors()[0].name.len() + 4;
            let first_dim = g.tensors()[0].dims()[0];
            let cases: Vec<(&str, Vec<u8>, &str)> = [
                ("tensor-count-2e62", 8, 1 << 62, "tensor count"),
                ("kv-count-2e62", 16, 1 << 62, "metadata entry count"),
                ("key-len-2e40", 24, 1 << 40, "string byte count"),
                ("key-len-flip63", 24, (1 << 63) | 20, "string byte count"),
                ("tokens-len-flip40", tokens_len_at, n_tokens ^ (1 << 40), "array element count"),
                ("tokens-len-flip20", tokens_len_at, n_tokens ^ (1 << 20), "truncated"),
                ("dim-flip33", first_dim_at, first_dim ^ (1 << 33), "tensor"),
            ]
            .into_iter()
            .map(|(tag, at, value, expect)| (tag, patched(bytes, header_end, at, value), expect))
            .collect();
            let mut v1 = bytes[..4096].to_vec();
            v1[4..8].copy_from_slice(&1u32.to_le_bytes());
            (cuts, cases, v1)
        };
        for (cut, expect) in cuts {
            let p = s.0.join(format!("{m}.cut{cut}"));
            truncated_copy(&path, &p, cut as u64);
            failures.extend(check(&p, expect, base));
            std::fs::remove_file(p).unwrap();
        }
        for (tag, bytes, expect) in header_cases {
            failures.extend(check(&s.write(&format!("{m}.{tag}"), &bytes), expect, base));
        }
        failures.extend(check(&s.write(&format!("{m}.v1"), &v1), "version 1", base));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn files_that_are_not_models_fail_cleanly() {
    let s = Scratch::new("junk");
    let base = baseline(&s);
    let mut failures = Vec::new();
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty", b"", "empty"),
        ("text", b"hello, this is not a model\n", "not a GGUF"),
        ("png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not a GGUF"),
        ("short", b"GGU", "truncated"),
    ];
    for (name, bytes, expect) in cases {
        failures.extend(check(&s.write(name, bytes), expect, base));
    }
    let missing = s.0.join("does-not-exist.gguf");
    failures.extend(check_missing(&missing));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_missing(p: &Path) -> Option<String> {
    let o = info(p);
    (o.code != 1 || !o.stderr.contains("cannot open model"))
        .then(|| format!("missing file: {}", o.stderr))
}
