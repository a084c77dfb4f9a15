//! Error codes shared by HTTP and WebSocket, and OpenAI's error body.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Over HTTP it is `error.code` in OpenAI's error body
/// (with the status of [`ErrorCode::status`]); over the WebSocket it is `error.code` of an
/// `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, a field of the wrong type or out of range (`param` names it).
    InvalidRequest,
    /// The prompt (with the answer's first token) does not fit one sequence's context.
    ContextLengthExceeded,
    /// A missing or wrong API key.
    InvalidApiKey,
    /// The tenant may not use this model.
    ModelNotAllowed,
    /// No such model is served.
    ModelNotFound,
    /// No such route.
    NotFound,
    /// The HTTP method is not allowed on this route.
    MethodNotAllowed,
    /// The body is over the server's size limit.
    PayloadTooLarge,
    /// Over the tenant's requests/min, tokens/min or concurrent-streams limit (`Retry-After`).
    RateLimitExceeded,
    /// The server's queue is full (`Retry-After`): back off and retry.
    ServerOverloaded,
    /// The server is draining for shutdown and takes no new requests.
    ShuttingDown,
    /// The request was cancelled (by the client or by the server's shutdown).
    Cancelled,
    /// A fault in the server or the engine (the request's own; others go on).
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::ContextLengthExceeded => 400,
            ErrorCode::InvalidApiKey => 401,
            ErrorCode::ModelNotAllowed => 403,
            ErrorCode::ModelNotFound | ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::Cancelled => 499,
            ErrorCode::Internal => 500,
            ErrorCode::ServerOverloaded | ErrorCode::ShuttingDown => 503,
        }
    }

    /// OpenAI's `error.type` for this code.
    pub fn kind(self) -> &'static str {
        match self {
            ErrorCode::InvalidApiKey => "authentication_error",
            ErrorCode::ModelNotAllowed => "permission_error",
            ErrorCode::ModelNotFound | ErrorCode::NotFound => "not_found_error",
            ErrorCode::RateLimitExceeded => "rate_limit_error",
            ErrorCode::Internal | ErrorCode::ServerOverloaded | ErrorCode::ShuttingDown => {
                "server_error"
            }
            _ => "invalid_request_error",
        }
    }

    /// The code's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ContextLengthExceeded => "context_length_exceeded",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::ModelNotAllowed => "model_not_allowed",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::ServerOverloaded => "server_overloaded",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code (for documentation and tests).
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::InvalidRequest,
        ErrorCode::ContextLengthExceeded,
        ErrorCode::InvalidApiKey,
        ErrorCode::ModelNotAllowed,
        ErrorCode::ModelNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimitExceeded,
        ErrorCode::ServerOverloaded,
        ErrorCode::ShuttingDown,
        ErrorCode::Cancelled,
        ErrorCode::Internal,
    ];
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault (`messages[2].content`), if one is.
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>, param: Option<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: message.into(),
                kind: code.kind().into(),
                param,
                code: Some(code.as_str().into()),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_spelling() {
        for c in ErrorCode::ALL {
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(s, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&s).unwrap(), c);
            assert!((400..600).contains(&c.status()));
        }
        let b = ErrorBody::new(ErrorCode::InvalidRequest, "bad", Some("temperature".into()));
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "temperature");
    }
}
