//! Seconds on a monotonic clock, for timings (0 where none exists: bare wasm).

/// Seconds since the first call in this process.
pub(crate) fn now() -> f64 {
    #[cfg(not(target_family = "wasm"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_family = "wasm")]
    {
        0.0
    }
}
