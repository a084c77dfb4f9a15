//! The `realm.v1` WebSocket at `/v1/ws` (native-server/PROTOCOL.md): many requests on one
//! connection, tagged by the client's ids; `delta`s as tokens come, then `done` or `error`;
//! `cancel` by id; keep-alive pings and an idle timeout; a bounded outgoing queue per
//! connection, so a client that reads slowly slows only itself and is dropped past the bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use realm_protocol::ws::close;
use realm_protocol::{
    ClientMessage, DeltaMessage, DoneChoice, DoneMessage, ErrorCode, Hello, ServerMessage,
    WS_PROTOCOL,
};
use realm_runtime::{Completion, SeqEvent};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::app::{App, ConnSlot};
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::generate::{self, Canceller, GenRequest, Generation};
use crate::http::{parse_json, ready, usage, wire_logprob};

#[derive(Debug, Default, Deserialize)]
pub struct WsQuery {
    /// The API key, for clients that cannot set headers (browsers).
    api_key: Option<String>,
}

const READ_BUFFER: usize = 8 << 10;
const WRITE_BUFFER: usize = 8 << 10;
const MAX_WRITE_BUFFER: usize = 1 << 20;
/// Messages queued for one connection's writer; past it the client is too slow (4001).
const OUT_QUEUE: usize = 1024;
/// How long one frame may take to go out before the connection is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive ping interval.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Unreadable messages in a row before the connection is closed (4003).
const MAX_BAD: u32 = 8;

pub async fn upgrade(
    State(app): State<Arc<App>>,
    slot: Option<axum::Extension<ConnSlot>>,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let r = (|| {
        let key = crate::auth::presented_key(&headers).or(q.api_key.as_deref());
        let tenant = app.auth.tenant_of_key(key)?;
        ready(&app)?;
        let ws = ws.map_err(|e| {
            ApiError::invalid("upgrade", format!("a WebSocket upgrade is expected here: {e}"))
        })?;
        let offered = headers.get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        if offered.is_some_and(|o| !o.split(',').any(|p| p.trim() == WS_PROTOCOL)) {
            return Err(ApiError::invalid(
                "sec-websocket-protocol",
                format!("this server speaks {WS_PROTOCOL} only"),
            ));
        }
        Ok((tenant, ws))
    })();
    let (tenant, ws) = match r {
        Ok(v) => v,
        Err(e) => {
            app.metrics
                .requests
                .with_label_values(&["ws", &e.code.status().to_string(), "unknown"])
                .inc();
            return e.into_response();
        }
    };
    // The upgraded connection keeps a slot of --max-connections for its life.
    let Some(slot) = ConnSlot::take_or_acquire(slot.as_deref(), &app) else {
        let e =
            ApiError::new(ErrorCode::ServerOverloaded, "too many open connections").retry_after(1);
        app.metrics.requests.with_label_values(&["ws", "503", &tenant.name]).inc();
        return e.into_response();
    };
    app.metrics.requests.with_label_values(&["ws", "101", &tenant.name]).inc();
    let max = app.settings.max_body;
    ws.protocols([WS_PROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        // Small buffers (tungstenite's defaults are 128 KiB each way): an idle connection costs
        // little, and what a client does not read is bounded (past it, sends fail: closed).
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            connection(app, tenant, socket).await;
            drop(slot);
        })
        .into_response()
}

/// One connection's requests in flight: id → its canceller.
type InFlight = Arc<Mutex<HashMap<String, Canceller>>>;

fn lock(m: &InFlight) -> std::sync::MutexGuard<'_, HashMap<String, Canceller>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn text(m: &ServerMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

async fn connection(app: Arc<App>, tenant: Arc<Tenant>, mut socket: WebSocket) {
    let conns = app.metrics.connections.with_label_values(&["ws"]);
    conns.inc();
    let (out_tx, mut out_rx) = mpsc::channel::<ServerMessage>(OUT_QUEUE);
    let (slow_tx, mut slow_rx) = mpsc::channel::<()>(1);
    let in_flight: InFlight = Arc::default();
    let s = &app.settings;
    let model = app.ready.get().map(|r| r.names[0].clone()).unwrap_or_default();
    let hello = ServerMessage::Hello(Hello {
        protocol: WS_PROTOCOL.into(),
        server: format!("realm-server {}", env!("CARGO_PKG_VERSION")),
        model,
        max_in_flight: s.ws_max_in_flight,
        max_message_bytes: s.max_body as u64,
        idle_timeout_s: s.ws_idle_timeout.as_secs(),
    });
    let mut drain = app.drain.subscribe();
    let mut draining = *drain.borrow();
    let mut bad = 0u32;
    let mut idle = Box::pin(tokio::time::sleep(s.ws_idle_timeout));
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    // While draining: close once the last request's messages are out.
    let mut drained = tokio::time::interval(Duration::from_millis(100));
    let closing: Option<Message> = 'conn: {
        if send(&mut socket, text(&hello)).await.is_err() {
            break 'conn None;
        }
        loop {
            tokio::select! {
                m = socket.recv() => {
                    let m = match m {
                        Some(Ok(m)) => m,
                        Some(Err(e)) if e.to_string().contains("too long") => {
                            break 'conn Some(close_frame(close::TOO_BIG, "a message over the size limit"));
                        }
                        _ => break 'conn None,
                    };
                    if matches!(m, Message::Text(_) | Message::Binary(_)) {
                        idle.as_mut().reset(tokio::time::Instant::now() + s.ws_idle_timeout);
                    }
                    match m {
                        Message::Text(t) => {
                            let reply = on_text(&app, &tenant, t.as_bytes(), &in_flight, &out_tx, &slow_tx, draining);
                            match reply {
                                Ok(None) => bad = 0,
                                Ok(Some(r)) => {
                                    bad = 0;
                                    if send(&mut socket, text(&r)).await.is_err() { break 'conn None }
                                }
                                Err(r) => {
                                    bad += 1;
                                    if bad > MAX_BAD {
                                        break 'conn Some(close_frame(close::PROTOCOL_ERROR, "too many unreadable messages"));
                                    }
                                    if send(&mut socket, text(&r)).await.is_err() { break 'conn None }
                                }
                            }
                        }
                        Message::Binary(_) => {
                            break 'conn Some(close_frame(close::UNSUPPORTED_DATA, "binary frames are not part of realm.v1 (JSON text frames)"));
                        }
                        // Answered with a close frame (the handshake completes).
                        Message::Close(_) => break 'conn Some(Message::Close(None)),
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                Some(m) = out_rx.recv() => {
                    if send(&mut socket, text(&m)).await.is_err() { break 'conn None }
                    idle.as_mut().reset(tokio::time::Instant::now() + s.ws_idle_timeout);
                    if draining && lock(&in_flight).is_empty() && out_rx.is_empty() {
                        break 'conn Some(close_frame(close::GOING_AWAY, "the server is shutting down"));
                    }
                }
                Some(()) = slow_rx.recv() => {
                    break 'conn Some(close_frame(close::SLOW_CONSUMER, "the client reads too slowly (its outgoing queue is full)"));
                }
                () = &mut idle => {
                    // Idle means no requests running and nothing from the client.
                    if lock(&in_flight).is_empty() {
                        break 'conn Some(close_frame(close::IDLE_TIMEOUT, "idle timeout"));
                    }
                    idle.as_mut().reset(tokio::time::Instant::now() + s.ws_idle_timeout);
                }
                _ = ping.tick() => {
                    if send(&mut socket, Message::Ping(Vec::new().into())).await.is_err() { break 'conn None }
                }
                _ = drained.tick(), if draining => {
                    if lock(&in_flight).is_empty() && out_rx.is_empty() {
                        break 'conn Some(close_frame(close::GOING_AWAY, "the server is shutting down"));
                    }
                }
                Ok(()) = drain.changed(), if !draining => {
                    draining = true;
                    if lock(&in_flight).is_empty() {
                        break 'conn Some(close_frame(close::GOING_AWAY, "the server is shutting down"));
                    }
                }
            }
        }
    };
    if let Some(c) = closing {
        close_socket(&mut socket, c).await;
    }
    // Whatever still runs is cancelled: the request tasks end when their queue closes.
    for (_, c) in lock(&in_flight).drain() {
        c.cancel();
    }
    drop(out_rx);
    conns.dec();
}

/// Ends a connection with `c`: `Close(None)` answers the client's close (the reply tungstenite
/// queued is flushed); a close frame of ours is sent, then the client's awaited (≤ 2 s), so
/// the handshake completes either way.
pub(crate) async fn close_socket(socket: &mut WebSocket, c: Message) {
    use futures_util::SinkExt;
    if matches!(c, Message::Close(None)) {
        let _ = tokio::time::timeout(SEND_TIMEOUT, socket.close()).await;
        return;
    }
    if send(socket, c).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = socket.recv().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

async fn send(socket: &mut WebSocket, m: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(m)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Handles one text frame: `Ok(Some(reply))` to send now, `Err(error)` for an unreadable one.
fn on_text(
    app: &Arc<App>,
    tenant: &Arc<Tenant>,
    bytes: &[u8],
    in_flight: &InFlight,
    out: &mpsc::Sender<ServerMessage>,
    slow: &mpsc::Sender<()>,
    draining: bool,
) -> Result<Option<ServerMessage>, ServerMessage> {
    let msg = read_message(bytes).map_err(|(id, e)| ServerMessage::Error(e.ws(id)))?;
    let (id, started) = match msg {
        ClientMessage::Ping { data } => return Ok(Some(ServerMessage::Pong { data })),
        ClientMessage::Cancel { id } => {
            if let Some(c) = lock(in_flight).get(&id) {
                c.cancel();
            }
            return Ok(None);
        }
        ClientMessage::Chat { id, request } => {
            let r = start(app, tenant, in_flight, &id, draining, &request);
            (id, r)
        }
        ClientMessage::Complete { id, request } => {
            let r = start(app, tenant, in_flight, &id, draining, &request);
            (id, r)
        }
    };
    let status = |code: u16| {
        app.metrics
            .requests
            .with_label_values(&["ws_request", &code.to_string(), &tenant.name])
            .inc()
    };
    match started {
        Err(mut e) => {
            status(e.code.status());
            if let Some(p) =
                e.param.as_mut().filter(|p| !p.starts_with("request") && p.as_str() != "id")
            {
                *p = format!("request.{p}");
            }
            Ok(Some(ServerMessage::Error(e.ws(Some(id)))))
        }
        Ok((job, per_prompt)) => {
            status(200);
            let created = ServerMessage::Created {
                id: id.clone(),
                model: app.ready.get().map(|r| r.names[0].clone()).unwrap_or_default(),
                prompt_tokens: job
                    .prompt_tokens
                    .iter()
                    .step_by(per_prompt.max(1) as usize)
                    .sum::<usize>() as u64,
            };
            let task = RequestTask {
                id: id.clone(),
                job,
                per_prompt,
                out: out.clone(),
                slow: slow.clone(),
                in_flight: in_flight.clone(),
                app: app.clone(),
            };
            tokio::spawn(task.run());
            Ok(Some(created))
        }
    }
}

/// The envelope of a client message: read first, so an error in the request can name its id
/// and its field (`request.temperature`).
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    request: Option<serde_json::Value>,
    data: Option<String>,
}

fn read_message(bytes: &[u8]) -> Result<ClientMessage, (Option<String>, ApiError)> {
    let env: Envelope = parse_json(bytes).map_err(|e| (None, e))?;
    let id = env.id.clone();
    let need_id = || id.clone().ok_or((None, ApiError::invalid("id", "this message needs an id")));
    let request = || {
        env.request
            .clone()
            .ok_or((id.clone(), ApiError::invalid("request", "this message needs a request")))
    };
    fn parse<T: serde::de::DeserializeOwned>(
        id: &Option<String>,
        v: serde_json::Value,
    ) -> Result<T, (Option<String>, ApiError)> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let param = if path == "." { "request".to_string() } else { format!("request.{path}") };
            (id.clone(), ApiError::invalid(param.clone(), format!("{param}: {}", e.into_inner())))
        })
    }
    Ok(match env.kind.as_str() {
        "chat" => ClientMessage::Chat { id: need_id()?, request: parse(&id, request()?)? },
        "complete" => ClientMessage::Complete { id: need_id()?, request: parse(&id, request()?)? },
        "cancel" => ClientMessage::Cancel { id: need_id()? },
        "ping" => ClientMessage::Ping { data: env.data },
        other => {
            return Err((
                id,
                ApiError::invalid(
                    "type",
                    format!("unknown message type '{other}' (chat, complete, cancel, ping)"),
                ),
            ));
        }
    })
}

fn start<R: GenRequest>(
    app: &Arc<App>,
    tenant: &Arc<Tenant>,
    in_flight: &InFlight,
    id: &str,
    draining: bool,
    req: &R,
) -> Result<(Generation, u32), ApiError> {
    if draining {
        return Err(
            ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down").retry_after(5)
        );
    }
    let ready = ready(app)?;
    {
        let map = lock(in_flight);
        if map.contains_key(id) {
            return Err(ApiError::invalid(
                "id",
                format!("request '{id}' is already in flight on this connection"),
            ));
        }
        if map.len() >= app.settings.ws_max_in_flight as usize {
            return Err(ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!("{} requests in flight on this connection (its limit)", map.len()),
            )
            .retry_after(1));
        }
    }
    let job = generate::start_request(app, ready, tenant, req)?;
    lock(in_flight).insert(id.to_string(), job.canceller());
    Ok((job, req.n()))
}

/// One request's events → the connection's outgoing queue.
struct RequestTask {
    id: String,
    job: Generation,
    per_prompt: u32,
    out: mpsc::Sender<ServerMessage>,
    slow: mpsc::Sender<()>,
    in_flight: InFlight,
    app: Arc<App>,
}

impl RequestTask {
    /// Queues `m`; a full queue means the client does not keep up: the connection is closed.
    fn push(&self, m: ServerMessage) -> bool {
        match self.out.try_send(m) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = self.slow.try_send(());
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    async fn run(mut self) {
        let n = self.job.n as usize;
        let mut done: Vec<Option<Completion>> = vec![None; n];
        let tok = self.app.ready.get().map(|r| r.scheduler.tokenizer().clone());
        while let Some((i, e)) = self.job.next().await {
            let msg = match e {
                SeqEvent::Token { id, text, logprobs, .. } => {
                    let logprobs = match (&tok, logprobs) {
                        (Some(t), Some(lp)) => Some(vec![wire_logprob(t, id, &lp)]),
                        _ => None,
                    };
                    Some(ServerMessage::Delta(DeltaMessage {
                        id: self.id.clone(),
                        index: i,
                        text,
                        tokens: vec![id],
                        logprobs,
                    }))
                }
                SeqEvent::Flush { text } if !text.is_empty() => {
                    Some(ServerMessage::Delta(DeltaMessage {
                        id: self.id.clone(),
                        index: i,
                        text,
                        tokens: Vec::new(),
                        logprobs: None,
                    }))
                }
                SeqEvent::Done(c) => {
                    if let Some(slot) = done.get_mut(i as usize) {
                        *slot = Some(c);
                    }
                    done.iter().all(Option::is_some).then(|| {
                        let choices = done
                            .iter()
                            .flatten()
                            .enumerate()
                            .map(|(k, c)| DoneChoice {
                                index: k as u32,
                                finish_reason: generate::finish_reason(c).into(),
                                timings: generate::timings(c),
                            })
                            .collect();
                        let usage = usage(&self.job, &done, self.per_prompt);
                        ServerMessage::Done(DoneMessage { id: self.id.clone(), choices, usage })
                    })
                }
                SeqEvent::Failed(e) => {
                    let e = ApiError::from(e).ws(Some(self.id.clone()));
                    self.push(ServerMessage::Error(e));
                    break;
                }
                _ => None,
            };
            let last = matches!(msg, Some(ServerMessage::Done(_)));
            if let Some(m) = msg
                && !self.push(m)
            {
                break;
            }
            if last {
                break;
            }
        }
        lock(&self.in_flight).remove(&self.id);
    }
}
