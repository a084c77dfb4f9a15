//! What a request that fails is answered with: an [`ErrorCode`], a message, the field at
//! fault and, for limits, when to retry — OpenAI's error body over HTTP, an `error` message
//! over the WebSocket.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use realm_protocol::{ErrorBody, ErrorCode, FieldError, WsError};
use realm_runtime::{RequestError, RuntimeError};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    /// Seconds, for 429 and 503 (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), param: None, retry_after: None }
    }

    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { param: Some(param.into()), ..ApiError::new(ErrorCode::InvalidRequest, message) }
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code, self.message.clone(), self.param.clone())
    }

    /// The WebSocket form, for request `id`.
    pub fn ws(&self, id: Option<String>) -> WsError {
        WsError {
            id,
            code: self.code,
            message: self.message.clone(),
            param: self.param.clone(),
            retry_after_s: self.retry_after,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.param, e.message)
    }
}

fn code_of(runtime_code: &str) -> ErrorCode {
    match runtime_code {
        "context-length" => ErrorCode::ContextLengthExceeded,
        "invalid-argument" | "template" => ErrorCode::InvalidRequest,
        "queue-full" => ErrorCode::ServerOverloaded,
        "shut-down" => ErrorCode::ShuttingDown,
        _ => ErrorCode::Internal,
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        let code = code_of(e.code());
        let err = ApiError::new(code, e.to_string());
        match code {
            ErrorCode::ServerOverloaded | ErrorCode::ShuttingDown => err.retry_after(1),
            ErrorCode::ContextLengthExceeded => ApiError { param: Some("messages".into()), ..err },
            _ => err,
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::new(code_of(e.code), e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status(), axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}
