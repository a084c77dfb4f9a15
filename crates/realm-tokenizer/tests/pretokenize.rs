//! Pre-tokenizer splits per `tokenizer.ggml.pre`, worked out by hand from llama.cpp's code
//! (`unicode_regex_split_custom_gpt2` / `_llama3`, and `std::regex` semantics over the collapsed
//! text for the rest). Each expectation notes the rule it exercises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_tokenizer::{PreTokenizer, TokenizerError};

fn split(pre: &str, text: &str) -> Vec<String> {
    PreTokenizer::from_name(Some(pre)).unwrap().split(text)
}

fn check(pre: &str, text: &str, want: &[&str]) {
    assert_eq!(split(pre, text), want, "pre {pre:?} text {text:?}");
    assert_eq!(want.concat(), text, "pieces must cover the text");
}

#[test]
fn gpt2_contractions_are_lowercase_only() {
    check("gpt-2", "I'M don't 's", &["I", "'", "M", " don", "'t", " '", "s"]);
    check("gpt-2", "'S 's", &["'", "S", " '", "s"]);
}

#[test]
fn gpt2_whitespace_runs_leave_one_space_for_the_next_word() {
    check("gpt-2", "  hello   world  ", &[" ", " hello", "  ", " world", "  "]);
    check("gpt-2", "a\n\n  b \n c", &["a", "\n\n ", " b", " \n", " c"]);
    check("gpt-2", "don't   stop\n\n\tgo", &["don", "'t", "  ", " stop", "\n\n", "\t", "go"]);
    // Non-ASCII whitespace counts as whitespace (White_Space), U+001C does not; only an ASCII
    // space may lead a word.
    check("gpt-2", "a\u{3000}\u{3000}b", &["a", "\u{3000}", "\u{3000}", "b"]);
    check("gpt-2", "a\u{1C}b", &["a", "\u{1C}", "b"]);
}

#[test]
fn gpt2_numbers_letters_and_symbols() {
    check(
        "gpt-2",
        "123456 7 \u{663}\u{664} 3.14",
        &["123456", " 7", " \u{663}\u{664}", " 3", ".", "14"],
    );
    check("gpt-2", "x+=1; $x<=>y", &["x", "+=", "1", ";", " $", "x", "<=>", "y"]);
    check("gpt-2", "😀😀 a😀", &["😀😀", " a", "😀"]);
}

#[test]
fn smollm_and_starcoder_isolate_every_digit() {
    // "\p{N}" first: every number code point (², ½, Arabic-Indic digits too) is its own piece.
    let want = [
        "In", " ", "2", "0", "2", "4", ",", " x", "²", "=", "½", " and", " ", "\u{663}", "\u{664}",
    ];
    check("smollm", "In 2024, x²=½ and \u{663}\u{664}", &want);
    check("starcoder", "In 2024, x²=½ and \u{663}\u{664}", &want);
}

#[test]
fn llama3_contractions_are_case_insensitive() {
    check("llama-bpe", "I'M don't We'LL 's", &["I", "'M", " don", "'t", " We", "'LL", " '", "s"]);
    check("llama3", "''s", &["''", "s"]);
}

#[test]
fn llama3_digits_group_by_three() {
    check(
        "llama3",
        "123456 7 \u{663}\u{664}\u{665}\u{666}",
        &["123", "456", " ", "7", " ", "\u{663}\u{664}\u{665}", "\u{666}"],
    );
}

#[test]
fn llama3_newlines_end_whitespace_pieces() {
    check("llama3", "a\n\n  b \n c", &["a", "\n\n", " ", " b", " \n", " c"]);
    check("llama3", "x  \n\n  y", &["x", "  \n\n", " ", " y"]);
    check("llama3", "a\r\n\r\nb", &["a", "\r\n\r\n", "b"]);
    check("llama3", "!!!\n\nx", &["!!!\n\n", "x"]);
    check("llama3", " ?!  ..", &[" ?!", " ", " .."]);
    // A non-letter, non-newline character joins the word after it.
    check("llama3", "\tfoo,bar", &["\tfoo", ",bar"]);
}

#[test]
fn qwen2_runs_on_the_regex_engine() {
    check("qwen2", "I'M don't We'LL 's", &["I", "'M", " don", "'t", " We", "'LL", " '", "s"]);
    check("qwen2", "12 345", &["1", "2", " ", "3", "4", "5"]);
    check("qwen2", "a\n\n  b \n c", &["a", "\n\n", " ", " b", " \n", " c"]);
    check("qwen2", "héllo wörld 日本語 テスト", &["héllo", " wörld", " 日本語", " テスト"]);
}

#[test]
fn default_splits_punctuation_then_numbers_by_three() {
    // "[\p{P}\$\+<=>\^~\|]+" isolates punctuation first, so "'" never forms a contraction.
    check("default", "I'M don't", &["I", "'", "M", " don", "'", "t"]);
    check("default", " ?!  ..", &[" ", "?!", "  ", ".."]);
    // "\p{N}+" then "[0-9][0-9][0-9]" (ASCII only).
    check(
        "default",
        "123456 7 \u{663}\u{664}\u{665}\u{666} 3.14",
        &["123", "456", " ", "7", " ", "\u{663}\u{664}\u{665}\u{666}", " ", "3", ".", "14"],
    );
    // An absent `tokenizer.ggml.pre` is "default".
    assert_eq!(
        PreTokenizer::from_name(None).unwrap().split(" ?!  .."),
        split("default", " ?!  ..")
    );
}

#[test]
fn falcon_keeps_space_number_pieces() {
    check("falcon", "123456 7 3.14", &["123", "456", " 7", " 3", ".", "14"]);
}

#[test]
fn deepseek_llm_regex_list() {
    // The punctuation class "[!-/:-~...]" also covers ASCII letters, so words with non-ASCII
    // letters are cut around them, exactly as llama.cpp's regex list does.
    check(
        "deepseek-llm",
        "héllo wörld 日本語 テスト",
        &["h", "é", "llo", " w", "ö", "rld", " ", "日本語", " ", "テスト"],
    );
    check("deepseek-llm", "a\n\n  b \n c", &["a", "\n", "\n", " ", " b", " ", "\n", " c"]);
    check("deepseek-llm", "123456 7", &["123456", " ", "7"]);
}

#[test]
fn deepseek_v3_and_gpt4o() {
    check("deepseek-v3", "x+=1; $x<=>y", &["x", "+=", "1", ";", " $", "x", "<=>", "y"]);
    check("deepseek-v3", "3.14159", &["3", ".", "141", "59"]);
    check("gpt-4o", "HelloWorld I'M 's", &["Hello", "World", " I'M", " '", "s"]);
    check("tekken", "HelloWorld I'M", &["Hello", "World", " I", "'M"]);
}

#[test]
fn bloom_splits_only_on_listed_punctuation() {
    check("bloom", "I'M don't 3.14 x+=1;", &["I'M", " don't", " 3", ".", "14", " x+=1;"]);
}

#[test]
fn pathological_inputs_are_linear_enough() {
    let long = "a".repeat(50_000) + &" ".repeat(50_000) + "b";
    for pre in ["gpt-2", "llama3", "qwen2", "default", "deepseek-v3", "gpt-4o"] {
        let pieces = split(pre, &long);
        assert_eq!(pieces.concat(), long, "{pre}");
    }
}

#[test]
fn unknown_and_unsupported_names_are_typed_errors() {
    assert!(matches!(
        PreTokenizer::from_name(Some("no-such-pre")),
        Err(TokenizerError::UnknownPreTokenizer { pre }) if pre == "no-such-pre"
    ));
    assert!(matches!(
        PreTokenizer::from_name(Some("kimi-k2")),
        Err(TokenizerError::UnsupportedPreTokenizer { .. })
    ));
}
