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

    /// Drop this process's resident pages of `offset .. offset + len` (whole pages inside it):
    /// they are read again from the file on the next access. A loader calls this once a backend
    /// has what it needs of a weight, so a backend that copied it does not hold it twice. A hint:
    /// out-of-range parts are ignored, and where unsupported it does nothing.
    pub fn release_range(&self, offset: usize, len: usize) {
        const PAGE: usize = 4096;
        let end = offset.saturating_add(len).min(self.map.len());
        let start = offset.next_multiple_of(PAGE);
        let end = end - end % PAGE;
        if start >= end {
            return;
        }
        #[cfg(unix)]
        // SAFETY: the mapping is a read-only private file mapping (`Mmap`, never written), so
        // after MADV_DONTNEED a later access faults the same bytes back in from the file; no
        // reference observes different contents (as for any mmap, provided the file is not
        // modified on disk while mapped, the condition `open` documents). The range is inside
        // the mapping and page-aligned.
        unsafe {
            let _ = self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                start,
                end - start,
            );
        }
    }

    /// Tell the OS that `offset .. offset + len` is read at random places (an embedding table:
    /// a row per token), so a page fault there reads that page, not the pages after it too:
    /// random lookups into a large table then keep only the rows used resident. A hint, as
    /// [`MappedFile::release_range`].
    pub fn advise_random(&self, offset: usize, len: usize) {
        let end = offset.saturating_add(len).min(self.map.len());
        if offset >= end {
            return;
        }
        #[cfg(unix)]
        let _ = self.map.advise_range(memmap2::Advice::Random, offset, end - offset);
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
