//! realm-wasm: the browser binding of `realm-runtime`. It only converts: a handle over the
//! runtime's `Engine`, JS values to runtime types and back, and runtime errors to JS `Error`s
//! with a stable `code` (`RuntimeError::code`). Everything else (the Worker, OpenAI-shaped
//! requests, streaming, abort) lives in the TypeScript package `npm/realm-web`.
//!
//! The JS-facing code exists only in the browser builds (wasm32, wasm64); natively the crate is the option conversions, so the
//! workspace builds and tests them everywhere.

mod options;

pub use options::{CompletionOptions, DEFAULT_MAX_CONTEXT};

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod bindings;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod js;
#[cfg(all(target_family = "wasm", target_os = "unknown", target_feature = "atomics"))]
mod threads;
