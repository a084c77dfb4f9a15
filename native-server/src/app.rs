//! The server's state and its routes.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{any, get, post};
use realm_protocol::Limits;
use realm_runtime::Scheduler;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::auth::Auth;
use crate::metrics::Metrics;

/// Where the server is in its life: `/health` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Loading = 0,
    Ready = 1,
    Draining = 2,
}

/// What the routes need from the options.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub max_body: usize,
    pub body_timeout: Duration,
    pub log_content: bool,
    pub ws_idle_timeout: Duration,
    pub ws_max_in_flight: u32,
    /// SHA-256 of the key `/metrics` requires.
    pub metrics_key: Option<[u8; 32]>,
    pub cors_origins: Vec<String>,
}

/// A connection's slot of `--max-connections`, in each of its requests' extensions: a
/// WebSocket upgrade takes it over, so the upgraded connection keeps it for its life.
#[derive(Clone)]
pub struct ConnSlot(pub Arc<std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl ConnSlot {
    /// The slot, for an upgraded WebSocket: this connection's own, else a free one.
    pub fn take_or_acquire(
        slot: Option<&ConnSlot>,
        app: &App,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let own = slot.and_then(|s| s.0.lock().unwrap_or_else(|p| p.into_inner()).take());
        own.or_else(|| app.conn_slots.clone().try_acquire_owned().ok())
    }
}

/// The model once loaded.
pub struct Ready {
    pub scheduler: Scheduler,
    /// Names the model is served under; the first is reported.
    pub names: Vec<String>,
    /// Unix seconds when it was loaded (`created` of `/v1/models`).
    pub created: u64,
}

pub struct App {
    pub settings: Settings,
    pub auth: Auth,
    pub metrics: Metrics,
    phase: AtomicU8,
    pub ready: OnceLock<Ready>,
    /// Generations running (HTTP and WebSocket): draining waits for 0.
    pub in_flight: AtomicUsize,
    /// Fires when draining starts (WebSocket connections close after their requests).
    pub drain: tokio::sync::watch::Sender<bool>,
    /// Connection slots (`--max-connections`): the listener takes one per TCP connection, an
    /// upgraded WebSocket keeps one for its life.
    pub conn_slots: Arc<tokio::sync::Semaphore>,
}

impl App {
    pub fn new(settings: Settings, auth: Auth, metrics: Metrics, max_connections: usize) -> App {
        App {
            settings,
            auth,
            metrics,
            phase: AtomicU8::new(Phase::Loading as u8),
            ready: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
            drain: tokio::sync::watch::channel(false).0,
            conn_slots: Arc::new(tokio::sync::Semaphore::new(max_connections.max(1))),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Loading,
            1 => Phase::Ready,
            _ => Phase::Draining,
        }
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
        if p == Phase::Draining {
            self.drain.send_replace(true);
        }
    }
}

/// Gives every request an id (the client's `X-Request-Id` when it is a sane token), logs
/// within a span that carries it, and returns it as `X-Request-Id`.
async fn request_id(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| crate::generate::request_id("req"));
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let mut res = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

pub fn router(app: Arc<App>) -> Router {
    let s = &app.settings;
    let mut r = Router::new()
        .route("/health", get(crate::http::health))
        .route("/v1/health", get(crate::http::health))
        .route("/metrics", get(crate::http::metrics))
        .route("/openapi.json", get(crate::http::openapi))
        .route("/v1/models", get(crate::http::models))
        .route("/v1/chat/completions", post(crate::http::chat))
        .route("/v1/completions", post(crate::http::completions))
        .route("/v1/responses", post(crate::responses::create).get(crate::responses::websocket))
        .route("/tokenize", post(crate::http::tokenize))
        .route("/detokenize", post(crate::http::detokenize))
        .route("/v1/ws", any(crate::ws::upgrade))
        .fallback(crate::http::not_found)
        .method_not_allowed_fallback(crate::http::method_not_allowed)
        .layer(RequestBodyTimeoutLayer::new(s.body_timeout))
        .layer(axum::middleware::from_fn(request_id));
    if !s.cors_origins.is_empty() {
        let origins = if s.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(s.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        };
        r = r.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::HeaderName::from_static("x-api-key"),
                    header::HeaderName::from_static("x-request-id"),
                ])
                .expose_headers([
                    header::HeaderName::from_static("x-request-id"),
                    header::RETRY_AFTER,
                ]),
        );
    }
    r.with_state(app)
}
