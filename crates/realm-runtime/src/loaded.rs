//! The generic step, written once over any backend: a batch of rows (tokens of one or many
//! sequences, placed in the paged KV pool) through the model, and what the caller wants of
//! the logit rows read back — every logit, the argmax, or both. The single-sequence
//! [`crate::Session`] and the serving scheduler both run every evaluation through
//! [`Loaded::step`]; greedy decoding on a GPU chains one-row steps ([`Loaded::decode_chained`]).

use realm_core::{Backend, BackendInfo, KvDtype, RowsDesc};
use realm_model::{Batch, Logits, Model, Scratch};

use crate::error::{Result, RuntimeError};

/// A backend and a model loaded on it.
pub(crate) struct Loaded<B: Backend> {
    pub backend: B,
    pub model: Model<B>,
}

/// Scratch sizes kept per state: a prefill chunk size, decode batches of a few sizes.
const SCRATCH_SIZES: usize = 4;
/// Most rows one forward pass takes (llama.cpp's `n_ubatch`): a step with more runs as
/// consecutive passes of this many, so activation memory stays bounded whatever the step's
/// token budget. Batch invariance makes the split invisible in the results.
const UBATCH: usize = 512;

/// A KV pool and activation buffers.
pub(crate) struct State<B: Backend> {
    kv: B::Kv,
    /// Buffers for the batch sizes used last (most recent last).
    scratch: Vec<Scratch<B>>,
    /// `[rows, 1]` argmax outputs, one per logits chunk of the last step that asked for them.
    argmax: Vec<B::Tensor>,
    /// `[1, 1]` tensors for chained greedy decoding: the argmax of the last single-row step
    /// is in slot `chain_last`; a chained step reads it and writes the other slot.
    chain: [Option<B::Tensor>; 2],
    chain_last: usize,
    /// Whether the last step ran as one pass that computed logits, so that they are still in
    /// the most recently used scratch ([`Loaded::read_logit_row`]).
    logits_kept: bool,
}

/// The rows of one step: `tokens[r]` placed by `rows` (position and sequence).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepRows<'a> {
    pub tokens: &'a [u32],
    pub rows: RowsDesc<'a>,
}

/// What a step reads back of its logit rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Want<'a> {
    /// Which rows have logits computed.
    pub rows: Logits<'a>,
    /// Read every logit of those rows.
    pub logits: bool,
    /// Read the argmax of each of those rows (ties to the lowest id).
    pub argmax: bool,
}

impl Want<'_> {
    /// Nothing back: the step only fills the KV pool (a prompt chunk before the last).
    pub(crate) const NOTHING: Want<'static> =
        Want { rows: Logits::Rows(&[]), logits: false, argmax: false };
}

/// What a step read back: `logits` row-major over the logit rows (when asked) and `ids`, the
/// argmax of each (when asked).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StepOut {
    pub logits: Vec<f32>,
    pub ids: Vec<u32>,
}

/// The argmax read of a step already submitted: the next token id, once the device has it.
pub type PendingId = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32>>>>;

fn to_ids(v: &[f32]) -> Result<Vec<u32>> {
    v.iter()
        .map(|&id| {
            // Indices below 2^24 are exact in f32; vocabularies are far smaller.
            if (0.0..16_777_216.0).contains(&id) {
                Ok(id as u32)
            } else {
                Err(RuntimeError::Invalid(format!("argmax returned {id}")))
            }
        })
        .collect()
}

impl<B: Backend + 'static> Loaded<B> {
    pub(crate) fn info(&self) -> BackendInfo {
        self.backend.info()
    }

    pub(crate) fn chains(&self) -> bool {
        self.backend.queues_work()
    }

    pub(crate) fn new_state(
        &self,
        n_blocks: usize,
        block_size: usize,
        dtype: KvDtype,
    ) -> Result<State<B>> {
        if n_blocks == 0 || block_size == 0 {
            return Err(RuntimeError::Invalid(format!(
                "a KV pool of {n_blocks} blocks of {block_size} positions"
            )));
        }
        let kv = self.backend.kv_cache(self.model.kv_desc(n_blocks, block_size, dtype))?;
        Ok(State {
            kv,
            scratch: Vec::new(),
            argmax: Vec::new(),
            chain: [None, None],
            chain_last: 0,
            logits_kept: false,
        })
    }

    /// The scratch for `n` rows, taken out of the state (put it back with [`Self::put_back`]).
    fn take_scratch(&self, st: &mut State<B>, n: usize) -> Result<Scratch<B>> {
        match st.scratch.iter().position(|s| s.len() == n) {
            Some(i) => Ok(st.scratch.remove(i)),
            None => Ok(self.model.scratch(&self.backend, n)?),
        }
    }

    fn put_back(st: &mut State<B>, s: Scratch<B>) {
        st.scratch.push(s);
        if st.scratch.len() > SCRATCH_SIZES {
            st.scratch.remove(0);
        }
    }

    pub(crate) async fn step(
        &self,
        st: &mut State<B>,
        rows: &StepRows<'_>,
        want: &Want<'_>,
    ) -> Result<StepOut> {
        let n = rows.tokens.len();
        st.logits_kept = false;
        if n <= UBATCH {
            let out = self.pass(st, rows, want).await?;
            st.logits_kept = !matches!(want.rows, Logits::Rows([]));
            return Ok(out);
        }
        if rows.rows.pos.len() != n || rows.rows.seq.len() != n {
            return Err(realm_core::shape_err(
                "step",
                format!("{n} tokens placed as {} rows", rows.rows.pos.len()),
            )
            .into());
        }
        let idx: Vec<u32> = match want.rows {
            Logits::Last => vec![n as u32 - 1],
            Logits::All => (0..n as u32).collect(),
            Logits::Rows(r) => r.to_vec(),
        };
        if idx.windows(2).any(|w| w[0] >= w[1]) {
            return Err(RuntimeError::Invalid("logit rows out of order".into()));
        }
        let mut out = StepOut::default();
        for start in (0..n).step_by(UBATCH) {
            let end = (start + UBATCH).min(n);
            let sub: Vec<u32> = idx
                .iter()
                .filter(|&&r| (start..end).contains(&(r as usize)))
                .map(|&r| r - start as u32)
                .collect();
            let part = StepRows {
                tokens: &rows.tokens[start..end],
                rows: RowsDesc {
                    pos: &rows.rows.pos[start..end],
                    seq: &rows.rows.seq[start..end],
                    ..rows.rows
                },
            };
            let w = if sub.is_empty() {
                Want::NOTHING
            } else {
                Want { rows: Logits::Rows(&sub), ..*want }
            };
            let o = self.pass(st, &part, &w).await?;
            out.logits.extend(o.logits);
            out.ids.extend(o.ids);
        }
        Ok(out)
    }

    /// One forward pass of at most [`UBATCH`] rows.
    async fn pass(
        &self,
        st: &mut State<B>,
        rows: &StepRows<'_>,
        want: &Want<'_>,
    ) -> Result<StepOut> {
        let mut s = self.take_scratch(st, rows.tokens.len())?;
        let recorded = self.record(st, &mut s, rows, want);
        Self::put_back(st, s);
        let (logits, ids) = recorded?;
        let mut out = StepOut::default();
        for read in logits {
            out.logits.extend(read.await?);
        }
        for read in ids {
            out.ids.extend(to_ids(&read.await?)?);
        }
        Ok(out)
    }

    /// Records and submits the step; returns the reads it started (logits, argmax ids).
    fn record(
        &self,
        st: &mut State<B>,
        s: &mut Scratch<B>,
        rows: &StepRows<'_>,
        want: &Want<'_>,
    ) -> Result<(Vec<PendingRead>, Vec<PendingRead>)> {
        let b = &self.backend;
        let batch = Batch { tokens: rows.tokens, rows: rows.rows, logits: want.rows };
        let outs = self.model.forward(b, &mut st.kv, &batch, s)?;
        let mut id_tensors: Vec<&B::Tensor> = Vec::new();
        if want.argmax {
            let single = outs.len() == 1 && b.shape(outs[0]).0 == 1;
            if single {
                // A one-row step leaves its argmax where a chained step can take it.
                let slot = st.chain_last;
                let am = match &mut st.chain[slot] {
                    Some(t) => t,
                    None => st.chain[slot].insert(b.tensor(1, 1)?),
                };
                b.argmax(outs[0], am)?;
            } else {
                let shapes: Vec<usize> = outs.iter().map(|t| b.shape(t).0).collect();
                let have: Vec<usize> = st.argmax.iter().map(|t| b.shape(t).0).collect();
                if shapes != have {
                    st.argmax = shapes.iter().map(|&r| b.tensor(r, 1)).collect::<Result<_, _>>()?;
                }
                for (t, am) in outs.iter().zip(st.argmax.iter_mut()) {
                    b.argmax(t, am)?;
                }
            }
            b.submit()?;
            if single {
                id_tensors.extend(st.chain[st.chain_last].as_ref());
            } else {
                id_tensors.extend(st.argmax.iter());
            }
        } else {
            b.submit()?;
        }
        let read = |t: &B::Tensor| -> PendingRead { Box::pin(b.read(t)) };
        let logits = if want.logits { outs.iter().map(|t| read(t)).collect() } else { Vec::new() };
        let ids = id_tensors.into_iter().map(read).collect();
        Ok((logits, ids))
    }

    /// Logit row `k` of the last step (an index into the rows it computed logits for) read
    /// back after the step, whether or not it asked for logits: a row needs them only
    /// sometimes (a constraint refused its argmax). Only a step that ran as one pass keeps
    /// them; after any other, this is an error.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) async fn read_logit_row(&self, st: &State<B>, k: usize) -> Result<Vec<f32>> {
        let found = st.scratch.last().filter(|_| st.logits_kept).and_then(|s| s.logit_row(k));
        let Some((t, row)) = found else {
            return Err(RuntimeError::Invalid(format!("logit row {k} of the last step is gone")));
        };
        Ok(self.backend.read_rows(t, row, 1).await?)
    }

    pub(crate) fn decode_chained(
        &self,
        st: &mut State<B>,
        rows: &RowsDesc<'_>,
    ) -> Result<PendingId> {
        st.logits_kept = false;
        let (src, dst) = (st.chain_last, 1 - st.chain_last);
        if st.chain[dst].is_none() {
            st.chain[dst] = Some(self.backend.tensor(1, 1)?);
        }
        let mut s = self.take_scratch(st, 1)?;
        let result = (|| {
            let [a, b] = &mut st.chain;
            let (ids, out) = match (src, a, b) {
                (0, Some(a), Some(b)) => (&*a, b),
                (1, Some(a), Some(b)) => (&*b, a),
                _ => return Err(RuntimeError::Invalid("no argmax to chain from".into())),
            };
            let logits =
                self.model.forward_device_token(&self.backend, &mut st.kv, ids, rows, &mut s)?;
            let last = logits
                .last()
                .ok_or_else(|| RuntimeError::Invalid("forward returned no logits".into()))?;
            self.backend.argmax(last, out)?;
            self.backend.submit()?;
            Ok(self.backend.read(out))
        })();
        Self::put_back(st, s);
        let read = result?;
        st.chain_last = dst;
        Ok(Box::pin(async move {
            to_ids(&read.await?)?
                .first()
                .copied()
                .ok_or_else(|| RuntimeError::Invalid("argmax returned nothing".into()))
        }))
    }
}

/// A read of a tensor, started.
type PendingRead =
    std::pin::Pin<Box<dyn std::future::Future<Output = realm_core::Result<Vec<f32>>>>>;
