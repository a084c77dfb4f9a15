//! Many short, unique byte strings in a few flat allocations: every text back to back in one
//! arena with `u32` offsets, and an open-addressing index of `u32` ids keyed by the text.
//!
//! A 262,144-token vocabulary (Gemma 3) costs about 4.7 MiB this way, against some 45 MiB as a
//! `Vec` of boxed texts plus a `HashMap<Box<[u8]>, u32>` holding a second copy of each (two
//! small heap allocations per token, each with allocator overhead).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;

/// Smallest index: keeps the probe arithmetic away from tiny-table corner cases.
const MIN_SLOTS: usize = 16;

/// Why [`StrTable::insert`] did not add a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// The text is already stored under this id.
    Duplicate(u32),
    /// The table holds as many texts as it was sized for, or the arena would pass 4 GiB.
    Full,
}

/// Texts `0..len()`, each findable by its bytes; no text is stored twice.
#[derive(Clone)]
pub(crate) struct StrTable {
    /// All texts concatenated.
    bytes: Vec<u8>,
    /// Text `i` is `bytes[starts[i]..starts[i + 1]]` (`len() + 1` entries).
    starts: Vec<u32>,
    /// Linear probing, at most two-thirds full. 0 is an empty slot; otherwise the bits under
    /// `id_mask` hold `id + 1` and the bits above them a tag taken from the text's hash, so
    /// nearly every probe that is not a match is rejected without reading a text.
    slots: Vec<u32>,
    /// Texts the table was sized for.
    max_len: usize,
    /// Mask of the `id + 1` bits of a slot; the tag is the rest.
    id_mask: u32,
    /// Per-table random hash seed, so a crafted vocabulary cannot aim for collisions.
    seed: u64,
}

impl StrTable {
    /// Room for `max_len` texts of `total_bytes` bytes in all; `None` if ids or offsets would
    /// not fit in `u32` or the index would pass 2^32 slots.
    pub(crate) fn with_capacity(max_len: usize, total_bytes: usize) -> Option<StrTable> {
        let n = u32::try_from(max_len).ok()?;
        u32::try_from(total_bytes).ok()?;
        // More slots than texts, so a probe always ends at an empty one.
        let n_slots = max_len.checked_add(max_len / 2 + 1)?.max(MIN_SLOTS);
        u32::try_from(n_slots).ok()?;
        let id_bits = u32::BITS - n.leading_zeros();
        let mut starts = Vec::with_capacity(max_len.checked_add(1)?);
        starts.push(0);
        Some(StrTable {
            bytes: Vec::with_capacity(total_bytes),
            starts,
            slots: vec![0; n_slots],
            max_len,
            id_mask: u32::try_from((1u64 << id_bits) - 1).unwrap_or(u32::MAX),
            seed: RandomState::new().hash_one(0x7265_616c_6d5f_7374_u64),
        })
    }

    /// Number of texts stored.
    pub(crate) fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Text `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let (&a, &b) = (self.starts.get(i)?, self.starts.get(i + 1)?);
        self.bytes.get(a as usize..b as usize)
    }

    /// The id of `text`, if stored.
    pub(crate) fn find(&self, text: &[u8]) -> Option<u32> {
        let h = hash_bytes(self.seed, text);
        let tag = self.tag(h);
        let mut i = self.first_slot(h);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & !self.id_mask == tag {
                let id = (s & self.id_mask) - 1;
                if self.get(id) == Some(text) {
                    return Some(id);
                }
            }
            i = self.next_slot(i);
        }
    }

    /// Append `text` as the next id.
    pub(crate) fn insert(&mut self, text: &[u8]) -> Result<u32, Rejected> {
        if self.len() >= self.max_len {
            return Err(Rejected::Full);
        }
        let end = self.bytes.len().checked_add(text.len()).ok_or(Rejected::Full)?;
        let end = u32::try_from(end).map_err(|_| Rejected::Full)?;
        let id = u32::try_from(self.len()).map_err(|_| Rejected::Full)?;
        let h = hash_bytes(self.seed, text);
        let tag = self.tag(h);
        let mut i = self.first_slot(h);
        // Never full (`with_capacity`), so an empty slot is always reached.
        loop {
            let s = self.slots[i];
            if s == 0 {
                break;
            }
            if s & !self.id_mask == tag {
                let other = (s & self.id_mask) - 1;
                if self.get(other) == Some(text) {
                    return Err(Rejected::Duplicate(other));
                }
            }
            i = self.next_slot(i);
        }
        self.slots[i] = tag | (id + 1);
        self.bytes.extend_from_slice(text);
        self.starts.push(end);
        Ok(id)
    }

    /// Release spare arena capacity (texts that turned out shorter or fewer than announced).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.starts.shrink_to_fit();
    }

    /// The hash's top 32 bits scaled to `0..slots.len()` (at most 2^32 slots).
    fn first_slot(&self, h: u64) -> usize {
        (((h >> 32) * self.slots.len() as u64) >> 32) as usize
    }

    fn next_slot(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() { 0 } else { i + 1 }
    }

    fn tag(&self, h: u64) -> u32 {
        (h as u32) & !self.id_mask
    }
}

impl Default for StrTable {
    fn default() -> StrTable {
        StrTable {
            bytes: Vec::new(),
            starts: vec![0],
            slots: vec![0; MIN_SLOTS],
            max_len: 0,
            id_mask: 0,
            seed: 0,
        }
    }
}

impl fmt::Debug for StrTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrTable")
            .field("len", &self.len())
            .field("text_bytes", &self.bytes.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

const MUL_A: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL_B: u64 = 0xD6E8_FEB8_6659_FD93;

/// The full 128-bit product folded to 64 bits: every input bit reaches every output bit.
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

fn read_u64(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

fn read_u32(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// A fast seeded hash of short byte strings (token texts average about 8 bytes). The words
/// mixed in cover every byte exactly as a function of the length, which is mixed in first, so
/// different texts differ in at least one mixed word; which texts collide depends on the seed.
fn hash_bytes(seed: u64, s: &[u8]) -> u64 {
    let n = s.len();
    let h = seed ^ (n as u64).wrapping_mul(MUL_A);
    if n <= 8 {
        let x = if n >= 4 {
            (read_u32(s, 0) << 32) | read_u32(s, n - 4)
        } else if n > 0 {
            u64::from(s[0]) | (u64::from(s[n / 2]) << 8) | (u64::from(s[n - 1]) << 16)
        } else {
            0
        };
        return fold_mul(h ^ x, MUL_B);
    }
    let mut h = h;
    let mut at = 0;
    while n - at > 8 {
        h = fold_mul(h ^ read_u64(s, at), MUL_A);
        at += 8;
    }
    fold_mul(h ^ read_u64(s, n - 8), MUL_B)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn insert_find_get_and_duplicates() {
        let words: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| format!("w{i}").repeat(1 + (i as usize % 7)).into_bytes())
            .chain([Vec::new(), b"x".to_vec(), b"xy".to_vec(), b"xyz".to_vec()])
            .collect();
        let total = words.iter().map(Vec::len).sum();
        let mut t = StrTable::with_capacity(words.len(), total).unwrap();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.insert(w), Ok(i as u32));
        }
        assert_eq!(t.insert(b"xy"), Err(Rejected::Full));
        assert_eq!(t.len(), words.len());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.find(w), Some(i as u32));
            assert_eq!(t.get(i as u32), Some(&w[..]));
        }
        assert_eq!(t.get(words.len() as u32), None);
        for miss in [&b"w1w"[..], b"yx", b"w4999w4999w4999", b"\xff"] {
            assert_eq!(t.find(miss), None);
        }
        let mut t = StrTable::with_capacity(3, 3).unwrap();
        assert_eq!(t.insert(b"a"), Ok(0));
        assert_eq!(t.insert(b"b"), Ok(1));
        assert_eq!(t.insert(b"a"), Err(Rejected::Duplicate(0)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn empty_table_finds_nothing() {
        let t = StrTable::default();
        assert_eq!((t.len(), t.find(b""), t.find(b"a"), t.get(0)), (0, None, None, None));
        let t = StrTable::with_capacity(0, 0).unwrap();
        assert_eq!((t.len(), t.find(b"")), (0, None));
    }

    #[test]
    fn hash_separates_lengths_and_every_byte() {
        let base: Vec<u8> = (0..40u8).collect();
        for n in 0..=base.len() {
            let s = &base[..n];
            let h = hash_bytes(7, s);
            if n > 0 {
                assert_ne!(h, hash_bytes(7, &base[..n - 1]), "length {n}");
            }
            for i in 0..n {
                let mut t = s.to_vec();
                t[i] ^= 0x80;
                assert_ne!(h, hash_bytes(7, &t), "length {n}, byte {i}");
            }
        }
    }
}
