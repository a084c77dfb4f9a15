//! Fuzz the tokenizer loader on hostile GGUF metadata, then tokenize, detokenize and stream a
//! fixed text plus the fuzz input itself, and render the chat template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realm_gguf::Gguf;
use realm_tokenizer::{ChatMessage, ChatTemplate, StreamDecoder, Tokenizer};

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Gguf::parse(data) else { return };
    let Ok(tok) = Tokenizer::from_gguf(&g) else { return };
    let tail = String::from_utf8_lossy(&data[data.len().saturating_sub(64)..]).into_owned();
    for text in ["Hello <|im_start|> wörld 123 🚀\n\n  x", tail.as_str()] {
        for (add, special) in [(true, true), (false, false)] {
            let ids = tok.tokenize(text, add, special);
            let _ = tok.detokenize(&ids, special);
            let mut dec = StreamDecoder::new(special);
            for &id in &ids {
                let _ = dec.push(&tok, id);
            }
            let _ = dec.finish();
        }
    }
    if let Ok(t) = ChatTemplate::from_gguf(&g, &tok) {
        let _ = t.render(&[ChatMessage::system("s"), ChatMessage::user("hi")], true);
    }
});
