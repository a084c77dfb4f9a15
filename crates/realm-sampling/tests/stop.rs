//! Stop strings over streamed chunks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestRng;
use realm_sampling::{StopScan, StopStrings};

fn stops(list: &[&str]) -> StopStrings {
    StopStrings::new(list.iter().map(|s| s.to_string()).collect())
}

/// Feeds `chunks` like a runtime would; returns what the user saw and the stop, if any.
/// At the end without a stop, the held-back rest is flushed.
fn stream(s: &StopStrings, chunks: &[&str]) -> (String, Option<usize>) {
    let mut text = String::new();
    let mut emitted = 0;
    let mut shown = String::new();
    for chunk in chunks {
        text.push_str(chunk);
        match s.scan(&text, emitted) {
            StopScan::Continue { safe_len } => {
                assert!(safe_len >= emitted, "safe_len went backwards");
                shown.push_str(&text[emitted..safe_len]);
                emitted = safe_len;
            }
            StopScan::Stop { at, index } => {
                assert!(at >= emitted, "stop string started inside emitted text");
                shown.push_str(&text[emitted..at]);
                return (shown, Some(index));
            }
        }
    }
    shown.push_str(&text[emitted..]);
    (shown, None)
}

#[test]
fn stop_split_over_chunks_is_never_shown() {
    let s = stops(&["</s>"]);
    assert_eq!(s.scan("<", 0), StopScan::Continue { safe_len: 0 });
    assert_eq!(s.scan("</s", 0), StopScan::Continue { safe_len: 0 });
    assert_eq!(s.scan("</s>", 0), StopScan::Stop { at: 0, index: 0 });
    assert_eq!(stream(&s, &["<", "/s", ">"]), (String::new(), Some(0)));
    assert_eq!(stream(&s, &["Hello <", "/s", ">", " more"]), ("Hello ".into(), Some(0)));
    assert_eq!(s.scan("Hello <", 0), StopScan::Continue { safe_len: 6 });
}

#[test]
fn held_back_text_is_released_when_the_pattern_breaks() {
    let s = stops(&["</s>"]);
    assert_eq!(s.scan("a<", 0), StopScan::Continue { safe_len: 1 });
    assert_eq!(s.scan("a</x", 1), StopScan::Continue { safe_len: 4 });
    assert_eq!(stream(&s, &["a<", "/x", "<", "/"]), ("a</x</".into(), None));
}

#[test]
fn stop_at_the_very_start_and_inside_one_chunk() {
    let s = stops(&["</s>"]);
    assert_eq!(stream(&s, &["</s>more"]), (String::new(), Some(0)));
    assert_eq!(stream(&s, &["hi</s>junk"]), ("hi".into(), Some(0)));
}

#[test]
fn several_stop_strings() {
    let s = stops(&["</s>", "<|im_end|>", "User:"]);
    assert_eq!(s.scan("ok <|im", 0), StopScan::Continue { safe_len: 3 });
    assert_eq!(s.scan("ok <|im_end|>", 3), StopScan::Stop { at: 3, index: 1 });
    assert_eq!(stream(&s, &["ok ", "<|im", "_en", "d|>", "x"]), ("ok ".into(), Some(1)));
    assert_eq!(stream(&s, &["Us", "er", ":"]), (String::new(), Some(2)));
    // "<" could start either of two stops; held back until one of them is ruled out.
    assert_eq!(s.scan("a <", 0), StopScan::Continue { safe_len: 2 });
    assert_eq!(s.scan("a <|", 2), StopScan::Continue { safe_len: 2 });
    assert_eq!(s.scan("a <|x", 2), StopScan::Continue { safe_len: 5 });
}

#[test]
fn earliest_start_wins_then_list_order() {
    assert_eq!(stops(&["cd", "bcd"]).scan("abcde", 0), StopScan::Stop { at: 1, index: 1 });
    assert_eq!(stops(&["ab", "abc"]).scan("xabc", 0), StopScan::Stop { at: 1, index: 0 });
    assert_eq!(stops(&["abc", "ab"]).scan("xabc", 0), StopScan::Stop { at: 1, index: 0 });
    // A complete stop wins over a longer one still in progress (llama.cpp's server too).
    assert_eq!(stops(&["abcd", "bc"]).scan("abc", 0), StopScan::Stop { at: 1, index: 1 });
}

#[test]
fn empty_lists_and_empty_strings() {
    let none = StopStrings::new(Vec::new());
    assert!(none.is_empty());
    assert_eq!(none.scan("anything", 0), StopScan::Continue { safe_len: 8 });
    let s = stops(&["", "x"]);
    assert!(!s.is_empty());
    assert_eq!(s.stops().len(), 2);
    assert_eq!(s.scan("abc", 0), StopScan::Continue { safe_len: 3 });
    assert_eq!(s.scan("ax", 0), StopScan::Stop { at: 1, index: 1 });
    assert!(stops(&[""]).is_empty());
}

#[test]
fn utf8_positions_are_char_boundaries() {
    let s = stops(&["→end", "é"]);
    assert_eq!(s.scan("a→", 0), StopScan::Continue { safe_len: 1 });
    assert_eq!(s.scan("a→en", 1), StopScan::Continue { safe_len: 1 });
    assert_eq!(s.scan("a→end", 1), StopScan::Stop { at: 1, index: 0 });
    assert_eq!(s.scan("café", 0), StopScan::Stop { at: 3, index: 1 });
    // `emitted` past the end is clamped, inside a char is moved back to its start.
    assert_eq!(s.scan("ab", 10), StopScan::Continue { safe_len: 2 });
    assert_eq!(s.scan("a→x", 2), StopScan::Continue { safe_len: 5 });
}

#[test]
fn streaming_equals_cutting_the_whole_text() {
    // Random texts over a small alphabet, random chunkings. These two stops cannot overlap
    // one another, so the streamed output must be the full text cut at the first match.
    let s = stops(&["</s>", "<|x|>"]);
    let alphabet = ['a', '<', '/', 's', '>', '|', 'x', 'é'];
    let mut rng = TestRng::new(99);
    for _ in 0..3000 {
        let len = rng.range(0, 40);
        let text: String = (0..len).map(|_| alphabet[rng.range(0, alphabet.len())]).collect();
        let mut chunks = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let mut cut = rng.range(1, rest.len() + 1);
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            chunks.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        let first = ["</s>", "<|x|>"]
            .iter()
            .enumerate()
            .filter_map(|(i, st)| text.find(st).map(|at| (at, i)))
            .min();
        let want = match first {
            Some((at, i)) => (text[..at].to_string(), Some(i)),
            None => (text.clone(), None),
        };
        assert_eq!(stream(&s, &chunks), want, "text {text:?} chunks {chunks:?}");
    }
}
