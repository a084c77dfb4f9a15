//! The client's one error type, mirroring realm-protocol's [`ErrorCode`].

use std::time::Duration;

use realm_protocol::{ErrorBody, ErrorCode, WsError};

/// Everything a call of this crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error: an HTTP status with OpenAI's error body, a refused
    /// WebSocket handshake, or a `realm.v1` `error` message. `status` is the HTTP status (over
    /// the WebSocket: the code's status, informative only).
    #[error("{status} {}: {message}", code.as_str())]
    Api {
        code: ErrorCode,
        status: u16,
        message: String,
        /// The request field at fault, if one is (`messages[0].role`, `request.max_tokens`).
        param: Option<String>,
        /// How long to wait before retrying (`Retry-After`, `retry_after_s`).
        retry_after: Option<Duration>,
    },
    /// The server could not be reached, or the connection failed while a response was read
    /// (an SSE stream cut off before `[DONE]`, a refused or reset TCP connection, a timeout).
    #[error("connection error: {0}")]
    Connection(String),
    /// The `realm.v1` connection closed while the request was open, or before it was sent.
    /// `code` is the close code: 1006 when the connection was lost without a close frame,
    /// 1000 when this client closed it (see `native-server/PROTOCOL.md`, "Close codes").
    #[error("connection closed (code {code}){}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    ConnectionClosed { code: u16, reason: String },
    /// The server sent something this client cannot read (garbage JSON, an unexpected frame,
    /// a wrong protocol version).
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    /// The server's error code ([`Error::Api`] only).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status ([`Error::Api`] only).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's retry delay, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The field at fault, if the server named one.
    pub fn param(&self) -> Option<&str> {
        match self {
            Error::Api { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// A missing or wrong API key (401, `invalid_api_key`).
    pub fn is_auth(&self) -> bool {
        self.code() == Some(ErrorCode::InvalidApiKey)
    }

    /// Over a limit (429, `rate_limit_exceeded`): see [`Error::retry_after`].
    pub fn is_rate_limit(&self) -> bool {
        self.code() == Some(ErrorCode::RateLimitExceeded)
    }

    /// A bad request (400: `invalid_request` or `context_length_exceeded`): see [`Error::param`].
    pub fn is_bad_request(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::InvalidRequest | ErrorCode::ContextLengthExceeded))
    }

    /// The server is busy or draining (503: `server_overloaded`, `shutting_down`).
    pub fn is_overloaded(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::ServerOverloaded | ErrorCode::ShuttingDown))
    }

    /// The connection failed ([`Error::Connection`] or [`Error::ConnectionClosed`]).
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connection(_) | Error::ConnectionClosed { .. })
    }

    /// Whether sending the same request again later may succeed: rate limits, a full queue, a
    /// draining server. (Connection errors are not included: the request may have run.)
    pub fn is_retryable(&self) -> bool {
        self.is_rate_limit() || self.is_overloaded()
    }

    /// An HTTP error answer: OpenAI's error body where there is one, else the status alone.
    pub(crate) fn from_http(status: u16, retry_after: Option<&str>, body: &[u8]) -> Error {
        let retry_after =
            retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => Error::Api {
                code: b
                    .error
                    .code
                    .as_deref()
                    .map(code_from_str)
                    .unwrap_or_else(|| code_from_status(status)),
                status,
                message: b.error.message,
                param: b.error.param,
                retry_after,
            },
            Err(_) => Error::Api {
                code: code_from_status(status),
                status,
                message: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
                param: None,
                retry_after,
            },
        }
    }

    /// A `realm.v1` `error` message.
    pub(crate) fn from_ws(e: WsError) -> Error {
        Error::Api {
            code: e.code,
            status: e.code.status(),
            message: e.message,
            param: e.param,
            retry_after: e.retry_after_s.map(Duration::from_secs),
        }
    }
}

/// A code's wire spelling to the code; an unknown one is `internal` (PROTOCOL.md, "Errors").
pub(crate) fn code_from_str(s: &str) -> ErrorCode {
    ErrorCode::ALL.into_iter().find(|c| c.as_str() == s).unwrap_or(ErrorCode::Internal)
}

/// The code of an error answer without a readable body (a proxy's, say).
fn code_from_status(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::InvalidRequest,
        401 => ErrorCode::InvalidApiKey,
        403 => ErrorCode::ModelNotAllowed,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        429 => ErrorCode::RateLimitExceeded,
        503 => ErrorCode::ServerOverloaded,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_map_to_codes() {
        let body = br#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#;
        let e = Error::from_http(429, Some("7"), body);
        assert!(e.is_rate_limit() && e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.status(), Some(429));
        let e = Error::from_http(401, None, b"<html>nope</html>");
        assert!(e.is_auth());
        let body = br#"{"error":{"message":"?","type":"x","param":"n","code":"some_new_code"}}"#;
        let e = Error::from_http(500, None, body);
        assert_eq!(e.code(), Some(ErrorCode::Internal));
        assert_eq!(e.param(), Some("n"));
    }
}
