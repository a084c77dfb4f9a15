//! What a submitted request sees: its events, in order, through a [`RequestHandle`] that can
//! wait for them blocking or as a future (no async runtime needed), and that cancels the
//! request when it is dropped or told to.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::RuntimeError;
use crate::sequence::{FinishReason, TokenLogprobs};

use super::Command;

/// One event of a request, in the order they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqEvent {
    /// The request left the queue: its prompt is being computed, `cached_tokens` of it came
    /// from the prefix cache.
    Started { prompt_tokens: usize, cached_tokens: usize, queue_seconds: f64 },
    /// A generated token and the text that became complete with it (may be empty: a partial
    /// UTF-8 character, or text held back because it may start a stop string), its
    /// log-probabilities when asked for, and `seconds` since the request was submitted.
    Token { id: u32, text: String, logprobs: Option<TokenLogprobs>, seconds: f64 },
    /// Text released when the answer ends without a stop string (held-back bytes).
    Flush { text: String },
    /// The KV pool was full: the request's blocks were given to an earlier request. It waits
    /// again and is recomputed from its tokens (prompt and answer so far) when there is room;
    /// its output does not change.
    Preempted,
    /// The answer is complete (the last event).
    Done(Completion),
    /// The request failed (the last event); other requests are not affected.
    Failed(RequestError),
}

/// How a request ended, with its counts and timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values came from the prefix cache.
    pub cached_tokens: usize,
    /// The generated tokens (the end-of-generation token included) and the answer's text.
    pub tokens: Vec<u32>,
    pub text: String,
    pub timings: Timings,
}

/// A request's timings, in seconds since it was submitted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Until it left the queue (its first admission).
    pub queue_seconds: f64,
    /// Until its first token (0 when it generated none).
    pub first_token_seconds: f64,
    /// Until it ended.
    pub total_seconds: f64,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Prompt lookup: draft tokens proposed for it, and those accepted.
    pub draft_tokens: u32,
    pub draft_accepted: u32,
}

/// Why a request failed: a stable code (as [`RuntimeError::code`]) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: &'static str,
    pub message: String,
}

impl From<&RuntimeError> for RequestError {
    fn from(e: &RuntimeError) -> Self {
        RequestError { code: e.code(), message: e.to_string() }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RequestError {}

#[derive(Default)]
struct Inner {
    events: VecDeque<SeqEvent>,
    /// The last event was pushed.
    closed: bool,
    waker: Option<Waker>,
}

/// The events of one request, from the engine thread to its handle. Bounded by the request
/// itself: one event per generated token (at most the context length) and four others.
#[derive(Default)]
pub(crate) struct EventQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
}

impl EventQueue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave `Inner` inconsistent (plain pushes).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes `e`; a `Done` or `Failed` event closes the queue.
    pub(crate) fn push(&self, e: SeqEvent) {
        let waker = {
            let mut g = self.lock();
            if g.closed {
                return;
            }
            g.closed = matches!(e, SeqEvent::Done(_) | SeqEvent::Failed(_));
            g.events.push_back(e);
            g.waker.take()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A submitted request: read its events; dropping it (or [`RequestHandle::cancel`]) cancels
/// the request, and its KV blocks are freed before the engine's next step.
pub struct RequestHandle {
    pub(crate) id: u64,
    pub(crate) events: Arc<EventQueue>,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) wake: Sender<Command>,
}

impl std::fmt::Debug for RequestHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHandle").field("id", &self.id).finish_non_exhaustive()
    }
}

impl RequestHandle {
    /// The request's id (unique in its scheduler).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Cancels the request. Its stream ends with `Done` (finish `Cancelled`) unless it already
    /// ended; cancelling again does nothing.
    pub fn cancel(&self) {
        if !self.cancel.swap(true, Ordering::AcqRel) {
            // Wakes the engine thread; if it has stopped, there is nothing left to cancel.
            let _ = self.wake.send(Command::Wake);
        }
    }

    /// The next event, waiting for it; `None` once the last event has been taken.
    pub fn recv(&self) -> Option<SeqEvent> {
        let mut g = self.events.lock();
        loop {
            if let Some(e) = g.events.pop_front() {
                return Some(e);
            }
            if g.closed {
                return None;
            }
            g = self.events.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The next event if there is one within `timeout`. `Err(true)` once the last event has
    /// been taken, `Err(false)` on a timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<SeqEvent, bool> {
        let mut g = self.events.lock();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(e) = g.events.pop_front() {
                return Ok(e);
            }
            if g.closed {
                return Err(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(false);
            }
            g = self.events.ready.wait_timeout(g, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The next event without waiting.
    pub fn try_recv(&self) -> Option<SeqEvent> {
        self.events.lock().events.pop_front()
    }

    /// The next event as a future (for an async caller; any executor): `None` once the last
    /// event has been taken.
    pub fn next_event(&self) -> NextEvent<'_> {
        NextEvent { handle: self }
    }

    /// Waits for the end: the completion, or why the request failed.
    pub fn wait(self) -> Result<Completion, RequestError> {
        while let Some(e) = self.recv() {
            match e {
                SeqEvent::Done(c) => return Ok(c),
                SeqEvent::Failed(e) => return Err(e),
                _ => {}
            }
        }
        Err(RequestError { code: "internal", message: "the request ended without a result".into() })
    }
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// [`RequestHandle::next_event`].
pub struct NextEvent<'a> {
    handle: &'a RequestHandle,
}

impl Future for NextEvent<'_> {
    type Output = Option<SeqEvent>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SeqEvent>> {
        let mut g = self.handle.events.lock();
        if let Some(e) = g.events.pop_front() {
            return Poll::Ready(Some(e));
        }
        if g.closed {
            return Poll::Ready(None);
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
