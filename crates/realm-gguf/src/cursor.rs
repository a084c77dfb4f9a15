//! A bounds-checked little-endian reader. Every read checks the bytes remaining first and reports
//! a [`GgufError::Truncated`] naming what was being read, where, and how much was missing.

use crate::error::{GgufError, Result};

/// Longest string accepted anywhere in a GGUF file (keys, values, tensor names).
pub const MAX_STRING_LEN: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// File offset of `buf[0]`, for error messages.
    base: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Cursor { buf, pos: 0, base }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    pub(crate) fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let available = self.remaining();
        if n > available {
            return Err(GgufError::Truncated { what, offset: self.offset(), needed: n, available });
        }
        // n <= available <= usize::MAX, so the cast is lossless.
        let end = self.pos + n as usize;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Bytes consumed since the cursor-relative position `start` (an offset from [`Self::offset`]).
    pub(crate) fn since(&self, start_offset: u64) -> &'a [u8] {
        let start = (start_offset.saturating_sub(self.base) as usize).min(self.pos);
        &self.buf[start..self.pos]
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length then that many bytes.
    pub(crate) fn string_bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let at = self.offset();
        let len = self.u64(what)?;
        if len > MAX_STRING_LEN {
            return Err(GgufError::TooMany {
                what: "string byte",
                count: len,
                limit: MAX_STRING_LEN,
                offset: at,
            });
        }
        self.take(len, what)
    }

    /// A GGUF string that must be UTF-8 (keys, tensor names).
    pub(crate) fn utf8(&mut self, what: &'static str) -> Result<&'a str> {
        let at = self.offset();
        let bytes = self.string_bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| GgufError::InvalidUtf8 { what, offset: at })
    }
}
