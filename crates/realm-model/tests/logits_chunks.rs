//! `Logits::All` where one `[n, n_vocab]` tensor exceeds the backend's largest activation: the
//! output projection runs in row chunks and gives the same logits. On the wgpu backend (lavapipe
//! without a GPU) with an artificially small activation limit, on the real SmolLM2 model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use realm_backend_wgpu::{WgpuBackend, WgpuConfig};
use realm_core::{Backend, CoreError, KvDtype, RowsDesc};
use realm_gguf::MappedFile;
use realm_model::{Batch, Logits, Model};
use realm_testdata::{SMOLLM2, model};

fn backend(config: WgpuConfig) -> Option<WgpuBackend> {
    match realm_conformance::block_on(WgpuBackend::new(config)) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("REALM_SKIP_WGPU").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED (REALM_SKIP_WGPU=1): no wgpu device: {e}");
            None
        }
        Err(e) => panic!(
            "no wgpu device: {e}\nInstall a Vulkan driver (lavapipe: `apt-get install -y \
             mesa-vulkan-drivers libvulkan1`) or set REALM_SKIP_WGPU=1 to skip the wgpu tests."
        ),
    }
}

/// Every position's logits of `tokens`, read back in order.
fn all_logits(b: &WgpuBackend, tokens: &[u32]) -> Vec<f32> {
    let map = Arc::new(MappedFile::open(model(SMOLLM2)).unwrap());
    let g = map.gguf().unwrap();
    let m = Model::load(b, &g, map.clone()).unwrap();
    let mut kv = b.kv_cache(m.kv_desc(1, 64, KvDtype::F16)).unwrap();
    let mut s = m.scratch(b, tokens.len()).unwrap();
    let pos: Vec<u32> = (0..tokens.len() as u32).collect();
    let seq = vec![0; tokens.len()];
    let rows = RowsDesc { pos: &pos, seq: &seq, tables: &[&[0]], block_size: 64 };
    let batch = Batch { tokens, rows, logits: Logits::All };
    let out = m.forward(b, &mut kv, &batch, &mut s).unwrap();
    b.submit().unwrap();
    let mut v = Vec::new();
    for t in out {
        v.extend(realm_conformance::block_on(b.read(t)).unwrap());
    }
    v
}

#[test]
fn output_projection_in_row_chunks_on_wgpu() {
    let Some(whole) = backend(WgpuConfig::default()) else { return };
    // SmolLM2's 49152-token rows are 192 KiB: 1 MiB holds 5 of them, so 12 rows come in
    // chunks of 5, 5 and 2.
    let cap = 1 << 20;
    let Some(chunked) = backend(WgpuConfig { max_tensor_bytes: Some(cap), ..Default::default() })
    else {
        return;
    };
    assert_eq!(chunked.max_tensor_bytes(), cap);
    // A single activation over the limit is a typed error, not a panic.
    assert!(matches!(chunked.tensor(1024, 1024), Err(CoreError::Unsupported { .. })));

    let tokens: Vec<u32> = (0..12).map(|i| 1 + i * 997).collect();
    let a = all_logits(&whole, &tokens);
    let b = all_logits(&chunked, &tokens);
    let n_vocab = 49152;
    assert_eq!(a.len(), tokens.len() * n_vocab);
    assert_eq!(b.len(), a.len());
    // Chunks of 5 rows run the same tiled kernel: identical. The last chunk of 2 rows runs as
    // matrix-vector products (≤ 4 rows): close.
    assert_eq!(a[..10 * n_vocab], b[..10 * n_vocab]);
    let diff = a[10 * n_vocab..]
        .iter()
        .zip(&b[10 * n_vocab..])
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 0.1, "last chunk differs by {diff}");
}
