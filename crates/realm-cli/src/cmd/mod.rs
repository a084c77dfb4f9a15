pub mod batched_bench;
pub mod bench;
pub mod generate;
pub mod info;
pub mod parallel;
pub mod synth;
pub mod tokenize;

use std::path::Path;

use anyhow::Context;
use realm_gguf::MappedFile;

/// Map a model file; the error names the path.
pub fn open(path: &Path) -> anyhow::Result<MappedFile> {
    MappedFile::open(path).with_context(|| format!("cannot open model {}", path.display()))
}
