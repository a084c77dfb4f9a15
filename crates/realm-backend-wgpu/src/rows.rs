//! A step's row placement on the device ([`realm_core::Backend::rows`]): the checked
//! [`RowsPlan`] on the host, for the ops' shape checks and dispatch sizes, and its words staged
//! once for every shader of the step (`shaders/wgsl/common/rows.wgsl` reads them).

use std::sync::Mutex;

use realm_core::{CoreError, Result, RowsPlan};

use crate::gpu::{Gpu, lock};

/// Words are staged in whole blocks of this many, so that a decode step's rows (whose table
/// grows by a block now and then) keep the size, and so the bind groups, of the step before.
const PAD_WORDS: usize = 64;

/// A checked row placement and where the shaders read it.
pub struct WgpuRows {
    pub(crate) plan: RowsPlan,
    /// `[pos[n], seq[n], slot[n], table_start[n_seq], tables[..]]` as little-endian bytes.
    bytes: Vec<u8>,
    /// The word where the tables start (`3 · n + n_seq`).
    pub(crate) tables_at: u32,
    staged: Mutex<Staged>,
}

/// Where the words are, and the arena epoch under which they were staged.
struct Staged {
    epoch: u64,
    buffer: wgpu::Buffer,
    offset: u64,
    size: u64,
}

fn too_big(words: usize) -> CoreError {
    CoreError::Unsupported {
        op: "rows",
        what: format!("a row placement of {words} words (shaders index with 32 bits)"),
        backend: "wgpu",
    }
}

impl WgpuRows {
    /// Stages `plan` for the step being recorded.
    pub(crate) fn new(gpu: &Gpu, plan: RowsPlan) -> Result<Self> {
        let n = plan.len();
        let tables_at = 3 * n + plan.table_start.len();
        let len = tables_at + plan.tables.len();
        if u32::try_from(len).is_err() {
            return Err(too_big(len));
        }
        let mut words = Vec::with_capacity(len.div_ceil(PAD_WORDS).max(1) * PAD_WORDS);
        for part in [&plan.pos, &plan.seq, &plan.slot, &plan.table_start, &plan.tables] {
            words.extend_from_slice(part);
        }
        words.resize(words.capacity(), 0);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let tables_at = u32::try_from(tables_at).map_err(|_| too_big(len))?;
        let staged = stage(gpu, &bytes)?;
        Ok(Self { plan, bytes, tables_at, staged: Mutex::new(staged) })
    }

    /// The buffer, offset and size to bind. A placement used again after a submit (which
    /// rewinds the arena) is staged again.
    pub(crate) fn binding(&self, gpu: &Gpu) -> Result<(wgpu::Buffer, u64, u64)> {
        let mut s = lock(&self.staged, "rows")?;
        if s.epoch != gpu.stage_epoch()? {
            *s = stage(gpu, &self.bytes)?;
        }
        Ok((s.buffer.clone(), s.offset, s.size))
    }
}

fn stage(gpu: &Gpu, bytes: &[u8]) -> Result<Staged> {
    let epoch = gpu.stage_epoch()?;
    let (buffer, offset, size) = gpu.stage(bytes)?;
    Ok(Staged { epoch, buffer, offset, size })
}
