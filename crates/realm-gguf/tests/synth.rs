//! Synthetic models have the real layout: same tensor names and shapes as the real model of
//! that shape, a real tokenizer, and weights that dequantize to the requested statistics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::{GgmlType, Gguf, HParams, MappedFile, synth};
use realm_testdata::{SMOLLM2, model};

#[test]
fn smollm2_shape_matches_the_real_model() {
    let map = MappedFile::open(model(SMOLLM2)).unwrap();
    let real = map.gguf().unwrap();
    let shape = synth::shape("smollm2-135m").unwrap();
    let mut bytes = Vec::new();
    let n = synth::write_model(shape, GgmlType::Q4_1, &real, 7, &mut bytes).unwrap();
    assert_eq!(n as usize, bytes.len());
    let g = Gguf::parse(&bytes).unwrap();

    let (h, hr) = (HParams::from_gguf(&g).unwrap(), HParams::from_gguf(&real).unwrap());
    assert_eq!(
        (h.n_embd, h.n_layer, h.n_head, h.n_head_kv, h.n_ff),
        (hr.n_embd, hr.n_layer, hr.n_head, hr.n_head_kv, hr.n_ff)
    );
    assert_eq!(h.n_vocab, hr.n_vocab);
    assert_eq!(g.tensors().len(), real.tensors().len());
    for t in real.tensors() {
        let s = g.tensor(t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!(s.dims(), t.dims(), "{}", t.name);
    }
    // The tokenizer metadata is carried over unchanged.
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.chat_template"] {
        assert_eq!(g.get(key), real.get(key), "{key}");
    }
    // Weights: deterministic, and of the intended scale.
    let q = g.tensor("blk.3.ffn_up.weight").unwrap();
    assert_eq!(q.ggml_type, GgmlType::Q4_1);
    let w = realm_quant::dequantize_to_vec(q.ggml_type, g.tensor_data(q).unwrap()).unwrap();
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / w.len() as f32;
    assert!(
        mean.abs() < 1e-3 && (var.sqrt() - 0.02).abs() < 0.003,
        "mean {mean} sd {}",
        var.sqrt()
    );
    let norm = g.tensor("blk.3.attn_norm.weight").unwrap();
    assert!(g.tensor_data(norm).unwrap().chunks(4).all(|c| c == 1.0f32.to_le_bytes()));
    let mut again = Vec::new();
    synth::write_model(shape, GgmlType::Q4_1, &real, 7, &mut again).unwrap();
    assert!(again == bytes, "same seed, same bytes");
}

#[test]
fn llama_7b_plan_has_the_7b_layout() {
    let map = MappedFile::open(model(SMOLLM2)).unwrap();
    let real = map.gguf().unwrap();
    let w = synth::plan(synth::shape("llama-7b").unwrap(), GgmlType::Q4_0, &real).unwrap();
    let header = w.header().unwrap();
    let g = Gguf::parse_prefix(&header, u64::MAX / 2);
    let Ok(realm_gguf::Parsed::Ready(g)) = g else { panic!("{g:?}") };
    let h = HParams::from_gguf(&g).unwrap();
    assert_eq!((h.n_embd, h.n_layer, h.n_head, h.n_ff), (4096, 32, 32, 11008));
    let params: u64 = g.tensors().iter().map(|t| t.n_elements()).sum();
    // 6.74e9 parameters for the 32000-token vocabulary; this one has 49152 tokens.
    let expected = 6_738_415_616 + 2 * 4096 * (49152 - 32000);
    assert_eq!(params, expected);
    assert!(g.tensor("output.weight").is_some());
}

#[test]
fn k_quants_reject_rows_that_are_not_whole_blocks() {
    let map = MappedFile::open(model(SMOLLM2)).unwrap();
    let real = map.gguf().unwrap();
    // 576 is not a multiple of 256.
    let e = synth::plan(synth::shape("smollm2-135m").unwrap(), GgmlType::Q4_K, &real).unwrap_err();
    assert!(e.to_string().contains("576"), "{e}");
}
