//! The engine thread: admission, each step's rows, preemption, and every request's events.
//!
//! A step, in order:
//! 1. Commands in (new requests join the waiting queue), cancelled requests out (their blocks
//!    are released before the step runs).
//! 2. Running sequences in arrival order, each given the rows it still has to compute: one
//!    decode row, or the next chunk of its prompt, while the step's token budget lasts. A
//!    decode row that starts a block takes a new one; when the pool has none left, the most
//!    recently arrived running sequence is preempted (its blocks released; it waits again
//!    and is recomputed later — full blocks usually come back from the prefix cache).
//! 3. Waiting sequences in arrival order (a preempted one keeps its place) are admitted
//!    while there is budget, room under `max_running`, and blocks for their whole prompt;
//!    the prefix cache gives them every cached block of it. The first that does not fit
//!    stops admission (first come, first served), and a step that preempted admits none.
//! 4. One forward pass over all the rows; the sequences whose last row had logits pick their
//!    next token (argmax or their own sampler and seed), run the token loop, and send events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use realm_core::RowsDesc;
use realm_model::Logits;

use super::events::{Completion, EventQueue, RequestError, SeqEvent, Timings};
use super::lookup::{self, Backoff, StepCost};
use super::{Command, SchedulerConfig, SchedulerStats, Shared};
use crate::clock::now;
use crate::device::DeviceState;
use crate::engine::Engine;
use crate::error::{Result, RuntimeError};
use crate::kv_blocks::BlockPool;
use crate::loaded::{StepRows, Want};
use crate::request::GenerateRequest;
use crate::sequence::{Event, FinishReason, Needs, Next, TokenLoop};
use realm_grammar::Grammars;

/// The pool's size and the longest sequence, from the config and the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub n_blocks: usize,
    pub max_seq_len: usize,
}

impl Sizes {
    pub(crate) fn of(engine: &Engine, c: &SchedulerConfig) -> Result<Sizes> {
        let bad = |what: String| Err(RuntimeError::Invalid(what));
        if c.block_size == 0 || c.max_running == 0 || c.max_waiting == 0 {
            return bad(format!(
                "block_size {}, max_running {} and max_waiting {} must be positive",
                c.block_size, c.max_running, c.max_waiting
            ));
        }
        if c.max_batch_tokens < c.max_running {
            return bad(format!(
                "max_batch_tokens {} is less than max_running {} (every running sequence \
                 needs a row per step)",
                c.max_batch_tokens, c.max_running
            ));
        }
        let per_block =
            engine.device.kv_bytes_per_slot(c.kv_dtype).saturating_mul(c.block_size as u64);
        let n_blocks = usize::try_from(c.kv_budget_bytes / per_block.max(1)).unwrap_or(usize::MAX);
        if n_blocks < 2 {
            return bad(format!(
                "a KV budget of {} bytes holds {n_blocks} blocks of {} positions ({per_block} \
                 bytes each); give it at least two",
                c.kv_budget_bytes, c.block_size
            ));
        }
        let pool = n_blocks.saturating_mul(c.block_size);
        let want = if c.max_seq_len == 0 { engine.n_ctx_train() } else { c.max_seq_len };
        Ok(Sizes { n_blocks, max_seq_len: want.clamp(2, pool) })
    }
}

/// One request on the engine thread.
pub(crate) struct Seq {
    pub(crate) id: u64,
    /// The prompt, then the generated tokens.
    tokens: Vec<u32>,
    prompt_len: usize,
    /// Leading positions whose keys and values are in the pool.
    computed: usize,
    /// The blocks holding positions `0 ..`, and the prefix hash of each full block the
    /// cache knows (as many as are registered).
    blocks: Vec<u32>,
    hashes: Vec<u64>,
    lp: TokenLoop,
    pub(crate) events: Arc<EventQueue>,
    pub(crate) cancel: Arc<AtomicBool>,
    submitted: f64,
    admitted: Option<f64>,
    first_token: Option<f64>,
    cached_tokens: usize,
    preemptions: u32,
    /// `max_tokens: Some(0)`: ends without running.
    nothing_to_do: bool,
    /// Prompt lookup: when to draft, and the counts.
    backoff: Backoff,
    drafted: u32,
    accepted: u32,
}

impl Seq {
    pub(crate) fn new(
        id: u64,
        req: GenerateRequest,
        n_vocab: usize,
        grammars: &dyn Fn() -> Result<Arc<Grammars>>,
    ) -> Result<Seq> {
        let lp = TokenLoop::new(&req.options, &req.prompt, n_vocab, grammars)?;
        Ok(Seq {
            id,
            prompt_len: req.prompt.len(),
            nothing_to_do: req.options.max_tokens == Some(0),
            tokens: req.prompt,
            computed: 0,
            blocks: Vec::new(),
            hashes: Vec::new(),
            lp,
            events: Arc::new(EventQueue::default()),
            cancel: Arc::new(AtomicBool::new(false)),
            submitted: now(),
            admitted: None,
            first_token: None,
            cached_tokens: 0,
            preemptions: 0,
            backoff: Backoff::default(),
            drafted: 0,
            accepted: 0,
        })
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    fn since(&self, t: f64) -> f64 {
        (t - self.submitted).max(0.0)
    }
}

/// A sequence's share of one step.
struct Member {
    id: u64,
    /// Rows of its pending tokens (then its draft's).
    rows: usize,
    /// Index of its (first) logit row, when the step ends its pending tokens.
    logit: Option<usize>,
    /// Draft tokens after the pending one (prompt lookup): a row and an argmax each.
    draft: Vec<u32>,
}

struct Core {
    engine: Engine,
    state: DeviceState,
    pool: BlockPool,
    config: SchedulerConfig,
    sizes: Sizes,
    /// Both in arrival order.
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    shared: Arc<Shared>,
    stats: SchedulerStats,
    /// Decode step times by rows: where a draft token pays for its row.
    cost: StepCost,
}

/// The engine thread's body: allocates the pool (reporting the outcome on `ready`), then
/// serves until shutdown.
pub(crate) fn run(
    engine: Engine,
    config: SchedulerConfig,
    sizes: Sizes,
    rx: Receiver<Command>,
    shared: Arc<Shared>,
    ready: Sender<Result<()>>,
) {
    let state = match engine.device.new_state(sizes.n_blocks, config.block_size, config.kv_dtype) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let stats = shared.stats.lock().map(|s| *s).unwrap_or_default();
    let mut core = Core {
        engine,
        state,
        pool: BlockPool::new(sizes.n_blocks, config.block_size),
        config,
        sizes,
        waiting: VecDeque::new(),
        running: Vec::new(),
        shared,
        stats,
        cost: StepCost::default(),
    };
    core.serve(&rx);
    core.close(&rx);
}

impl Core {
    fn serve(&mut self, rx: &Receiver<Command>) {
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                match rx.recv() {
                    Ok(c) => {
                        if !self.command(c) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(c) => {
                        if !self.command(c) {
                            return;
                        }
                    }
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.reap_cancelled();
            if !self.running.is_empty() || !self.waiting.is_empty() {
                self.step();
            }
            self.publish();
        }
    }

    /// Handles one command; `false` means shut down.
    fn command(&mut self, c: Command) -> bool {
        match c {
            Command::Submit(seq) if seq.nothing_to_do => {
                self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
                self.finish(*seq, FinishReason::Length);
            }
            Command::Submit(seq) => self.waiting.push_back(*seq),
            Command::Wake => {}
            Command::Shutdown => return false,
        }
        true
    }

    /// Stops: every request still here, and any submitted meanwhile, ends.
    fn close(&mut self, rx: &Receiver<Command>) {
        self.shared.closed.store(true, Ordering::Release);
        for s in std::mem::take(&mut self.running) {
            self.finish(s, FinishReason::Cancelled);
        }
        while let Some(s) = self.waiting.pop_front() {
            if s.admitted.is_none() {
                self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
            }
            self.finish(s, FinishReason::Cancelled);
        }
        while let Ok(c) = rx.try_recv() {
            if let Command::Submit(s) = c {
                self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
                self.fail(*s, &RuntimeError::ShutDown);
            }
        }
        self.publish();
    }

    fn reap_cancelled(&mut self) {
        let (gone, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.running).into_iter().partition(|s| s.cancelled());
        self.running = kept;
        for s in gone {
            self.finish(s, FinishReason::Cancelled);
        }
        let (gone, kept): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|s| s.cancelled());
        self.waiting = kept;
        for s in gone {
            if s.admitted.is_none() {
                self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
            }
            self.finish(s, FinishReason::Cancelled);
        }
    }

    /// Releases a sequence's blocks (full ones stay in the prefix cache).
    fn release(&mut self, s: &mut Seq) {
        for b in s.blocks.drain(..) {
            self.pool.release(b);
        }
        s.hashes.clear();
        s.computed = 0;
    }

    fn finish(&mut self, mut s: Seq, reason: FinishReason) {
        self.release(&mut s);
        let events = s.events.clone();
        s.lp.finish(reason, &mut |e| {
            if let Event::Flush { text } = e {
                events.push(SeqEvent::Flush { text: text.to_string() });
            }
        });
        match reason {
            FinishReason::Cancelled => self.stats.cancelled += 1,
            _ => self.stats.finished += 1,
        }
        let t = now();
        let timings = Timings {
            queue_seconds: s.admitted.map_or(s.since(t), |a| s.since(a)),
            first_token_seconds: s.first_token.map_or(0.0, |f| s.since(f)),
            total_seconds: s.since(t),
            preemptions: s.preemptions,
            draft_tokens: s.drafted,
            draft_accepted: s.accepted,
        };
        let (prompt_tokens, cached_tokens) = (s.prompt_len, s.cached_tokens);
        let (tokens, text) = s.lp.into_output();
        events.push(SeqEvent::Done(Completion {
            finish: reason,
            prompt_tokens,
            cached_tokens,
            tokens,
            text,
            timings,
        }));
    }

    fn fail(&mut self, mut s: Seq, e: &RuntimeError) {
        self.release(&mut s);
        self.stats.failed += 1;
        s.events.push(SeqEvent::Failed(RequestError::from(e)));
    }

    /// Gives `s` its blocks: the cached prefix of its tokens, then new blocks for the rest.
    /// `false` (and nothing held) when the pool cannot hold them now.
    fn admit(&mut self, s: &mut Seq) -> bool {
        let bs = self.pool.block_size();
        let len = s.tokens.len();
        // At least the last token is computed: its logits give the next one.
        let usable = if self.config.prefix_cache { (len - 1) / bs * bs } else { 0 };
        let (hit, hashes) = self.pool.lookup(&s.tokens[..usable]);
        let need = len.div_ceil(bs) - hit.len();
        if self.pool.available() < need {
            for b in hit {
                self.pool.release(b);
            }
            return false;
        }
        s.computed = hit.len() * bs;
        s.blocks = hit;
        s.hashes = hashes;
        for _ in 0..need {
            match self.pool.allocate() {
                Some(b) => s.blocks.push(b),
                None => {
                    self.release(s);
                    return false;
                }
            }
        }
        if s.admitted.is_none() {
            let t = now();
            s.admitted = Some(t);
            s.cached_tokens = s.computed;
            self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
            s.events.push(SeqEvent::Started {
                prompt_tokens: s.prompt_len,
                cached_tokens: s.cached_tokens,
                queue_seconds: s.since(t),
            });
        }
        true
    }

    /// Sends running sequence `i` back to the waiting queue (in arrival order).
    fn preempt(&mut self, i: usize) {
        let mut s = self.running.remove(i);
        self.release(&mut s);
        s.preemptions += 1;
        self.stats.preemptions += 1;
        s.events.push(SeqEvent::Preempted);
        let at = self.waiting.iter().position(|w| w.id > s.id).unwrap_or(self.waiting.len());
        self.waiting.insert(at, s);
    }

    /// Blocks for running sequence `i` up to position `upto` (exclusive), preempting newer
    /// sequences while the pool has none. `false` when `i` itself had to be preempted.
    fn grow(&mut self, i: usize, upto: usize) -> bool {
        let bs = self.pool.block_size();
        while self.running[i].blocks.len() * bs < upto {
            if let Some(b) = self.pool.allocate() {
                self.running[i].blocks.push(b);
                continue;
            }
            // The newest running sequence gives its blocks back; when that is `i`, it waits.
            let newest = self.running.len() - 1;
            self.preempt(newest);
            if newest == i {
                return false;
            }
        }
        true
    }

    /// Plans and runs one step.
    fn step(&mut self) {
        let mut budget = self.config.max_batch_tokens;
        let mut members: Vec<Member> = Vec::new();
        let preempted_before = self.stats.preemptions;
        let mut i = 0;
        while i < self.running.len() {
            let s = &self.running[i];
            let take = (s.tokens.len() - s.computed).min(budget);
            if take == 0 {
                i += 1;
                continue;
            }
            // Rows left for the running sequences after this one (one each); drafts fill the
            // step only up to the lookup's `step_rows`.
            let after = self.running.len() - i - 1;
            let used = self.config.max_batch_tokens - budget + take + after;
            let cap = self.config.lookup.map_or(0, |c| c.step_rows.saturating_sub(used));
            let computed = s.computed;
            let draft = self.draft_for(i, budget.saturating_sub(take + after).min(cap), used);
            let upto = computed + take + draft.len();
            if !self.grow(i, upto) {
                continue;
            }
            budget -= take + draft.len();
            members.push(Member { id: self.running[i].id, rows: take, logit: None, draft });
            i += 1;
        }
        // No admission in a step that had to preempt: the pool is short, and the sequence just
        // preempted would come straight back (its full blocks are in the prefix cache) only to
        // be preempted again.
        let short = self.stats.preemptions != preempted_before;
        while !short && budget > 0 && self.running.len() < self.config.max_running {
            let Some(mut s) = self.waiting.pop_front() else { break };
            if !self.admit(&mut s) {
                self.waiting.push_front(s);
                break;
            }
            let take = (s.tokens.len() - s.computed).min(budget);
            members.push(Member { id: s.id, rows: take, logit: None, draft: Vec::new() });
            budget -= take;
            let at = self.running.iter().position(|r| r.id > s.id).unwrap_or(self.running.len());
            self.running.insert(at, s);
        }
        if !members.is_empty() {
            self.run_step(members);
        }
    }

    /// A prompt-lookup draft of at most `room` tokens for running sequence `i`, when it is
    /// decoding, not backing off, and its drafts are likely enough to pay for their rows in a
    /// step of `rows` rows so far.
    fn draft_for(&mut self, i: usize, room: usize, rows: usize) -> Vec<u32> {
        let Some(c) = self.config.lookup else { return Vec::new() };
        let max_seq_len = self.sizes.max_seq_len;
        let s = &mut self.running[i];
        let decoding = s.tokens.len() - s.computed == 1 && s.tokens.len() > s.prompt_len;
        if !decoding || !s.lp.can_draft() || room == 0 || !s.backoff.ready() {
            return Vec::new();
        }
        // The pending token and the drafts need positions, and the drafts answer tokens.
        let room = room
            .min(max_seq_len.saturating_sub(s.tokens.len()))
            .min(s.lp.remaining().saturating_sub(1))
            .min(s.backoff.len);
        let threshold = if c.measured { self.cost.threshold(rows) } else { 0.0 };
        let worth = s.backoff.worth(threshold);
        if worth == 0 && room > 0 {
            // Not sent, but checked against the pick: the rate keeps following the text.
            s.backoff.shadow = lookup::draft(&s.tokens, &c, 1).first().copied();
        }
        lookup::draft(&s.tokens, &c, room.min(worth))
    }

    fn seq_index(&self, id: u64) -> Option<usize> {
        self.running.iter().position(|s| s.id == id)
    }

    /// One forward pass over the members' rows, then each member's token. The members that
    /// sample this step under a constraint get their token masks computed on another thread
    /// meanwhile (CPU work that the forward pass hides, wholly on a GPU backend).
    fn run_step(&mut self, mut members: Vec<Member>) {
        let mut constrained = Vec::new();
        for m in &members {
            if let Some(s) = self.running.iter_mut().find(|s| s.id == m.id)
                && s.computed + m.rows == s.tokens.len()
                && let Some(c) = s.lp.take_constraint()
            {
                constrained.push((m.id, c));
            }
        }
        let (mut tokens, mut pos, mut seq, mut logit_rows) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut tables: Vec<&[u32]> = Vec::new();
        // Every logit row is read back when one of them needs its logits for sure (`sampled`);
        // greedy rows under a constraint need them only where the constraint refuses their
        // argmax, and read that row alone after the step. Prompt rows cost differently from
        // decode rows: only steps that only decode are timed (`decoding`).
        let (mut sampled, mut decoding) = (false, true);
        for (k, m) in members.iter_mut().enumerate() {
            let Some(s) = self.running.iter().find(|s| s.id == m.id) else {
                decoding = false;
                continue;
            };
            decoding &= s.computed >= s.prompt_len;
            for p in s.computed..s.computed + m.rows {
                tokens.push(s.tokens[p]);
                pos.push(p as u32);
                seq.push(k as u32);
            }
            if s.computed + m.rows == s.tokens.len() {
                sampled |= s.lp.needs() == Needs::Logits;
                m.logit = Some(logit_rows.len());
                logit_rows.push(tokens.len() as u32 - 1);
                // Each draft token: a row after the pending one, and its argmax.
                for (j, &d) in m.draft.iter().enumerate() {
                    tokens.push(d);
                    pos.push((s.tokens.len() + j) as u32);
                    seq.push(k as u32);
                    logit_rows.push(tokens.len() as u32 - 1);
                }
            } else {
                m.draft.clear();
            }
            tables.push(&s.blocks);
        }
        let rows =
            RowsDesc { pos: &pos, seq: &seq, tables: &tables, block_size: self.config.block_size };
        let want = Want { rows: Logits::Rows(&logit_rows), logits: sampled, argmax: true };
        let step = StepRows { tokens: &tokens, rows };
        let started = now();
        let (engine, state) = (&self.engine, &mut self.state);
        let mut forward = || crate::block_on::block_on(engine.device.step(state, &step, &want));
        let result = if constrained.is_empty() {
            forward()
        } else {
            let (result, mask_seconds, wait) = std::thread::scope(|sc| {
                let masks = sc.spawn(|| {
                    let t = now();
                    for (_, c) in constrained.iter_mut() {
                        // An error here comes back when the token is picked.
                        let _ = c.compute_mask();
                    }
                    now() - t
                });
                let result = forward();
                let t = now();
                let mask_seconds = masks.join().unwrap_or(0.0);
                (result, mask_seconds, now() - t)
            });
            self.stats.masks += constrained.len() as u64;
            self.stats.mask_seconds += mask_seconds;
            self.stats.mask_wait_seconds += wait;
            result
        };
        drop(tables);
        if decoding && result.is_ok() {
            self.cost.record(tokens.len(), now() - started);
        }
        for (id, c) in constrained {
            if let Some(i) = self.seq_index(id) {
                self.running[i].lp.put_constraint(Some(c));
            }
        }
        self.stats.steps += 1;
        self.stats.step_sequences += members.len() as u64;
        let out = match result {
            Ok(o) => o,
            Err(e) => {
                // The step's rows may be half written: every sequence in it fails; the
                // others (waiting) are not affected.
                for m in &members {
                    if let Some(i) = self.seq_index(m.id) {
                        let s = self.running.remove(i);
                        self.fail(s, &e);
                    }
                }
                return;
            }
        };
        let n_vocab = self.engine.config().n_vocab;
        let mut done = Vec::new();
        for m in &members {
            let Some(i) = self.seq_index(m.id) else { continue };
            let prefill = self.running[i].computed < self.running[i].prompt_len;
            if prefill {
                self.stats.prompt_rows += m.rows as u64;
            } else {
                self.stats.decode_rows += m.rows as u64;
            }
            self.running[i].computed += m.rows;
            self.register_full_blocks(i);
            let Some(k) = m.logit else { continue };
            if !m.draft.is_empty() {
                let rows = 1 + m.draft.len();
                let logits =
                    if sampled { out.logits.get(k * n_vocab..(k + rows) * n_vocab) } else { None };
                let ids = out.ids.get(k..k + rows);
                if let Some(reason) = self.verify(i, &m.draft, ids, logits, n_vocab) {
                    done.push((m.id, reason));
                }
                continue;
            }
            let eager = out.logits.get(k * n_vocab..(k + 1) * n_vocab);
            let mut lazy = Vec::new();
            let next = match self.row_next(i, k, out.ids.get(k).copied(), eager, &mut lazy) {
                Ok(next) => next,
                Err(e) => {
                    done.push((m.id, Err(e)));
                    continue;
                }
            };
            if let Some(reason) = self.advance(i, next) {
                done.push((m.id, reason));
            }
        }
        for (id, reason) in done {
            if let Some(i) = self.seq_index(id) {
                let s = self.running.remove(i);
                match reason {
                    Ok(r) => self.finish(s, r),
                    Err(e) => self.fail(s, &e),
                }
            }
        }
    }

    /// What running sequence `i` picks its next token from, after a step whose logit row `k`
    /// was its last: the argmax, the row's logits read with the step (`eager`), or, for a
    /// greedy pick under a constraint that refuses the argmax, the row read now into `lazy`.
    fn row_next<'a>(
        &mut self,
        i: usize,
        k: usize,
        argmax: Option<u32>,
        eager: Option<&'a [f32]>,
        lazy: &'a mut Vec<f32>,
    ) -> Result<Next<'a>, RuntimeError> {
        let lp = &mut self.running[i].lp;
        Ok(match (lp.needs(), argmax, eager) {
            (Needs::Argmax, Some(id), _) => Next::Id(id),
            (Needs::Checked, Some(argmax), _) if lp.allows_best(argmax)? => Next::Id(argmax),
            (Needs::Checked, Some(argmax), eager) => {
                self.stats.refused += 1;
                let logits = match eager {
                    Some(l) => l,
                    None => {
                        let read = self.engine.device.read_logit_row(&self.state, k);
                        *lazy = crate::block_on::block_on(read)?;
                        lazy
                    }
                };
                Next::Scored { logits, argmax }
            }
            _ => Next::Logits(eager.unwrap_or(&[])),
        })
    }

    /// Registers the blocks of running sequence `i` that its last step filled.
    fn register_full_blocks(&mut self, i: usize) {
        if !self.config.prefix_cache {
            return;
        }
        let bs = self.pool.block_size();
        let s = &mut self.running[i];
        while (s.hashes.len() + 1) * bs <= s.computed {
            let n = s.hashes.len();
            let parent = s.hashes.last().copied().unwrap_or(0);
            let h = self.pool.register(s.blocks[n], parent, &s.tokens[n * bs..(n + 1) * bs]);
            s.hashes.push(h);
        }
    }

    /// After a step that computed running sequence `i`'s pending token and `draft`: `ids` are
    /// the argmax after each of those rows. The model's pick after the pending token is taken;
    /// while it equals the next draft token, that token's row was computed with the right
    /// inputs, so its position counts as computed and the pick after it is taken too. The
    /// first pick that differs from the draft (or the pick after the whole draft) is the new
    /// pending token. Returns how the sequence ends, if it does.
    fn verify(
        &mut self,
        i: usize,
        draft: &[u32],
        ids: Option<&[u32]>,
        logits: Option<&[f32]>,
        n_vocab: usize,
    ) -> Option<Result<FinishReason, RuntimeError>> {
        let greedy = self.running[i].lp.argmax_only();
        let rows = 1 + draft.len();
        let Some(ids) = ids.filter(|ids| ids.len() == rows) else {
            return Some(Err(RuntimeError::Invalid("the step returned too few argmax ids".into())));
        };
        if !greedy && logits.is_none_or(|l| l.len() != rows * n_vocab) {
            return Some(Err(RuntimeError::Invalid("the step returned too few logits".into())));
        }
        let row = |j: usize| logits.map(|l| &l[j * n_vocab..(j + 1) * n_vocab]);
        let mut accepted = 0;
        let mut ended = None;
        for (j, &argmax) in ids.iter().enumerate() {
            // Picked as without a draft: a sampled pick draws the same random numbers in the
            // same order, and a draft token is kept only if the pick is that token (for a
            // draft proposed with certainty, that is the standard acceptance rule: kept with
            // its probability, else a draw from the rest).
            let next = match (greedy, row(j)) {
                (false, Some(l)) => Next::Logits(l),
                _ => Next::Id(argmax),
            };
            if let Some(reason) = self.advance(i, next) {
                ended = Some(reason);
                break;
            }
            let picked = self.running[i].tokens.last().copied();
            if draft.get(j).is_none() || draft.get(j).copied() != picked {
                break;
            }
            // The picked token is the draft's: its row is computed.
            accepted += 1;
            self.running[i].computed += 1;
            self.register_full_blocks(i);
        }
        let s = &mut self.running[i];
        s.drafted += draft.len() as u32;
        s.accepted += accepted as u32;
        s.backoff.record(draft.len(), accepted);
        self.stats.draft_tokens += draft.len() as u64;
        self.stats.draft_accepted += accepted as u64;
        ended
    }

    /// Running sequence `i` takes its next token; returns how it ends, if it does.
    fn advance(&mut self, i: usize, next: Next<'_>) -> Option<Result<FinishReason, RuntimeError>> {
        let tok = self.engine.tokenizer();
        let max_seq_len = self.sizes.max_seq_len;
        let s = &mut self.running[i];
        let id = match s.lp.pick(next) {
            Ok(id) => id,
            Err(e) => return Some(Err(e)),
        };
        s.lp.record(id);
        s.backoff.observe(id);
        s.tokens.push(id);
        self.stats.generated_tokens += 1;
        let t = now();
        s.first_token.get_or_insert(t);
        let (events, seconds) = (s.events.clone(), s.since(t));
        let ended = s.lp.emit(tok, id, &mut |e| {
            if let Event::Token { id, text, logprobs } = e {
                let logprobs = logprobs.cloned();
                events.push(SeqEvent::Token { id, text: text.to_string(), logprobs, seconds });
            }
        });
        if let Some(r) = ended {
            return Some(Ok(r));
        }
        if s.lp.at_limit() {
            return Some(Ok(FinishReason::Length));
        }
        // The new token needs a position of its own.
        if s.tokens.len() > max_seq_len {
            return Some(Ok(FinishReason::ContextFull));
        }
        None
    }

    fn publish(&mut self) {
        self.stats.running = self.running.len();
        self.stats.waiting = self.waiting.iter().filter(|s| s.admitted.is_some()).count();
        self.stats.kv = self.pool.stats();
        if let Ok(mut g) = self.shared.stats.lock() {
            *g = self.stats;
        }
    }
}
