//! Code point helpers with llama.cpp's exact semantics.
//!
//! Follows llama.cpp `src/unicode.cpp` / `src/unicode.h` (commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f): lenient UTF-8 decoding (an invalid byte becomes
//! U+FFFD and decoding resumes at the next byte; overlong forms and surrogates are accepted), the
//! per-code-point category flags (one general-category bit, UNDEFINED for unassigned code points,
//! plus a separate `White_Space` bit), and GPT-2's byte <-> code point table.
//!
//! llama.cpp's `src/unicode-data.cpp` is Unicode 15.1; the categories here come from
//! `unicode-general-category` (Unicode 16.0) with the 16.0 additions mapped back to unassigned,
//! checked code point by code point against a Unicode 15.1 table in the `unicode_table` test.

use unicode_general_category::{GeneralCategory as G, get_general_category};

/// Category flags of one code point (`unicode_cpt_flags` in llama.cpp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CptFlags(u16);

impl CptFlags {
    pub const UNDEFINED: u16 = 0x0001;
    pub const NUMBER: u16 = 0x0002;
    pub const LETTER: u16 = 0x0004;
    pub const SEPARATOR: u16 = 0x0008;
    pub const ACCENT_MARK: u16 = 0x0010;
    pub const PUNCTUATION: u16 = 0x0020;
    pub const SYMBOL: u16 = 0x0040;
    pub const CONTROL: u16 = 0x0080;
    pub const WHITESPACE: u16 = 0x0100;

    /// The flags of a position outside the current segment: no bit set at all.
    pub const NONE: CptFlags = CptFlags(0);

    pub fn bits(self) -> u16 {
        self.0
    }
    /// The general-category bit alone (`category_flag()`).
    pub fn category(self) -> u16 {
        self.0 & 0xFF
    }
    pub fn is_number(self) -> bool {
        self.0 & Self::NUMBER != 0
    }
    pub fn is_letter(self) -> bool {
        self.0 & Self::LETTER != 0
    }
    pub fn is_whitespace(self) -> bool {
        self.0 & Self::WHITESPACE != 0
    }
}

/// `White_Space` code points (llama.cpp `unicode_set_whitespace`, Python `regex` `\s`).
fn is_unicode_whitespace(cpt: u32) -> bool {
    matches!(
        cpt,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// Code points assigned in Unicode 16.0 (the category crate) but not in Unicode 15.1 (llama.cpp's
/// table): llama.cpp sees them as unassigned. Found by the `unicode_table` test, which compares
/// every code point with tests/fixtures/tokenizer/unicode-15.1-flags.tsv.
const NEW_IN_UNICODE_16: &[(u32, u32)] = &[
    (0x00897, 0x00897),
    (0x01B4E, 0x01B4F),
    (0x01B7F, 0x01B7F),
    (0x01C89, 0x01C8A),
    (0x02427, 0x02429),
    (0x031E4, 0x031E5),
    (0x0A7CB, 0x0A7CD),
    (0x0A7DA, 0x0A7DC),
    (0x105C0, 0x105F3),
    (0x10D40, 0x10D65),
    (0x10D69, 0x10D85),
    (0x10D8E, 0x10D8F),
    (0x10EC2, 0x10EC4),
    (0x10EFC, 0x10EFC),
    (0x11380, 0x11389),
    (0x1138B, 0x1138B),
    (0x1138E, 0x1138E),
    (0x11390, 0x113B5),
    (0x113B7, 0x113C0),
    (0x113C2, 0x113C2),
    (0x113C5, 0x113C5),
    (0x113C7, 0x113CA),
    (0x113CC, 0x113D5),
    (0x113D7, 0x113D8),
    (0x113E1, 0x113E2),
    (0x116D0, 0x116E3),
    (0x11BC0, 0x11BE1),
    (0x11BF0, 0x11BF9),
    (0x11F5A, 0x11F5A),
    (0x13460, 0x143FA),
    (0x16100, 0x16139),
    (0x16D40, 0x16D79),
    (0x18CFF, 0x18CFF),
    (0x1CC00, 0x1CCF9),
    (0x1CD00, 0x1CEB3),
    (0x1E5D0, 0x1E5FA),
    (0x1E5FF, 0x1E5FF),
    (0x1F8B2, 0x1F8BB),
    (0x1F8C0, 0x1F8C1),
    (0x1FA89, 0x1FA89),
    (0x1FA8F, 0x1FA8F),
    (0x1FABE, 0x1FABE),
    (0x1FAC6, 0x1FAC6),
    (0x1FADC, 0x1FADC),
    (0x1FADF, 0x1FADF),
    (0x1FAE9, 0x1FAE9),
    (0x1FBCB, 0x1FBEF),
];

fn is_new_in_unicode_16(cpt: u32) -> bool {
    let i = NEW_IN_UNICODE_16.partition_point(|&(_, end)| end < cpt);
    NEW_IN_UNICODE_16.get(i).is_some_and(|&(start, _)| start <= cpt)
}

fn category_bit(cpt: u32) -> u16 {
    if is_new_in_unicode_16(cpt) {
        return CptFlags::UNDEFINED;
    }
    let Some(c) = char::from_u32(cpt) else {
        // Surrogates are \p{Cs}; beyond U+10FFFF llama.cpp answers UNDEFINED.
        return if cpt < 0x11_0000 { CptFlags::CONTROL } else { CptFlags::UNDEFINED };
    };
    match get_general_category(c) {
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => CptFlags::NUMBER,
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter => CptFlags::LETTER,
        G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => CptFlags::SEPARATOR,
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark => CptFlags::ACCENT_MARK,
        G::ConnectorPunctuation
        | G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation
        | G::OtherPunctuation => CptFlags::PUNCTUATION,
        G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => CptFlags::SYMBOL,
        G::Unassigned => CptFlags::UNDEFINED,
        // Cc, Cf, Co, Cs (and any category a later crate version adds) are \p{C}.
        _ => CptFlags::CONTROL,
    }
}

const fn ascii_flags_table() -> [u16; 128] {
    let mut t = [CptFlags::CONTROL; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            CptFlags::NUMBER
        } else if b.is_ascii_alphabetic() {
            CptFlags::LETTER
        } else if b == b' ' {
            CptFlags::SEPARATOR | CptFlags::WHITESPACE
        } else if b >= 0x09 && b <= 0x0D {
            CptFlags::CONTROL | CptFlags::WHITESPACE
        } else if b < 0x20 || b == 0x7F {
            CptFlags::CONTROL
        } else if matches!(b, b'$' | b'+' | b'<' | b'=' | b'>' | b'^' | b'`' | b'|' | b'~') {
            CptFlags::SYMBOL
        } else {
            CptFlags::PUNCTUATION
        };
        c += 1;
    }
    t
}

const ASCII_FLAGS: [u16; 128] = ascii_flags_table();

/// Flags of a code point (`unicode_cpt_flags_from_cpt`).
pub fn cpt_flags(cpt: u32) -> CptFlags {
    if let Some(&f) = ASCII_FLAGS.get(cpt as usize) {
        return CptFlags(f);
    }
    let ws = if is_unicode_whitespace(cpt) { CptFlags::WHITESPACE } else { 0 };
    CptFlags(category_bit(cpt) | ws)
}

/// Simple lowercase mapping of one code point (first code point of Python's `str.lower()`).
pub fn to_lower(cpt: u32) -> u32 {
    match char::from_u32(cpt) {
        Some(c) => c.to_lowercase().next().map_or(cpt, u32::from),
        None => cpt,
    }
}

/// Byte length of the UTF-8 sequence a lead byte announces (`unicode_len_utf8`): continuation
/// and invalid bytes count as 1.
pub fn utf8_len(lead: u8) -> usize {
    const LOOKUP: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    LOOKUP[usize::from(lead >> 4)]
}

/// Decode one code point at `bytes[i..]` like `unicode_cpt_from_utf8`: `None` if invalid.
fn decode_one(bytes: &[u8], i: usize) -> Option<(u32, usize)> {
    let b0 = u32::from(*bytes.get(i)?);
    let cont =
        |k: usize| bytes.get(i + k).filter(|&&b| b & 0xC0 == 0x80).map(|&b| u32::from(b & 0x3F));
    if b0 & 0x80 == 0 {
        return Some((b0, 1));
    }
    if b0 & 0x40 == 0 {
        return None;
    }
    if b0 & 0x20 == 0 {
        return Some((((b0 & 0x1F) << 6) | cont(1)?, 2));
    }
    if b0 & 0x10 == 0 {
        return Some((((b0 & 0x0F) << 12) | (cont(1)? << 6) | cont(2)?, 3));
    }
    if b0 & 0x08 == 0 {
        return Some((((b0 & 0x07) << 18) | (cont(1)? << 12) | (cont(2)? << 6) | cont(3)?, 4));
    }
    None
}

/// All code points of `bytes` (`unicode_cpts_from_utf8`): each invalid byte becomes U+FFFD.
pub fn decode_cpts(bytes: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match decode_one(bytes, i) {
            Some((c, n)) => {
                out.push(c);
                i += n;
            }
            None => {
                out.push(0xFFFD);
                i += 1;
            }
        }
    }
    out
}

/// Append the UTF-8 form of a code point (`unicode_cpt_to_utf8`; surrogates are encoded as
/// three bytes like llama.cpp does). Beyond U+10FFFF llama.cpp throws; this writes U+FFFD.
pub fn push_cpt_utf8(cpt: u32, out: &mut Vec<u8>) {
    // The `as u8` casts below keep the low bits on purpose: each is masked first.
    match cpt {
        0..=0x7F => out.push(cpt as u8),
        0x80..=0x7FF => {
            out.extend_from_slice(&[0xC0 | (cpt >> 6) as u8, 0x80 | (cpt & 0x3F) as u8])
        }
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cpt >> 12) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]),
        0x1_0000..=0x10_FFFF => out.extend_from_slice(&[
            0xF0 | (cpt >> 18) as u8,
            0x80 | ((cpt >> 12) & 0x3F) as u8,
            0x80 | ((cpt >> 6) & 0x3F) as u8,
            0x80 | (cpt & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice("\u{FFFD}".as_bytes()),
    }
}

const fn gpt2_byte_table() -> [u16; 256] {
    // Printable Latin-1 bytes map to themselves; the rest, in byte order, to U+0100, U+0101, ...
    let mut t = [0u16; 256];
    let mut n = 0u16;
    let mut b = 0;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if printable {
            t[b] = b as u16;
        } else {
            t[b] = 256 + n;
            n += 1;
        }
        b += 1;
    }
    t
}

/// GPT-2 byte-level BPE: byte -> code point (`unicode_byte_to_utf8_map`).
pub const GPT2_BYTE_TO_CPT: [u16; 256] = gpt2_byte_table();

/// The inverse of [`GPT2_BYTE_TO_CPT`] (`unicode_utf8_to_byte`): `None` for other code points.
pub fn gpt2_cpt_to_byte(cpt: u32) -> Option<u8> {
    if cpt > 0x143 {
        return None;
    }
    (0u8..=255).find(|&b| u32::from(GPT2_BYTE_TO_CPT[usize::from(b)]) == cpt)
}

/// Append the GPT-2 byte-level encoding of raw bytes (`unicode_byte_to_utf8` per byte).
pub fn push_gpt2_encoded(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        push_cpt_utf8(u32::from(GPT2_BYTE_TO_CPT[usize::from(b)]), out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_table_matches_the_known_mapping() {
        assert_eq!(GPT2_BYTE_TO_CPT[usize::from(b' ')], 0x120); // 'Ġ'
        assert_eq!(GPT2_BYTE_TO_CPT[usize::from(b'\n')], 0x10A); // 'Ċ'
        assert_eq!(GPT2_BYTE_TO_CPT[0xAD], 0x143);
        assert_eq!(GPT2_BYTE_TO_CPT[usize::from(b'a')], u16::from(b'a'));
        for b in 0u8..=255 {
            assert_eq!(gpt2_cpt_to_byte(u32::from(GPT2_BYTE_TO_CPT[usize::from(b)])), Some(b));
        }
    }

    #[test]
    fn lenient_decoding_replaces_each_bad_byte() {
        assert_eq!(decode_cpts(b"a\xFFb"), vec![0x61, 0xFFFD, 0x62]);
        assert_eq!(decode_cpts(b"\xE4\xBD"), vec![0xFFFD, 0xFFFD]);
        assert_eq!(decode_cpts("é日🚀".as_bytes()), vec![0xE9, 0x65E5, 0x1F680]);
    }

    #[test]
    fn flags_follow_llama_cpp_categories() {
        assert!(cpt_flags(u32::from(b'a')).is_letter());
        assert!(cpt_flags(0xE9).is_letter());
        assert!(cpt_flags(0x0663).is_number()); // ARABIC-INDIC DIGIT THREE
        assert!(cpt_flags(0x00B2).is_number()); // SUPERSCRIPT TWO (No)
        assert!(cpt_flags(0x3000).is_whitespace());
        assert!(!cpt_flags(0x1C).is_whitespace()); // Python str.isspace() says yes, \s does not
        assert_eq!(cpt_flags(0x0378).category(), CptFlags::UNDEFINED); // unassigned
        assert_eq!(cpt_flags(0x1FAE9).category(), CptFlags::UNDEFINED); // new in Unicode 16
        assert_eq!(cpt_flags(0xE000).category(), CptFlags::CONTROL); // private use
        assert_eq!(cpt_flags(u32::from(b'~')).category(), CptFlags::SYMBOL);
        assert_eq!(cpt_flags(u32::from(b'_')).category(), CptFlags::PUNCTUATION);
        assert_eq!(cpt_flags(0x0301).category(), CptFlags::ACCENT_MARK);
    }
}
