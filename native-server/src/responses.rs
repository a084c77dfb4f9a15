//! OpenAI's Responses API, text only (free, or JSON under `text.format`): `POST /v1/responses`
//! (whole, or streamed as typed server-sent events) and its WebSocket mode on the same path
//! (`response.create` messages in, the same events out as JSON text frames, one response at a
//! time per connection), so the official clients' Responses code runs against Realm unchanged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use realm_protocol::ws::close;
use realm_protocol::{
    ChatCompletionRequest, ConstraintFields, ErrorCode, IncompleteDetails, InputTokensDetails,
    OutputMessage, OutputText, OutputTokensDetails, ResponseInput, ResponseObject, ResponseRequest,
    ResponseUsage, TextConfig,
};
use realm_runtime::{ChatMessage, Completion, FinishReason, RequestOptions, SeqEvent};
use serde_json::{Value, json};

use crate::app::{App, ConnSlot, Ready};
use crate::auth::Tenant;
use crate::error::ApiError;
use crate::generate::{self, Choice, FormatField, Generation};
use crate::http::{read_json, ready};

/// A response's format, its schema beside `type`.
const TEXT_FORMAT: FormatField =
    FormatField { format: "text.format", schema: "text.format.schema" };

/// The request's one choice: instructions and input through the chat template, under its
/// `text.format`.
fn choice(ready: &Ready, tenant: &Tenant, req: &ResponseRequest) -> Result<Choice, ApiError> {
    let mut messages = Vec::new();
    if let Some(i) = &req.instructions {
        messages.push(ChatMessage::system(i.as_str()));
    }
    match &req.input {
        Some(ResponseInput::Text(t)) => messages.push(ChatMessage::user(t.as_str())),
        Some(ResponseInput::Items(items)) => messages.extend(items.iter().map(|m| {
            ChatMessage::new(m.role.as_str(), ChatCompletionRequest::message_text(&m.content))
        })),
        None => {}
    }
    let prompt = generate::chat_prompt(ready, messages)?;
    let max = generate::max_tokens(req.max_output_tokens, tenant, None)
        .map_err(|e| ApiError { param: Some("max_output_tokens".into()), ..e })?;
    let format = req.text.as_ref().and_then(|t| t.format.as_ref()).map(|f| f.response_format());
    let fields = ConstraintFields { response_format: format.as_ref(), ..Default::default() };
    let constraint = generate::constraint_at(ready, fields, TEXT_FORMAT)?;
    let sampling = req.sampling();
    let base = generate::base_options(&sampling, &None, max, None, constraint);
    let seed = generate::seeds(sampling.seed, 1).next();
    Ok(Choice { prompt, options: RequestOptions { seed, ..base }, echo: None })
}

/// Checks and starts one response.
fn start(
    app: &Arc<App>,
    tenant: &Arc<Tenant>,
    req: &ResponseRequest,
) -> Result<Generation, ApiError> {
    let ready = ready(app)?;
    req.check(&app.settings.limits)?;
    generate::check_model(ready, tenant, req.model.as_deref())?;
    let c = choice(ready, tenant, req)?;
    Generation::start(app, ready, tenant.clone(), vec![c])
        .map_err(|e| generate::prompt_param(e, "input"))
}

/// The events of one response, numbered in order.
struct Events {
    id: String,
    item: String,
    model: String,
    created_at: u64,
    seq: u64,
    text: String,
    req: ResponseRequest,
}

impl Events {
    fn new(app: &App, req: ResponseRequest) -> Events {
        Events {
            id: generate::request_id("resp"),
            item: generate::request_id("msg"),
            model: app.ready.get().map(|r| r.names[0].clone()).unwrap_or_default(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            seq: 0,
            text: String::new(),
            req,
        }
    }

    fn event(&mut self, kind: &str, mut body: Value) -> Value {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        body
    }

    fn message(&self, status: &str) -> OutputMessage {
        let content = if status == "in_progress" && self.text.is_empty() {
            Vec::new()
        } else {
            vec![OutputText {
                kind: "output_text".into(),
                text: self.text.clone(),
                annotations: Vec::new(),
            }]
        };
        OutputMessage {
            kind: "message".into(),
            id: self.item.clone(),
            status: status.into(),
            role: "assistant".into(),
            content,
        }
    }

    fn object(&self, done: Option<(&Completion, u64)>) -> ResponseObject {
        let (status, incomplete, usage) = match done {
            None => ("in_progress", None, None),
            Some((c, prompt)) => {
                let (status, reason) = match c.finish {
                    FinishReason::Eog | FinishReason::Stop => ("completed", None),
                    FinishReason::Length | FinishReason::ContextFull => {
                        ("incomplete", Some("max_output_tokens"))
                    }
                    FinishReason::Cancelled => ("cancelled", None),
                };
                let usage = ResponseUsage {
                    input_tokens: prompt,
                    input_tokens_details: InputTokensDetails {
                        cached_tokens: c.cached_tokens as u64,
                    },
                    output_tokens: c.tokens.len() as u64,
                    output_tokens_details: OutputTokensDetails { reasoning_tokens: 0 },
                    total_tokens: prompt + c.tokens.len() as u64,
                };
                (status, reason.map(|r| IncompleteDetails { reason: r.into() }), Some(usage))
            }
        };
        let output = if done.is_some() { vec![self.message("completed")] } else { Vec::new() };
        ResponseObject {
            id: self.id.clone(),
            object: "response".into(),
            created_at: self.created_at,
            status: status.into(),
            model: self.model.clone(),
            output,
            usage,
            incomplete_details: incomplete,
            instructions: self.req.instructions.clone(),
            max_output_tokens: self.req.max_output_tokens,
            temperature: self.req.temperature,
            top_p: self.req.top_p,
            text: TextConfig { format: Some(self.req.format()) },
            error: None,
        }
    }

    fn started(&mut self) -> Vec<Value> {
        let r = json!({"response": self.object(None)});
        let part = json!({"type": "output_text", "text": "", "annotations": []});
        vec![
            self.event("response.created", r.clone()),
            self.event("response.in_progress", r),
            self.event(
                "response.output_item.added",
                json!({"output_index": 0, "item": self.message("in_progress")}),
            ),
            self.event(
                "response.content_part.added",
                json!({"item_id": self.item, "output_index": 0, "content_index": 0, "part": part}),
            ),
        ]
    }

    fn delta(&mut self, text: &str) -> Value {
        self.text.push_str(text);
        let body = json!({"item_id": self.item, "output_index": 0, "content_index": 0, "delta": text, "logprobs": []});
        self.event("response.output_text.delta", body)
    }

    fn finished(&mut self, c: &Completion, prompt: u64) -> Vec<Value> {
        // The final text is the completion's (held-back stop-string text resolved).
        self.text = c.text.clone();
        let part = json!({"type": "output_text", "text": self.text, "annotations": []});
        let obj = self.object(Some((c, prompt)));
        let last = match obj.status.as_str() {
            "completed" => "response.completed",
            _ => "response.incomplete",
        };
        vec![
            self.event(
                "response.output_text.done",
                json!({"item_id": self.item, "output_index": 0, "content_index": 0, "text": self.text, "logprobs": []}),
            ),
            self.event(
                "response.content_part.done",
                json!({"item_id": self.item, "output_index": 0, "content_index": 0, "part": part}),
            ),
            self.event("response.output_item.done", json!({"output_index": 0, "item": self.message("completed")})),
            self.event(last, json!({"response": obj})),
        ]
    }

    fn error(&mut self, e: &ApiError) -> Value {
        let body = json!({"code": e.code.as_str(), "message": e.message, "param": e.param});
        self.event("error", body)
    }
}

/// Runs a started response to its end, sending each event to `tx` (stops, cancelling the
/// response, when the receiver is gone).
async fn drive(mut job: Generation, mut ev: Events, tx: tokio::sync::mpsc::Sender<Value>) {
    let prompt = job.prompt_tokens.first().copied().unwrap_or(0) as u64;
    while let Some((_, e)) = job.next().await {
        let out = match e {
            SeqEvent::Started { .. } => ev.started(),
            SeqEvent::Token { text, .. } | SeqEvent::Flush { text } if !text.is_empty() => {
                vec![ev.delta(&text)]
            }
            SeqEvent::Done(c) => ev.finished(&c, prompt),
            SeqEvent::Failed(err) => vec![ev.error(&ApiError::from(err))],
            _ => Vec::new(),
        };
        for v in out {
            if tx.send(v).await.is_err() {
                return;
            }
        }
    }
}

/// A task that is aborted (its response cancelled) when the stream or connection that reads
/// it goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `POST /v1/responses`.
pub async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let mut tenant_name = String::from("unknown");
    let r = async {
        let tenant = app.auth.tenant(&headers)?;
        tenant_name = tenant.name.clone();
        ready(&app)?;
        let req: ResponseRequest = read_json(&app, &headers, body).await?;
        let job = start(&app, &tenant, &req)?;
        let stream = req.stream == Some(true);
        let ev = Events::new(&app, req);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(64);
        let task = AbortOnDrop(tokio::spawn(drive(job, ev, tx)));
        if stream {
            let s = futures_util::stream::unfold((rx, task), |(mut rx, task)| async move {
                let v = rx.recv().await?;
                let kind = v["type"].as_str().unwrap_or("message").to_string();
                Some((
                    Ok::<_, std::convert::Infallible>(
                        Event::default().event(kind).data(v.to_string()),
                    ),
                    (rx, task),
                ))
            });
            return Ok(Sse::new(s).keep_alive(KeepAlive::default()).into_response());
        }
        let mut last = None;
        let mut failed = None;
        while let Some(v) = rx.recv().await {
            match v["type"].as_str() {
                Some("error") => failed = Some(v),
                Some("response.completed" | "response.incomplete") => last = Some(v),
                _ => {}
            }
        }
        drop(task);
        if let Some(f) = failed {
            let code = f["code"].as_str().unwrap_or("internal");
            let code = realm_protocol::ErrorCode::ALL
                .into_iter()
                .find(|c| c.as_str() == code)
                .unwrap_or(ErrorCode::Internal);
            return Err(ApiError::new(
                code,
                f["message"].as_str().unwrap_or("the response failed"),
            ));
        }
        match last {
            Some(v) => Ok(axum::Json(v["response"].clone()).into_response()),
            None => Err(ApiError::new(ErrorCode::Internal, "the response ended without a result")),
        }
    };
    let r = r.await;
    crate::http::answer(&app, "responses", &tenant_name, r)
}

/// `GET /v1/responses` with a WebSocket upgrade: the Responses API's WebSocket mode.
pub async fn websocket(
    State(app): State<Arc<App>>,
    slot: Option<axum::Extension<ConnSlot>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let r = (|| -> Result<_, ApiError> {
        let tenant = app.auth.tenant(&headers)?;
        ready(&app)?;
        let ws = ws.map_err(|e| {
            ApiError::invalid(
                "upgrade",
                format!("POST /v1/responses, or a WebSocket upgrade here: {e}"),
            )
        })?;
        Ok((tenant, ws))
    })();
    let (tenant, ws) = match r {
        Err(e) => return crate::http::answer(&app, "responses_ws", "unknown", Err(e)),
        Ok(v) => v,
    };
    // The upgraded connection keeps a slot of --max-connections for its life.
    let Some(slot) = ConnSlot::take_or_acquire(slot.as_deref(), &app) else {
        let e =
            ApiError::new(ErrorCode::ServerOverloaded, "too many open connections").retry_after(1);
        return crate::http::answer(&app, "responses_ws", &tenant.name, Err(e));
    };
    app.metrics.requests.with_label_values(&["responses_ws", "101", &tenant.name]).inc();
    let max = app.settings.max_body;
    ws.max_message_size(max)
        .read_buffer_size(8 << 10)
        .write_buffer_size(8 << 10)
        .max_write_buffer_size(1 << 20)
        .on_upgrade(move |socket| async move {
            ws_connection(app, tenant, socket).await;
            drop(slot);
        })
        .into_response()
}

async fn ws_connection(app: Arc<App>, tenant: Arc<Tenant>, mut socket: WebSocket) {
    let conns = app.metrics.connections.with_label_values(&["responses_ws"]);
    conns.inc();
    let idle = app.settings.ws_idle_timeout;
    let mut drain = app.drain.subscribe();
    let frame =
        |code: u16, reason: &str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    // Between responses: the next message, or why the connection ends (the frame to close with).
    let closing = loop {
        if *drain.borrow() {
            break Some(frame(close::GOING_AWAY, "the server is shutting down"));
        }
        let m = tokio::select! {
            r = tokio::time::timeout(idle, socket.recv()) => match r {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) if e.to_string().contains("too long") => {
                    break Some(frame(close::TOO_BIG, "a message over the size limit"));
                }
                Err(_) => break Some(frame(close::IDLE_TIMEOUT, "idle timeout")),
                _ => break None,
            },
            _ = drain.changed() => continue,
        };
        let text = match m {
            Message::Text(t) => t,
            // Answered with a close frame (the handshake completes).
            Message::Close(_) => break Some(Message::Close(None)),
            Message::Binary(_) => {
                break Some(frame(close::UNSUPPORTED_DATA, "JSON text frames only"));
            }
            _ => continue,
        };
        let mut ev = Events::new(&app, ResponseRequest::default());
        let parsed = crate::http::parse_json::<Value>(text.as_bytes()).and_then(|v| {
            if v["type"] != "response.create" {
                return Err(ApiError::invalid("type", "expected a response.create message"));
            }
            crate::http::parse_json::<ResponseRequest>(v.to_string().as_bytes())
        });
        let job = parsed.and_then(|req| {
            let job = start(&app, &tenant, &req)?;
            ev.req = req;
            Ok(job)
        });
        let job = match job {
            Ok(j) => j,
            Err(e) => {
                let v = ev.error(&e);
                if socket.send(Message::Text(v.to_string().into())).await.is_err() {
                    break None;
                }
                continue;
            }
        };
        // One response at a time: its events go out as they come; a client that closes or
        // stops reading drops the response (cancelled).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(64);
        let task = AbortOnDrop(tokio::spawn(drive(job, ev, tx)));
        let mut gone = false;
        loop {
            tokio::select! {
                v = rx.recv() => {
                    let Some(v) = v else { break };
                    let send = socket.send(Message::Text(v.to_string().into()));
                    if !matches!(tokio::time::timeout(std::time::Duration::from_secs(30), send).await, Ok(Ok(()))) {
                        gone = true;
                        break;
                    }
                }
                m = socket.recv() => match m {
                    Some(Ok(Message::Text(_))) => {
                        let e = ApiError::invalid("type", "a response is in progress on this connection (one at a time)");
                        let v = json!({"type": "error", "code": e.code.as_str(), "message": e.message, "param": e.param});
                        let _ = socket.send(Message::Text(v.to_string().into())).await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => { gone = true; break; }
                }
            }
        }
        drop(task);
        if gone {
            break None;
        }
    };
    if let Some(c) = closing {
        crate::ws::close_socket(&mut socket, c).await;
    }
    conns.dec();
}
