//! A small persistent thread pool: `pool.run(n_chunks, &|chunk| ..)` runs every chunk index
//! exactly once across the workers and the calling thread, and returns when all are done.
//!
//! Idle workers park on a `Condvar` after a short bounded spin. llama.cpp's workers spin on
//! a barrier instead, which is fastest on an idle machine but collapses (2–7× slower) when
//! another process holds a core: a spinning worker burns the time slice the busy core's
//! owner needed. The short spin (a few microseconds) still catches the next op of a decode
//! step without a futex round trip when the machine is idle.
//!
//! Work is handed out chunk by chunk from an atomic counter, so a slow (preempted) worker
//! delays at most its current chunk, and the caller never waits for a worker that has not
//! started: it takes the remaining chunks itself.
//!
//! On wasm32 without the `atomics` target feature there are no threads: every chunk runs on
//! the calling thread. With it (the browser's threads build) `std::thread::spawn` is still
//! unsupported: the embedder starts threads itself (Web Workers sharing the module's memory)
//! and hands the pool a [`Spawn`] hook through [`set_thread_spawner`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;

/// Runs a closure on a new thread the embedder owns, where `std::thread` cannot start one;
/// returns `false` when no thread is available (the pool then runs with fewer workers).
pub type Spawn = fn(Box<dyn FnOnce() + Send + 'static>) -> bool;

static SPAWN: OnceLock<Spawn> = OnceLock::new();

/// Installs the embedder's thread starter (once per process; later calls return `false`).
pub fn set_thread_spawner(spawn: Spawn) -> bool {
    SPAWN.set(spawn).is_ok()
}

/// How many times an idle worker (or the waiting caller) polls before parking: 2048 `pause`
/// instructions, roughly 10 µs on older x86 cores and 100 µs on those with a long `pause`
/// (Skylake and later). Counted rather than timed because `Instant` is unavailable on wasm32.
const SPIN_ROUNDS: u32 = 2048;

/// A chunk function with its lifetime erased (see [`ThreadPool::run`]).
type ErasedFn = *const (dyn Fn(usize) + Sync + 'static);

/// One `run` call: the chunk function, and counters that workers share.
struct Job {
    f: ErasedFn,
    n_chunks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

// SAFETY: `f` points to a `dyn Fn + Sync`, which may be called from any thread; the pointer
// is only dereferenced while the `run` call that owns the closure is blocked (see `run`).
unsafe impl Send for Job {}
// SAFETY: as above; every other field is atomic.
unsafe impl Sync for Job {}

impl Job {
    /// Takes chunks until none are left, calling `f` on each. Returns whether this call
    /// finished the last chunk.
    fn work(&self) -> bool {
        let mut finished_last = false;
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n_chunks {
                return finished_last;
            }
            // SAFETY: chunk `i < n_chunks` has not been counted in `done`, so the `run`
            // call that created this job is still blocked waiting for it, and the closure
            // `f` points to is alive (it outlives that call).
            let f = unsafe { &*self.f };
            if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            let done = self.done.fetch_add(1, Ordering::AcqRel) + 1;
            finished_last = done == self.n_chunks;
        }
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.n_chunks
    }
}

#[derive(Default)]
struct Slot {
    job: Option<Arc<Job>>,
    generation: u64,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    /// Signalled when a new job is posted (or on shutdown).
    work: Condvar,
    /// Signalled when a job's last chunk finishes.
    done: Condvar,
    /// Mirrors `slot.generation` so that spinning workers need not take the lock.
    generation: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic never happens while the lock is held (chunks run outside it), so a
        // poisoned lock still guards consistent data.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The error of a [`ThreadPool::run`] whose chunk function panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPanicked;

/// A fixed set of worker threads plus the calling thread.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Workers started through the embedder's [`Spawn`] hook: not joinable, they return from
    /// their loop at shutdown.
    hosted: usize,
    /// Held for the duration of a threaded `run`; a nested or concurrent `run` that finds
    /// it taken runs inline instead of deadlocking.
    busy: Mutex<()>,
}

impl ThreadPool {
    /// A pool that runs chunks on `threads` threads in all: `threads - 1` workers plus the
    /// caller. Where threads cannot be spawned (wasm32 without atomics, or an OS refusal),
    /// the pool has fewer workers and still works.
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared::default());
        let mut workers = Vec::new();
        let mut hosted = 0;
        if threads_supported() {
            for i in 1..threads.max(1) {
                let s = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("realm-cpu-{i}"))
                    .spawn(move || worker_loop(&s));
                match spawned {
                    Ok(handle) => workers.push(handle),
                    Err(_) => {
                        let s = Arc::clone(&shared);
                        match SPAWN.get() {
                            Some(spawn) if spawn(Box::new(move || worker_loop(&s))) => hosted += 1,
                            _ => break,
                        }
                    }
                }
            }
        }
        Self { shared, workers, hosted, busy: Mutex::new(()) }
    }

    /// Threads that run chunks: the workers plus the caller.
    pub fn threads(&self) -> usize {
        self.workers.len() + self.hosted + 1
    }

    /// Calls `f(i)` once for every `i in 0..n_chunks`, spread over the pool, and returns
    /// when all calls have returned. The calling thread takes chunks too. Chunks may run in
    /// any order and concurrently, so `f` must only write through disjoint handles.
    ///
    /// A panic inside `f` is caught; the remaining chunks still run and the call returns
    /// `Err(ChunkPanicked)`.
    pub fn run(&self, n_chunks: usize, f: &(dyn Fn(usize) + Sync)) -> Result<(), ChunkPanicked> {
        if n_chunks == 0 {
            return Ok(());
        }
        let guard =
            if self.threads() == 1 || n_chunks == 1 { None } else { self.busy.try_lock().ok() };
        let Some(_guard) = guard else {
            return run_inline(n_chunks, f);
        };
        // SAFETY: the transmute only erases the lifetime of the trait object (same fat
        // pointer layout). Workers dereference it only for chunk indices below `n_chunks`
        // that are not yet done (`Job::work`), and this function does not return until
        // every chunk is done, so no dereference outlives the borrow of `f`.
        let erased: ErasedFn =
            unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), ErasedFn>(f) };
        let job = Arc::new(Job {
            f: erased,
            n_chunks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        {
            let mut slot = self.shared.lock();
            slot.job = Some(Arc::clone(&job));
            slot.generation += 1;
            self.shared.generation.store(slot.generation, Ordering::Release);
        }
        self.shared.work.notify_all();
        job.work();
        self.wait(&job);
        self.shared.lock().job = None;
        if job.panicked.load(Ordering::Relaxed) { Err(ChunkPanicked) } else { Ok(()) }
    }

    fn wait(&self, job: &Job) {
        for _ in 0..SPIN_ROUNDS {
            if job.is_done() {
                return;
            }
            std::hint::spin_loop();
        }
        let mut slot = self.shared.lock();
        while !job.is_done() {
            slot = self.shared.done.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            // A worker never panics (chunk panics are caught), so there is nothing to report.
            let _ = w.join();
        }
    }
}

fn run_inline(n_chunks: usize, f: &(dyn Fn(usize) + Sync)) -> Result<(), ChunkPanicked> {
    let mut panicked = false;
    for i in 0..n_chunks {
        panicked |= catch_unwind(AssertUnwindSafe(|| f(i))).is_err();
    }
    if panicked { Err(ChunkPanicked) } else { Ok(()) }
}

fn threads_supported() -> bool {
    !cfg!(all(target_family = "wasm", not(target_feature = "atomics")))
}

fn worker_loop(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        // Spin briefly: the next op of a decode step usually arrives within microseconds.
        for _ in 0..SPIN_ROUNDS {
            if shared.generation.load(Ordering::Acquire) != seen {
                break;
            }
            std::hint::spin_loop();
        }
        let job = {
            let mut slot = shared.lock();
            while slot.generation == seen && !slot.shutdown {
                slot = shared.work.wait(slot).unwrap_or_else(PoisonError::into_inner);
            }
            if slot.shutdown {
                return;
            }
            seen = slot.generation;
            slot.job.clone()
        };
        if let Some(job) = job
            && job.work()
        {
            // Take the lock so the notification cannot slip between the caller's
            // `is_done` check and its `wait`.
            drop(shared.lock());
            shared.done.notify_all();
        }
    }
}

/// A mutable slice shared by the chunks of one [`ThreadPool::run`], each of which writes
/// its own disjoint ranges.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `SharedMut` only hands out `&mut` sub-slices through the unsafe `range`, whose
// contract (disjoint ranges) makes concurrent use from several threads sound for `T: Send`.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Borrows `data` mutably for the lifetime of the `SharedMut`.
    pub fn new(data: &'a mut [T]) -> Self {
        Self { ptr: data.as_mut_ptr(), len: data.len(), _borrow: std::marker::PhantomData }
    }

    /// The sub-slice `start .. start + len`, or `None` if it is out of bounds.
    ///
    /// # Safety
    ///
    /// No two sub-slices alive at the same time may overlap (across all threads).
    #[allow(clippy::mut_from_ref)] // disjointness is the caller's contract, as documented
    pub unsafe fn range(&self, start: usize, len: usize) -> Option<&mut [T]> {
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: `start..end` is inside the slice borrowed in `new` (checked above), and
        // the caller guarantees no other live reference overlaps it.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) })
    }
}

impl ThreadPool {
    /// Splits `data` into consecutive chunks of `chunk_len` (the last may be shorter) and
    /// calls `f(index, chunk)` for each, in parallel. Safe: every chunk index runs exactly
    /// once, so the chunks handed out never overlap.
    pub fn for_each_chunk_mut<T: Send>(
        &self,
        data: &mut [T],
        chunk_len: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) -> Result<(), ChunkPanicked> {
        let chunk_len = chunk_len.max(1);
        let len = data.len();
        let n_chunks = len.div_ceil(chunk_len);
        let shared = SharedMut::new(data);
        self.run(n_chunks, &|i| {
            let start = i * chunk_len;
            let n = chunk_len.min(len - start);
            // SAFETY: chunk `i` covers `i * chunk_len ..` up to the next chunk's start, and
            // `run` calls each `i` exactly once, so no two live chunks overlap.
            if let Some(chunk) = unsafe { shared.range(start, n) } {
                f(i, chunk);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_chunk_runs_exactly_once() {
        for threads in [1, 2, 4] {
            let pool = ThreadPool::new(threads);
            for n in [0, 1, 2, 3, 17, 1000] {
                let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                pool.run(n, &|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "{threads} {n}");
            }
        }
    }

    #[test]
    fn borrows_stack_data_and_many_runs_in_a_row() {
        let pool = ThreadPool::new(3);
        let input: Vec<u64> = (0..10_000).collect();
        for round in 0..500u64 {
            let mut out = vec![0u64; input.len()];
            pool.for_each_chunk_mut(&mut out, 97, &|ci, chunk| {
                for (j, o) in chunk.iter_mut().enumerate() {
                    *o = input[ci * 97 + j] * round;
                }
            })
            .unwrap();
            assert!(out.iter().zip(&input).all(|(&o, &x)| o == x * round));
        }
    }

    // wasm32 builds abort on panic (no unwinding), so `catch_unwind` has nothing to catch.
    #[cfg(not(target_family = "wasm"))]
    #[test]
    fn a_panicking_chunk_is_an_error_and_the_pool_survives() {
        let pool = ThreadPool::new(2);
        let ran = AtomicU32::new(0);
        let r = pool.run(8, &|i| {
            ran.fetch_add(1, Ordering::Relaxed);
            if i == 5 {
                panic!("chunk 5");
            }
        });
        assert_eq!(r, Err(ChunkPanicked));
        assert_eq!(ran.load(Ordering::Relaxed), 8);
        assert_eq!(pool.run(4, &|_| {}), Ok(()));
    }

    #[test]
    fn nested_runs_do_not_deadlock() {
        let pool = ThreadPool::new(2);
        let total = AtomicU32::new(0);
        pool.run(4, &|_| {
            pool.run(3, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        })
        .unwrap();
        assert_eq!(total.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn shared_mut_rejects_out_of_bounds() {
        let mut v = [0u8; 4];
        let s = SharedMut::new(&mut v);
        // SAFETY: each range is dropped before the next is taken.
        unsafe {
            assert!(s.range(0, 4).is_some());
            assert!(s.range(3, 2).is_none());
            assert!(s.range(usize::MAX, 2).is_none());
            s.range(1, 2).unwrap().fill(7);
        }
        assert_eq!(v, [0, 7, 7, 0]);
    }
}
