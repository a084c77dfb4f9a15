//! Peak memory of a whole generation (`realm generate -c 2048`) on both real models: the
//! process's own peak RSS (VmHWM, reported through `REALM_PEAK_RSS_FILE`) must stay within the
//! model file + the f16 KV cache + 64 MiB (issue 3's budget): weights are memory-mapped and,
//! where the backend repacks them, the mapped pages are released, so nothing is held twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use realm_gguf::{HParams, MappedFile};
use realm_testdata::{MODELS, model};

const N_CTX: u64 = 2048;

#[test]
fn generation_fits_file_plus_kv_plus_64_mib() {
    for name in MODELS {
        let path = model(name);
        let map = MappedFile::open(&path).unwrap();
        let hp = HParams::from_gguf(&map.gguf().unwrap()).unwrap();
        let file = std::fs::metadata(&path).unwrap().len();
        let per_pos = u64::from(hp.n_head_kv) * u64::from(hp.head_dim_k + hp.head_dim_v) * 2;
        let kv = u64::from(hp.n_layer) * N_CTX * per_pos;
        drop(map);
        let rss_file =
            std::env::temp_dir().join(format!("realm-peak-{}-{name}.rss", std::process::id()));
        let out = Command::new(env!("CARGO_BIN_EXE_realm"))
            .args(["generate", "-p", "Hello there", "-n", "16", "-c", "2048", "--threads", "2"])
            .arg(&path)
            .env("REALM_PEAK_RSS_FILE", &rss_file)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let kib: u64 = std::fs::read_to_string(&rss_file).unwrap().trim().parse().unwrap();
        let _ = std::fs::remove_file(&rss_file);
        let (peak, budget) = (kib * 1024, file + kv + (64 << 20));
        eprintln!(
            "{name}: peak RSS {} MiB, budget {} MiB (file {} + KV {} + 64)",
            peak >> 20,
            budget >> 20,
            file >> 20,
            kv >> 20
        );
        assert!(peak <= budget, "{name}: peak RSS {peak} B over the budget {budget} B");
    }
}
