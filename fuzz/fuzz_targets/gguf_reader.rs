//! Fuzz the GGUF reader and everything that consumes its output: metadata iteration, typed
//! access, hyperparameters, tensor data and dequantization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realm_gguf::{Gguf, HParams, Parsed, Value};

fn walk(v: &Value<'_>) -> usize {
    match v {
        Value::Array(a) => a.iter().map(|e| walk(&e)).sum::<usize>() + 1,
        Value::String(s) => s.len(),
        _ => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    // Streaming: every prefix length must either ask for more or agree with the full parse.
    if let Ok(Parsed::NeedMore { total }) = Gguf::parse_prefix(&data[..data.len() / 2], data.len() as u64) {
        assert!(total as usize > data.len() / 2);
    }
    let Ok(g) = Gguf::parse(data) else { return };
    for (_, v) in g.metadata() {
        walk(v);
        if let Some(a) = v.as_array() {
            let _ = (a.to_strs(), a.to_f32s(), a.to_i64s());
        }
    }
    let _ = HParams::from_gguf(&g);
    let mut out = Vec::new();
    for t in g.tensors() {
        let Ok(bytes) = g.tensor_data(t) else { continue };
        if bytes.len() <= 1 << 16 && realm_quant::can_dequantize(t.ggml_type) {
            out.resize(t.n_elements() as usize, 0.0);
            realm_quant::dequantize(t.ggml_type, bytes, &mut out).expect("validated tensor must dequantize");
        }
    }
});
