//! Realm's wire types, defined once: the OpenAI-compatible HTTP surface of `realm-server`
//! (requests, responses, stream chunks, errors), its `realm.v1` WebSocket messages, and the
//! stable error codes both share. The server, the Rust client and realm-web's TypeScript types
//! derive from these (serde, plain data, no I/O).
//!
//! - `openai.rs`: chat completions, completions, models, tokenize/detokenize, usage, timings
//!   (OpenAI's names and shapes; llama-server's `timings`; extensions named as llama.cpp's).
//! - `responses.rs`: OpenAI's Responses API (text only), over HTTP and its WebSocket mode.
//! - `ws.rs`: the WebSocket protocol (`native-server/PROTOCOL.md` describes every message).
//! - `error.rs`: error codes, their HTTP statuses and OpenAI's error body.
//! - `check.rs`: range checks of a request's fields, each failure naming its field.

mod check;
mod error;
mod openai;
mod responses;
pub mod ws;

pub use check::{FieldError, Limits};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use openai::*;
pub use responses::*;
pub use ws::{ClientMessage, DeltaMessage, DoneChoice, DoneMessage, Hello, ServerMessage, WsError};

/// The WebSocket subprotocol this version speaks.
pub const WS_PROTOCOL: &str = "realm.v1";
