//! The `realm.v1` WebSocket protocol: JSON text frames, each an object with a `type`. One
//! connection carries many requests at once, each tagged with an `id` the client chooses.
//! `native-server/PROTOCOL.md` describes every message, limit and close code.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::openai::{ChatCompletionRequest, CompletionRequest, Timings, TokenLogprob, Usage};

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start a chat completion (always streamed as `delta` messages).
    Chat { id: String, request: ChatCompletionRequest },
    /// Start a completion.
    Complete { id: String, request: CompletionRequest },
    /// Cancel a request; its stream ends with `done` (finish `cancelled`). Unknown or finished
    /// ids are ignored.
    Cancel { id: String },
    /// Answered by `pong` with the same `data` (an application-level keep-alive; WebSocket
    /// ping frames are answered too).
    Ping {
        #[serde(default)]
        data: Option<String>,
    },
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first message on a connection.
    Hello(Hello),
    /// The request was accepted and queued.
    Created { id: String, model: String, prompt_tokens: u64 },
    /// New text of one choice.
    Delta(DeltaMessage),
    /// The request ended: every choice's finish reason, the usage and timings.
    Done(DoneMessage),
    /// The request failed, or a message could not be read (`id` set when the message had one).
    Error(WsError),
    Pong {
        #[serde(default)]
        data: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Hello {
    pub protocol: String,
    pub server: String,
    pub model: String,
    /// Requests one connection may have in flight.
    pub max_in_flight: u32,
    /// Largest text frame the server reads, in bytes.
    pub max_message_bytes: u64,
    /// Seconds without a message either way and with no request running before the server
    /// closes (4002).
    pub idle_timeout_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeltaMessage {
    pub id: String,
    /// The choice (0 ≤ index < n).
    pub index: u32,
    pub text: String,
    /// The generated token ids this delta covers.
    pub tokens: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<TokenLogprob>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DoneChoice {
    pub index: u32,
    /// `stop`, `length` or `cancelled`.
    pub finish_reason: String,
    pub timings: Timings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DoneMessage {
    pub id: String,
    pub choices: Vec<DoneChoice>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WsError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Seconds to wait before retrying (rate limits, a full queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// Close codes the server uses (RFC 6455 §7.4: 4000–4999 are the application's).
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame (the protocol is JSON text).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A frame over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The client read too slowly: its outgoing buffer filled up.
    pub const SLOW_CONSUMER: u16 = 4001;
    /// No frame from the client within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4002;
    /// Too many unreadable messages in a row.
    pub const PROTOCOL_ERROR: u16 = 4003;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_by_type() {
        let m: ClientMessage = serde_json::from_str(
            r#"{"type":"chat","id":"a","request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        )
        .unwrap();
        assert!(matches!(m, ClientMessage::Chat { ref id, .. } if id == "a"));
        let m: ClientMessage = serde_json::from_str(r#"{"type":"cancel","id":"a"}"#).unwrap();
        assert_eq!(m, ClientMessage::Cancel { id: "a".into() });
        let e = ServerMessage::Error(WsError {
            id: None,
            code: ErrorCode::InvalidRequest,
            message: "x".into(),
            param: None,
            retry_after_s: None,
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "invalid_request");
    }
}
