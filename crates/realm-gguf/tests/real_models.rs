//! The two real models: metadata, hyperparameters, and every tensor dequantizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::{Arch, GgmlType, Gguf, HParams, MappedFile, Parsed};
use realm_testdata::{GEMMA3, SMOLLM2, model};

#[test]
fn smollm2_hparams() {
    let map = MappedFile::open(model(SMOLLM2)).unwrap();
    let g = map.gguf().unwrap();
    let h = HParams::from_gguf(&g).unwrap();
    assert_eq!(h.arch, Arch::Llama);
    assert_eq!((h.n_embd, h.n_layer, h.n_head, h.n_head_kv, h.n_ff), (576, 30, 9, 3, 1536));
    assert_eq!((h.head_dim_k, h.rope_dim, h.n_vocab), (64, 64, Some(49152)));
    assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), Some("smollm"));
    // Tied embeddings: no output.weight.
    assert!(g.tensor("output.weight").is_none());
    assert_eq!(g.tensor("token_embd.weight").unwrap().ggml_type, GgmlType::Q8_0);
}

#[test]
fn gemma3_hparams() {
    let map = MappedFile::open(model(GEMMA3)).unwrap();
    let g = map.gguf().unwrap();
    let h = HParams::from_gguf(&g).unwrap();
    assert_eq!(h.arch, Arch::Gemma3);
    assert_eq!(h.n_embd, 640);
    assert!(h.sliding_window.is_some());
    assert_eq!(h.n_vocab, Some(262_144));
}

/// Dequantize every tensor of a model, row block by row block, and check the values are finite.
fn dequantize_all(name: &str) -> usize {
    let map = MappedFile::open(model(name)).unwrap();
    let g = map.gguf().unwrap();
    let mut out = Vec::new();
    for t in g.tensors() {
        let data = g.tensor_data(t).unwrap();
        let row_bytes = t.ggml_type.row_bytes(t.row_len()).unwrap() as usize;
        let rows_per_chunk = (1 << 20) / t.row_len().max(1) as usize + 1;
        for chunk in data.chunks(row_bytes * rows_per_chunk) {
            let n = chunk.len() / row_bytes * t.row_len() as usize;
            out.resize(n, 0.0);
            realm_quant::dequantize(t.ggml_type, chunk, &mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert!(out.iter().all(|x| x.is_finite()), "{} has non-finite values", t.name);
        }
    }
    g.tensors().len()
}

#[test]
fn every_smollm2_tensor_dequantizes() {
    assert_eq!(dequantize_all(SMOLLM2), 272);
}

#[test]
fn every_gemma3_tensor_dequantizes() {
    assert_eq!(dequantize_all(GEMMA3), 236);
}

#[test]
fn real_headers_parse_from_growing_prefixes() {
    for name in [SMOLLM2, GEMMA3] {
        let map = MappedFile::open(model(name)).unwrap();
        let bytes = map.bytes();
        let full = Gguf::parse(bytes).unwrap();
        let mut have = 0usize;
        let mut requests = 0;
        let g = loop {
            match Gguf::parse_prefix(&bytes[..have], bytes.len() as u64).unwrap() {
                // A streaming client fetches at least 64 KiB more each time.
                Parsed::NeedMore { total } => {
                    have = (total as usize).max(have + (64 << 10)).min(bytes.len())
                }
                Parsed::Ready(g) => break g,
            }
            requests += 1;
        };
        assert!(have as u64 <= full.data_offset() + (64 << 10), "{name}: read too far");
        assert!(requests < 200, "{name}: {requests} requests");
        assert_eq!(g.tensors(), full.tensors());
    }
}
