//! The per-code-point category llama.cpp uses (its `unicode-data.cpp`, Unicode 15.1), checked
//! for every code point against tests/fixtures/tokenizer/unicode-15.1-flags.tsv (regenerate with
//! the script next to it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_tokenizer::unicode_category_flags;

#[test]
fn every_code_point_has_llama_cpp_category() {
    let path = realm_testdata::fixture("tokenizer/unicode-15.1-flags.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut ranges: Vec<(u32, u16)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (u32::from_str_radix(a, 16).unwrap(), u16::from_str_radix(b, 16).unwrap())
        })
        .collect();
    ranges.push((0x11_0000, 0));
    let mut bad = Vec::new();
    for w in ranges.windows(2) {
        let ((start, flags), (end, _)) = (w[0], w[1]);
        let mut run: Option<(u32, u32, u16)> = None;
        for cpt in start..end {
            let got = unicode_category_flags(cpt);
            if got != flags {
                match &mut run {
                    Some((_, e, g)) if *e + 1 == cpt && *g == got => *e = cpt,
                    _ => {
                        if let Some(r) = run.take() {
                            bad.push((r.0, r.1, flags, r.2));
                        }
                        run = Some((cpt, cpt, got));
                    }
                }
            }
        }
        if let Some(r) = run {
            bad.push((r.0, r.1, flags, r.2));
        }
    }
    let lines: Vec<String> = bad
        .iter()
        .map(|(a, b, want, got)| {
            format!("    (0x{a:05X}, 0x{b:05X}, 0x{want:02X}), // got 0x{got:02X}")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} ranges differ (want = llama.cpp):\n{}",
        bad.len(),
        lines.join("\n")
    );
}
