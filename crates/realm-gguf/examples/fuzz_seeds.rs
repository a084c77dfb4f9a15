//! Write the fuzz seed corpus: small valid GGUF files covering every value type, several tensor
//! types, and tiny BPE and SPM vocabularies. `cargo run -p realm-gguf --example fuzz_seeds -- DIR`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::{GgmlType, GgufWriter, OwnedValue as O, ValueType, keys};

fn strs(items: &[&str]) -> O {
    O::Array(ValueType::String, items.iter().map(|s| O::str(s)).collect())
}

fn llama_header(w: &mut GgufWriter) {
    w.add_kv(keys::GENERAL_ARCHITECTURE, O::str("llama")).unwrap();
    for (k, v) in [
        ("context_length", 64),
        ("embedding_length", 32),
        ("block_count", 1),
        ("feed_forward_length", 64),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
    ] {
        w.add_kv(&keys::arch_key("llama", k), O::U32(v)).unwrap();
    }
}

fn bpe() -> GgufWriter {
    let mut w = GgufWriter::new();
    llama_header(&mut w);
    w.add_kv(keys::TOKENIZER_MODEL, O::str("gpt2")).unwrap();
    w.add_kv(keys::TOKENIZER_PRE, O::str("smollm")).unwrap();
    let toks = [
        "<|endoftext|>",
        "<|im_start|>",
        "H",
        "e",
        "l",
        "o",
        "Ġ",
        "w",
        "r",
        "d",
        "He",
        "ll",
        "Hell",
        "Hello",
        "Ġw",
        "1",
        "2",
        "3",
    ];
    w.add_kv(keys::TOKENIZER_TOKENS, strs(&toks)).unwrap();
    let types: Vec<O> =
        toks.iter().enumerate().map(|(i, _)| O::I32(if i < 2 { 3 } else { 1 })).collect();
    w.add_kv(keys::TOKENIZER_TOKEN_TYPE, O::Array(ValueType::I32, types)).unwrap();
    w.add_kv(keys::TOKENIZER_MERGES, strs(&["H e", "l l", "He ll", "Hell o", "Ġ w"])).unwrap();
    w.add_kv(keys::TOKENIZER_BOS_ID, O::U32(0)).unwrap();
    w.add_kv(keys::TOKENIZER_EOS_ID, O::U32(0)).unwrap();
    w.add_kv(keys::TOKENIZER_ADD_BOS, O::Bool(false)).unwrap();
    w.add_kv(
        keys::TOKENIZER_CHAT_TEMPLATE,
        O::str("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}{% endfor %}"),
    )
    .unwrap();
    w
}

fn spm() -> GgufWriter {
    let mut w = GgufWriter::new();
    llama_header(&mut w);
    w.add_kv(keys::TOKENIZER_MODEL, O::str("llama")).unwrap();
    let toks =
        ["<unk>", "<s>", "</s>", "<0x0A>", "<0xF0>", "▁", "▁H", "ello", "▁Hello", "w", "or", "ld"];
    w.add_kv(keys::TOKENIZER_TOKENS, strs(&toks)).unwrap();
    let scores = (0..toks.len()).map(|i| O::F32(-(i as f32))).collect();
    w.add_kv(keys::TOKENIZER_SCORES, O::Array(ValueType::F32, scores)).unwrap();
    let types = toks
        .iter()
        .map(|t| {
            O::I32(if t.starts_with("<0x") {
                6
            } else if t.starts_with('<') {
                3
            } else {
                1
            })
        })
        .collect();
    w.add_kv(keys::TOKENIZER_TOKEN_TYPE, O::Array(ValueType::I32, types)).unwrap();
    w.add_kv(keys::TOKENIZER_BOS_ID, O::U32(1)).unwrap();
    w.add_kv(keys::TOKENIZER_EOS_ID, O::U32(2)).unwrap();
    w.add_kv(keys::TOKENIZER_ADD_PREFIX, O::Bool(true)).unwrap();
    w
}

fn values() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set_alignment(64).unwrap();
    for (k, v) in [
        ("u8", O::U8(1)),
        ("i8", O::I8(-1)),
        ("u16", O::U16(2)),
        ("i16", O::I16(-2)),
        ("i32", O::I32(-3)),
        ("u64", O::U64(4)),
        ("i64", O::I64(-4)),
        ("f32", O::F32(0.5)),
        ("f64", O::F64(0.25)),
        ("b", O::Bool(true)),
        ("s", O::str("x")),
    ] {
        w.add_kv(k, v).unwrap();
    }
    w.add_kv("nested", O::Array(ValueType::Array, vec![O::Array(ValueType::U8, vec![O::U8(1)])]))
        .unwrap();
    for (i, ty) in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
    ]
    .into_iter()
    .enumerate()
    {
        w.add_tensor(&format!("t{i}"), &[ty.block_size() as u64], ty).unwrap();
    }
    w
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: fuzz_seeds DIR");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, w) in [("bpe.gguf", bpe()), ("spm.gguf", spm()), ("values.gguf", values())] {
        // Tensor bytes: a fixed pattern with small f16 scales (0x3c00 = 1.0) so values are finite.
        let mut out = Vec::new();
        w.write(&mut out, |i, spec, buf| {
            buf.extend(
                (0..spec.size).map(|j| if j % 2 == 0 { (i as u8).wrapping_mul(17) } else { 0x3c }),
            );
            Ok(())
        })
        .unwrap();
        std::fs::write(format!("{dir}/{name}"), out).unwrap();
    }
}
