//! The host side of the paged KV pool: which blocks are free, who holds each block
//! (reference counts: sequences that share a prefix share its blocks), and the automatic
//! prefix cache — every full block is keyed by a hash of the whole token prefix up to its end,
//! so a new request finds the blocks of a prompt it shares with earlier ones and computes only
//! the rest. Blocks no sequence holds stay cached until the pool needs them back, least
//! recently used first (vLLM's automatic prefix caching, written here from its description).
//!
//! The device side is the backend's KV pool ([`realm_core::KvDesc`]); this file never touches
//! it. A cached block's contents are valid as long as it is in the cache: a block is written
//! only by the one sequence that allocated it, and only while it is not full.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};

/// A chained hash of a token prefix: the parent block's hash and this block's tokens, under
/// the pool's random key (so no one can craft two prefixes that collide; a hit is also checked
/// against the block's tokens and parent).
fn block_hash(key: &RandomState, parent: u64, tokens: &[u32]) -> u64 {
    let mut h = key.build_hasher();
    parent.hash(&mut h);
    tokens.hash(&mut h);
    h.finish()
}

/// What the cache keeps of a full block, to check a hit beyond its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    hash: u64,
    parent: u64,
    tokens: Vec<u32>,
}

/// Counts the pool reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub blocks: usize,
    pub block_size: usize,
    /// Blocks some sequence holds.
    pub in_use: usize,
    /// Blocks no sequence holds that keep a cached prefix (reclaimable).
    pub cached: usize,
    /// Prompt tokens looked up, and how many of them were found in the cache.
    pub lookup_tokens: u64,
    pub hit_tokens: u64,
    /// Cached blocks taken back for other use.
    pub evictions: u64,
}

/// The block allocator and prefix cache.
pub(crate) struct BlockPool {
    block_size: usize,
    refs: Vec<u32>,
    /// Blocks with no contents worth keeping, lowest first (so the memory in use stays
    /// compact and a lazily committed pool touches few pages).
    free: BTreeSet<u32>,
    /// Per block: its key, if it is in the cache.
    keys: Vec<Option<Key>>,
    /// Prefix hash → cached block.
    by_hash: HashMap<u64, u32>,
    /// Unheld cached blocks by the time they were released (least recent first).
    lru: BTreeMap<u64, u32>,
    /// Per block: its place in `lru`, while it is there.
    lru_at: Vec<Option<u64>>,
    clock: u64,
    key: RandomState,
    stats: PoolStats,
}

impl BlockPool {
    pub(crate) fn new(n_blocks: usize, block_size: usize) -> BlockPool {
        BlockPool {
            block_size,
            refs: vec![0; n_blocks],
            free: (0..n_blocks as u32).collect(),
            keys: vec![None; n_blocks],
            by_hash: HashMap::new(),
            lru: BTreeMap::new(),
            lru_at: vec![None; n_blocks],
            clock: 0,
            key: RandomState::new(),
            stats: PoolStats { blocks: n_blocks, block_size, ..PoolStats::default() },
        }
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks an allocation can get now: free ones and cached ones no sequence holds.
    pub(crate) fn available(&self) -> usize {
        self.free.len() + self.lru.len()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            in_use: self.refs.iter().filter(|&&r| r > 0).count(),
            cached: self.lru.len(),
            ..self.stats
        }
    }

    /// A block for a sequence to write (held once): a free one, else the least recently used
    /// cached one, whose prefix leaves the cache. `None` when every block is held.
    pub(crate) fn allocate(&mut self) -> Option<u32> {
        let b = match self.free.pop_first() {
            Some(b) => b,
            None => {
                let (_, b) = self.lru.pop_first()?;
                self.lru_at[b as usize] = None;
                self.forget(b);
                self.stats.evictions += 1;
                b
            }
        };
        self.refs[b as usize] = 1;
        Some(b)
    }

    /// Drops block `b` from the prefix cache.
    fn forget(&mut self, b: u32) {
        if let Some(key) = self.keys[b as usize].take()
            && self.by_hash.get(&key.hash) == Some(&b)
        {
            self.by_hash.remove(&key.hash);
        }
    }

    /// Holds `b` once more (a sequence sharing a cached block).
    fn retain(&mut self, b: u32) {
        let i = b as usize;
        if self.refs[i] == 0
            && let Some(t) = self.lru_at[i].take()
        {
            self.lru.remove(&t);
        }
        self.refs[i] += 1;
    }

    /// Lets go of `b` once. A block no one holds stays cached if it is in the cache (most
    /// recently used), else it is free.
    pub(crate) fn release(&mut self, b: u32) {
        let i = b as usize;
        let Some(r) = self.refs.get_mut(i) else { return };
        if *r == 0 {
            return;
        }
        *r -= 1;
        if *r > 0 {
            return;
        }
        if self.keys[i].is_some() {
            self.clock += 1;
            self.lru.insert(self.clock, b);
            self.lru_at[i] = Some(self.clock);
        } else {
            self.free.insert(b);
        }
    }

    /// The cached blocks holding the longest prefix of `tokens` in whole blocks, held for
    /// the caller, with the hash of each (for [`BlockPool::register`] to chain on).
    pub(crate) fn lookup(&mut self, tokens: &[u32]) -> (Vec<u32>, Vec<u64>) {
        let (mut blocks, mut hashes) = (Vec::new(), Vec::new());
        let mut parent = 0u64;
        for chunk in tokens.chunks_exact(self.block_size) {
            let hash = block_hash(&self.key, parent, chunk);
            let Some(&b) = self.by_hash.get(&hash) else { break };
            let same = self.keys[b as usize]
                .as_ref()
                .is_some_and(|k| k.parent == parent && k.tokens == chunk);
            if !same {
                break;
            }
            self.retain(b);
            blocks.push(b);
            hashes.push(hash);
            parent = hash;
        }
        self.stats.lookup_tokens += tokens.len() as u64;
        self.stats.hit_tokens += (blocks.len() * self.block_size) as u64;
        (blocks, hashes)
    }

    /// Block `b`, just filled with `tokens` after the prefix whose last block hashed to
    /// `parent`, enters the cache; returns its hash. When the same prefix is already cached
    /// in another block (two sequences computed it at once), `b` stays out of the cache.
    pub(crate) fn register(&mut self, b: u32, parent: u64, tokens: &[u32]) -> u64 {
        let hash = block_hash(&self.key, parent, tokens);
        if self.keys[b as usize].is_none() && !self.by_hash.contains_key(&hash) {
            self.by_hash.insert(hash, b);
            self.keys[b as usize] = Some(Key { hash, parent, tokens: tokens.to_vec() });
        }
        hash
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_handed_out_lowest_first_and_come_back() {
        let mut p = BlockPool::new(4, 2);
        let a: Vec<u32> = (0..4).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(a, [0, 1, 2, 3]);
        assert_eq!(p.allocate(), None);
        p.release(2);
        assert_eq!(p.available(), 1);
        assert_eq!(p.allocate(), Some(2));
        for b in 0..4 {
            p.release(b);
        }
        assert_eq!(p.stats().in_use, 0);
        assert_eq!(p.available(), 4);
    }

    #[test]
    fn a_shared_prefix_is_found_and_held_twice() {
        let mut p = BlockPool::new(8, 2);
        let prompt = [1, 2, 3, 4, 5];
        let (b0, b1) = (p.allocate().unwrap(), p.allocate().unwrap());
        let h0 = p.register(b0, 0, &prompt[0..2]);
        p.register(b1, h0, &prompt[2..4]);
        // Another prompt with the same first four tokens finds both blocks.
        let (hit, hashes) = p.lookup(&[1, 2, 3, 4, 9]);
        assert_eq!(hit, [b0, b1]);
        assert_eq!(hashes[0], h0);
        // Same second block's tokens after another first block: no hit past the first.
        assert_eq!(p.lookup(&[7, 7, 3, 4]).0, Vec::<u32>::new());
        assert_eq!(p.lookup(&[1, 2, 9, 9]).0, [b0]);
        p.release(b0);
        p.release(b0);
        assert_eq!(p.stats().in_use, 2);
        assert_eq!(p.stats().hit_tokens, 6);
    }

    #[test]
    fn unheld_cached_blocks_are_evicted_least_recent_first() {
        let mut p = BlockPool::new(3, 1);
        let bs: Vec<u32> = (0..3).map(|_| p.allocate().unwrap()).collect();
        let mut parent = 0;
        for (i, &b) in bs.iter().enumerate() {
            parent = p.register(b, parent, &[i as u32]);
        }
        p.release(bs[1]);
        p.release(bs[0]);
        p.release(bs[2]);
        assert_eq!(p.stats().cached, 3);
        // Needing a block takes back the least recently released: block 1, whose prefix is
        // no longer found (and so neither is anything after it).
        assert_eq!(p.allocate(), Some(bs[1]));
        assert_eq!(p.lookup(&[0, 1, 2]).0, [bs[0]]);
        p.release(bs[0]);
        p.release(bs[1]);
        assert_eq!(p.stats().in_use, 0);
        assert_eq!(p.stats().cached, 2);
        assert_eq!(p.available(), 3);
    }

    #[test]
    fn the_same_prefix_computed_twice_is_cached_once() {
        let mut p = BlockPool::new(2, 2);
        let (a, b) = (p.allocate().unwrap(), p.allocate().unwrap());
        let h = p.register(a, 0, &[5, 6]);
        assert_eq!(p.register(b, 0, &[5, 6]), h);
        p.release(b);
        // `b` was not in the cache: free at once.
        assert_eq!(p.stats().cached, 0);
        assert_eq!(p.lookup(&[5, 6]).0, [a]);
    }
}
