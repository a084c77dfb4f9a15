//! An async Rust client of `realm-server` (tokio): the OpenAI-compatible HTTP API (whole and
//! streamed over SSE) and the `realm.v1` WebSocket protocol (many requests on one connection,
//! cancel by dropping), with the wire types of `realm-protocol` (re-exported as
//! [`protocol`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), realm_client::Error> {
//! use futures_util::StreamExt;
//! use realm_client::{Client, protocol::{ChatCompletionRequest, ChatMessage, Content}};
//!
//! let client = Client::new("http://127.0.0.1:8080").api_key("KEY");
//! let req = ChatCompletionRequest {
//!     messages: vec![ChatMessage { role: "user".into(), content: Some(Content::Text("Hi".into())), name: None }],
//!     max_tokens: Some(32),
//!     ..Default::default()
//! };
//! let mut stream = client.chat_stream(&req).await?;
//! while let Some(chunk) = stream.next().await {
//!     for c in chunk?.choices { print!("{}", c.delta.content.unwrap_or_default()); }
//! }
//! # Ok(()) }
//! ```

mod error;
mod sse;
mod ws;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::Error;
pub use futures_util::{Stream, StreamExt};
pub use realm_protocol as protocol;
use realm_protocol::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Completion, CompletionRequest,
    Health, ModelList,
};
pub use sse::SseStream;
pub use ws::{Connection, RequestResult, RequestStream};

/// A streamed chat completion: its chunks, then the end (`[DONE]`).
pub type ChatStream = SseStream<ChatCompletionChunk>;
/// A streamed completion.
pub type CompletionStream = SseStream<Completion>;

/// A chat message with text content: `message("user", "Hi")`.
pub fn message(role: &str, text: impl Into<String>) -> protocol::ChatMessage {
    protocol::ChatMessage {
        role: role.into(),
        content: Some(protocol::Content::Text(text.into())),
        name: None,
    }
}

/// A client of one `realm-server`. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    api_key: Option<String>,
    timeout: Duration,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8080`; a trailing `/` or `/v1`
    /// is allowed). Plain `http://` only: put a TLS proxy in front for `https://`.
    pub fn new(base_url: impl Into<String>) -> Client {
        let mut base: String = base_url.into();
        while base.ends_with('/') {
            base.pop();
        }
        if let Some(b) = base.strip_suffix("/v1") {
            base = b.to_string();
        }
        let timeout = Duration::from_secs(10);
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(timeout));
        conn.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(conn);
        Client { base, api_key: None, timeout, http }
    }

    /// Send this key (`Authorization: Bearer KEY`) with every request and handshake.
    pub fn api_key(mut self, key: impl Into<String>) -> Client {
        self.api_key = Some(key.into());
        self
    }

    /// How long connecting (TCP, and the WebSocket handshake with its `hello`) may take; 10 s by
    /// default. Generation itself has no time limit: drop the future or stream to stop it.
    pub fn connect_timeout(mut self, t: Duration) -> Client {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(t));
        conn.set_nodelay(true);
        self.http = HyperClient::builder(TokioExecutor::new()).build(conn);
        self.timeout = t;
        self
    }

    /// The server's base URL, as given (without a trailing `/` or `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /v1/chat/completions`, whole (`stream` is sent as `false`).
    pub async fn chat(&self, req: &ChatCompletionRequest) -> Result<ChatCompletion, Error> {
        let mut req = req.clone();
        req.stream = Some(false);
        req.stream_options = None;
        self.json(Method::POST, "/v1/chat/completions", Some(&req)).await
    }

    /// `POST /v1/chat/completions` streamed (SSE). Errors before the first chunk (a wrong key,
    /// a bad field, a limit) come from this call; errors while streaming from the stream.
    /// Dropping the stream closes the connection, which cancels the request on the server.
    pub async fn chat_stream(&self, req: &ChatCompletionRequest) -> Result<ChatStream, Error> {
        let mut req = req.clone();
        req.stream = Some(true);
        self.stream("/v1/chat/completions", &req).await
    }

    /// `POST /v1/completions`, whole.
    pub async fn complete(&self, req: &CompletionRequest) -> Result<Completion, Error> {
        let mut req = req.clone();
        req.stream = Some(false);
        req.stream_options = None;
        self.json(Method::POST, "/v1/completions", Some(&req)).await
    }

    /// `POST /v1/completions` streamed (SSE); as [`Client::chat_stream`].
    pub async fn complete_stream(
        &self,
        req: &CompletionRequest,
    ) -> Result<CompletionStream, Error> {
        let mut req = req.clone();
        req.stream = Some(true);
        self.stream("/v1/completions", &req).await
    }

    /// `GET /v1/models`.
    pub async fn models(&self) -> Result<ModelList, Error> {
        self.json::<(), _>(Method::GET, "/v1/models", None).await
    }

    /// `GET /health`: `ok` when the server serves, `loading` or `draining` (503) otherwise.
    pub async fn health(&self) -> Result<Health, Error> {
        let resp = self.send::<()>(Method::GET, "/health", None, false).await?;
        let status = resp.status().as_u16();
        let retry = header(&resp, RETRY_AFTER);
        let body = read_body(resp.into_body()).await?;
        match serde_json::from_slice::<Health>(&body) {
            Ok(h) => Ok(h),
            Err(_) => Err(Error::from_http(status, retry.as_deref(), &body)),
        }
    }

    /// Open a `realm.v1` WebSocket connection (`ws://…/v1/ws`, subprotocol `realm.v1`, the key
    /// in `Authorization`) and read its `hello`. A refused handshake is an [`Error::Api`] (401
    /// `invalid_api_key`, 503, …).
    pub async fn connect(&self) -> Result<Connection, Error> {
        let url = if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}/v1/ws")
        } else if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}/v1/ws")
        } else {
            format!("{}/v1/ws", self.base)
        };
        ws::Connection::open(&url, self.api_key.as_deref(), self.timeout).await
    }

    async fn send<T: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&T>,
        sse: bool,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
        let mut b = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(k) = &self.api_key {
            b = b.header(AUTHORIZATION, format!("Bearer {k}"));
        }
        b = b.header(ACCEPT, if sse { "text/event-stream" } else { "application/json" });
        let body = match body {
            Some(v) => {
                b = b.header(CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(v)
                        .map_err(|e| Error::Protocol(format!("encoding the request: {e}")))?,
                )
            }
            None => Bytes::new(),
        };
        let req = b
            .body(Full::new(body))
            .map_err(|e| Error::Connection(format!("bad URL {}{path}: {e}", self.base)))?;
        self.http.request(req).await.map_err(|e| Error::Connection(describe(&e)))
    }

    async fn json<T: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&T>,
    ) -> Result<R, Error> {
        let resp = self.send(method, path, body, false).await?;
        let status = resp.status().as_u16();
        let retry = header(&resp, RETRY_AFTER);
        let body = read_body(resp.into_body()).await?;
        if !(200..300).contains(&status) {
            return Err(Error::from_http(status, retry.as_deref(), &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("reading the answer of {path}: {e}")))
    }

    async fn stream<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<SseStream<R>, Error> {
        let resp = self.send(Method::POST, path, Some(body), true).await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let retry = header(&resp, RETRY_AFTER);
            let body = read_body(resp.into_body()).await?;
            return Err(Error::from_http(status, retry.as_deref(), &body));
        }
        Ok(SseStream::new(resp.into_body()))
    }
}

fn header<B>(resp: &hyper::Response<B>, name: hyper::header::HeaderName) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, Error> {
    body.collect().await.map(|c| c.to_bytes()).map_err(|e| Error::Connection(describe(&e)))
}

/// An error with its sources, one line.
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
