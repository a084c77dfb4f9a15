//! `sample` must not allocate once the sampler is warm: counted with a global allocator.
//! (Its own test binary, so the allocator sees only this file's test.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::TestRng;
use realm_sampling::{Sampler, SamplingParams};

thread_local! {
    /// Allocations made by this thread; a `const` Cell needs no lazy init, so reading it
    /// inside the allocator cannot recurse.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(Cell::get)
}

#[test]
fn warm_sampler_does_not_allocate() {
    let n = 32_000;
    let mut rng = TestRng::new(5);
    let rows: Vec<Vec<f32>> = (0..8).map(|_| rng.logits(n, 1.0, 0.0, 0.01)).collect();
    let configs = [
        SamplingParams::default(),
        SamplingParams::greedy(),
        SamplingParams { top_k: 0, top_p: 0.99, min_p: 0.0, ..SamplingParams::default() },
        SamplingParams {
            repeat_penalty: 1.2,
            frequency_penalty: 0.1,
            presence_penalty: 0.1,
            ..SamplingParams::default()
        },
    ];
    for params in configs {
        let mut s = Sampler::new(params, n).unwrap();
        // The first sample reserves the candidates' scratch (a new sampler holds none, so a
        // queued request costs nothing); from then on nothing allocates.
        s.sample(&rows[0]).unwrap();
        s.reset();
        let before = allocations();
        for i in 0..64 {
            let t = s.sample(&rows[i % rows.len()]).unwrap();
            s.accept(t);
        }
        s.candidates(&rows[0]).unwrap();
        s.reset();
        assert_eq!(allocations() - before, 0, "{params:?}");
    }
}
