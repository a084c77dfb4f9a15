//! Logits → token for Realm: llama.cpp's default sampler chain, a portable seeded RNG, and
//! stop-string helpers for streaming.
//!
//! The chain is the part of llama.cpp's `common/sampling.cpp` default order
//! (`penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature`, then `dist`) that
//! Realm implements: penalties → top-k → top-p → min-p → temperature → softmax → draw.
//! Semantics follow `src/llama-sampling.cpp` at llama.cpp commit
//! `0344068cf112e524eb3fbdbd58c171870b63e56c`; the code is written independently. Where
//! llama.cpp leaves a choice open (ties, the RNG), Realm fixes it so the same seed gives the
//! same tokens on every target, wasm32 included.
//!
//! ```
//! use realm_sampling::{Sampler, SamplingParams, StopScan, StopStrings};
//!
//! let logits = [-2.0f32, 2.0, 2.0, -1.0];
//! let mut greedy = Sampler::new(SamplingParams::greedy(), logits.len())?;
//! assert_eq!(greedy.sample(&logits)?, 1); // ties go to the lowest id
//!
//! let params = SamplingParams { seed: 42, ..SamplingParams::default() };
//! let mut sampler = Sampler::new(params, logits.len())?;
//! let token = sampler.sample(&logits)?;
//! sampler.accept(token); // feeds the repetition penalties
//! assert!(token == 1 || token == 2); // top-p 0.95 removed the others
//!
//! // Streaming text with a stop string that arrives split over chunks.
//! let stops = StopStrings::new(vec!["</s>".to_string()]);
//! let mut text = String::new();
//! let mut emitted = 0;
//! let mut shown = String::new();
//! for chunk in ["Hi <", "/s", ">tail"] {
//!     text.push_str(chunk);
//!     match stops.scan(&text, emitted) {
//!         StopScan::Continue { safe_len } => {
//!             shown.push_str(&text[emitted..safe_len]);
//!             emitted = safe_len;
//!         }
//!         StopScan::Stop { at, .. } => {
//!             shown.push_str(&text[emitted..at]);
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(shown, "Hi ");
//! # Ok::<(), realm_sampling::SamplingError>(())
//! ```
//!
//! Nothing here panics on caller input: bad params, bad logits and bad lengths are typed
//! [`SamplingError`]s.

#![warn(missing_docs)]

mod error;
mod filters;
mod math;
mod params;
pub mod rng;
mod sampler;
mod stop;

pub use error::SamplingError;
pub use filters::Candidate;
pub use params::{DEFAULT_SEED, SamplingParams};
pub use sampler::Sampler;
pub use stop::{StopScan, StopStrings};
