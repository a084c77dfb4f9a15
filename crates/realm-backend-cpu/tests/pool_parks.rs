//! Idle workers must park, not spin: on a shared 2-core machine a spinning pool steals the
//! time other processes (and the caller) need. This is its own test binary so that no other
//! test's threads add to the process CPU time it measures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

use std::time::Duration;

use realm_backend_cpu::pool::ThreadPool;

/// Process CPU time (user + system), in clock ticks of 10 ms, from /proc.
#[cfg(target_os = "linux")]
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn idle_workers_use_no_cpu() {
    let pool = ThreadPool::new(4);
    for _ in 0..100 {
        pool.run(16, &|i| {
            std::hint::black_box(i * i);
        })
        .unwrap();
    }
    // Let the bounded spin run out, then measure half a second of idleness.
    std::thread::sleep(Duration::from_millis(50));
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks() - before;
    // Three spinning workers would use ~150 ticks; parked ones use none.
    assert!(used <= 5, "idle pool used {used} ticks of CPU in 0.5 s");
    // And they still wake up for the next job.
    let hits = std::sync::atomic::AtomicUsize::new(0);
    pool.run(64, &|_| {
        hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(hits.into_inner(), 64);
}
