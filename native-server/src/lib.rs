//! realm-server: Realm's serving engine behind an OpenAI-compatible HTTP/SSE API and the
//! `realm.v1` WebSocket protocol, with tenants, limits and Prometheus metrics.
//!
//! - `config.rs`: flags (llama-server's spellings too) and the tenants file.
//! - `serve.rs`: listen, load, serve, drain on SIGTERM.
//! - `app.rs`: the shared state and the routes.
//! - `http.rs`: the OpenAI routes (SSE and whole answers), models, tokenize, health, metrics.
//! - `ws.rs`: the WebSocket protocol.
//! - `responses.rs`: OpenAI's Responses API (text), over HTTP and its WebSocket mode.
//! - `generate.rs`: wire request → prompt and options → the engine → one stream of events.
//! - `auth.rs`: API keys → tenants, and each tenant's limits.
//! - `metrics.rs`: the Prometheus registry (vLLM's meanings, `realm_` prefix).
//! - `openapi.rs`: `/openapi.json`, its schemas generated from realm-protocol's types.
//! - `error.rs`: errors as OpenAI's body (HTTP) and `error` messages (WebSocket).
//!
//! The wire types live in `realm-protocol`; the engine in `realm-runtime`.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod generate;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod responses;
pub mod serve;
pub mod ws;

pub use config::Args;
pub use serve::{ServerError, run};
