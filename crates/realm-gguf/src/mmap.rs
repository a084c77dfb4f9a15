//! Memory-mapped model files (native only): weights are read in place, never copied.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{GgufError, Result};
use crate::reader::Gguf;

/// A GGUF file mapped into memory.
pub struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    pub fn open(path: impl AsRef<Path>) -> Result<MappedFile> {
        let path = path.as_ref();
        let io = |e: std::io::Error| GgufError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Err(GgufError::Empty);
        }
        // SAFETY: the map is read-only. Another process truncating the file while it is mapped
        // would fault (SIGBUS) as in every mmap-based loader (llama.cpp included); model files
        // are not modified in place while loaded.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Ok(MappedFile { map })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Parse the mapped file.
    pub fn gguf(&self) -> Result<Gguf<'_>> {
        Gguf::parse(&self.map)
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}
