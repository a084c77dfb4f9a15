//! The HTTP routes: OpenAI's chat completions and completions (streamed as server-sent events
//! or whole), models, llama-server's tokenize/detokenize, health and metrics.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use realm_protocol::{
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletion, ChatCompletionChunk,
    ChatCompletionRequest, ChatDelta, ChatLogprobs, Completion as WireCompletion, CompletionChoice,
    CompletionLogprobs, CompletionRequest, DetokenizeRequest, DetokenizeResponse, ErrorCode,
    Health, Model, ModelList, TokenLogprob, TokenizeRequest, TokenizeResponse, TopLogprob, Usage,
};
use realm_runtime::{Completion, SeqEvent, TokenLogprobs, Tokenizer};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::app::{App, Phase, Ready};
use crate::error::ApiError;
use crate::generate::{self, GenRequest, Generation};

/// The loaded model, or 503 while loading or draining.
pub fn ready(app: &App) -> Result<&Ready, ApiError> {
    match (app.phase(), app.ready.get()) {
        (Phase::Ready, Some(r)) => Ok(r),
        (Phase::Draining, _) => Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down and takes no new requests",
        )
        .retry_after(5)),
        _ => {
            Err(ApiError::new(ErrorCode::ServerOverloaded, "the model is still loading")
                .retry_after(5))
        }
    }
}

/// Reads a JSON body: 413 past the size limit, 400 naming the field for a wrong type.
pub async fn read_json<T: DeserializeOwned>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let limit = app.settings.max_body;
    let too_big = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is over this server's limit of {limit} bytes"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        // The body stream's own error (a limit, a timeout, a reset connection).
        let msg = e.to_string();
        if msg.contains("length limit") {
            too_big()
        } else {
            ApiError::invalid("body", format!("cannot read the body: {msg}"))
        }
    })?;
    parse_json(&bytes)
}

/// Parses `bytes` as `T`, naming the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let param = if path == "." || path == "?" || path.is_empty() { None } else { Some(path) };
        let message = match &param {
            Some(p) => format!("{p}: {inner}"),
            None => format!("the body is not valid JSON for this endpoint: {inner}"),
        };
        ApiError { param, ..ApiError::new(ErrorCode::InvalidRequest, message) }
    })
}

/// Counts the request in `realm_requests_total` and logs it.
fn record(app: &App, endpoint: &str, tenant: &str, r: Response) -> Response {
    let status = r.status().as_u16().to_string();
    app.metrics.requests.with_label_values(&[endpoint, status.as_str(), tenant]).inc();
    tracing::info!(endpoint, tenant, status = r.status().as_u16(), "request");
    r
}

pub(crate) fn answer(
    app: &App,
    endpoint: &str,
    tenant: &str,
    r: Result<Response, ApiError>,
) -> Response {
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(endpoint, tenant, error = %e, "refused");
            e.into_response()
        }
    };
    record(app, endpoint, tenant, r)
}

pub async fn health(State(app): State<Arc<App>>) -> Response {
    let (code, status) = match app.phase() {
        Phase::Loading => (StatusCode::SERVICE_UNAVAILABLE, "loading"),
        Phase::Ready => (StatusCode::OK, "ok"),
        Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
    };
    (code, axum::Json(Health { status: status.into() })).into_response()
}

pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(want) = &app.settings.metrics_key {
        let ok = crate::auth::presented_key(&headers)
            .is_some_and(|k| bool::from(crate::auth::sha256(k).ct_eq(want)));
        if !ok {
            return ApiError::new(ErrorCode::InvalidApiKey, "/metrics needs the metrics key")
                .into_response();
        }
    }
    let stats = app.ready.get().map(|r| r.scheduler.stats()).unwrap_or_default();
    let text = app.metrics.render(&stats);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

pub async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

pub async fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such route (see GET /openapi.json)").into_response()
}

pub async fn method_not_allowed() -> Response {
    ApiError::new(ErrorCode::MethodNotAllowed, "this method is not allowed on this route")
        .into_response()
}

pub async fn models(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let r = (|| {
        let tenant = app.auth.tenant(&headers)?;
        let ready = ready(&app)?;
        let data = if tenant.may_use(&ready.names) {
            vec![Model {
                id: ready.names[0].clone(),
                object: "model".into(),
                created: ready.created,
                owned_by: "realm".into(),
                max_model_len: ready.scheduler.max_seq_len() as u64,
            }]
        } else {
            Vec::new()
        };
        Ok((
            tenant.name.clone(),
            axum::Json(ModelList { object: "list".into(), data }).into_response(),
        ))
    })();
    match r {
        Ok((t, r)) => record(&app, "models", &t, r),
        Err(e) => answer(&app, "models", "unknown", Err(e)),
    }
}

pub async fn tokenize(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        app.auth.tenant(&headers)?;
        let ready = ready(&app)?;
        let req: TokenizeRequest = read_json(&app, &headers, body).await?;
        let tokens = ready.scheduler.tokenizer().tokenize(
            &req.content,
            req.add_special.unwrap_or(false),
            req.parse_special.unwrap_or(true),
        );
        Ok(axum::Json(TokenizeResponse { tokens }).into_response())
    };
    let r = r.await;
    answer(&app, "tokenize", "-", r)
}

pub async fn detokenize(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let r = async {
        app.auth.tenant(&headers)?;
        let ready = ready(&app)?;
        let req: DetokenizeRequest = read_json(&app, &headers, body).await?;
        let tok = ready.scheduler.tokenizer();
        if let Some(i) = req.tokens.iter().position(|&t| t as usize >= tok.n_vocab()) {
            return Err(ApiError::invalid(
                format!("tokens[{i}]"),
                format!("not a token id (the vocabulary has {})", tok.n_vocab()),
            ));
        }
        Ok(axum::Json(DetokenizeResponse { content: tok.detokenize(&req.tokens, false) })
            .into_response())
    };
    let r = r.await;
    answer(&app, "detokenize", "-", r)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A generated token's logprobs on the wire.
pub fn wire_logprob(tok: &Tokenizer, id: u32, lp: &TokenLogprobs) -> TokenLogprob {
    let piece = |id: u32| {
        let bytes = tok.token_to_piece(id, false);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    };
    let (token, bytes) = piece(id);
    TokenLogprob {
        token,
        logprob: lp.logprob,
        bytes,
        top_logprobs: lp
            .top
            .iter()
            .map(|&(t, logprob)| {
                let (token, bytes) = piece(t);
                TopLogprob { token, logprob, bytes }
            })
            .collect(),
    }
}

/// Usage of a request whose choices are `n` per distinct prompt.
pub fn usage(job: &Generation, done: &[Option<Completion>], per_prompt: u32) -> Usage {
    let per_prompt = per_prompt.max(1) as usize;
    let mut u = Usage::default();
    for (i, c) in done.iter().enumerate() {
        let Some(c) = c else { continue };
        u.completion_tokens += c.tokens.len() as u64;
        if i % per_prompt == 0 {
            u.prompt_tokens += job.prompt_tokens.get(i).copied().unwrap_or(0) as u64;
            u.prompt_tokens_details.cached_tokens += c.cached_tokens as u64;
        }
    }
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    u
}

/// What the two endpoints share about a request in flight.
struct Shape {
    id: String,
    model: String,
    created: u64,
    chat: bool,
    /// Choices per prompt (`n`).
    per_prompt: u32,
    include_usage: bool,
    tokenizer: Arc<Tokenizer>,
}

pub async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    generation::<ChatCompletionRequest>(app, headers, body).await
}

pub async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    generation::<CompletionRequest>(app, headers, body).await
}

/// Chat or completions: auth, body, checks, the engine, then SSE or a whole answer.
async fn generation<R: GenRequest>(app: Arc<App>, headers: HeaderMap, body: Body) -> Response {
    let mut tenant = String::from("unknown");
    let r = async {
        let t = app.auth.tenant(&headers)?;
        tenant = t.name.clone();
        let ready = ready(&app)?;
        let req: R = read_json(&app, &headers, body).await?;
        let job = generate::start_request(&app, ready, &t, &req)?;
        let shape = Shape {
            id: generate::request_id(R::ID_PREFIX),
            model: ready.names[0].clone(),
            created: now_unix(),
            chat: R::CHAT,
            per_prompt: req.n(),
            include_usage: req.include_usage(),
            tokenizer: ready.scheduler.tokenizer().clone(),
        };
        Ok(respond(job, shape, req.stream(), app.settings.log_content).await)
    };
    let r = r.await;
    answer(&app, R::ENDPOINT, &tenant, r)
}

async fn respond(job: Generation, shape: Shape, stream: bool, log_content: bool) -> Response {
    if stream {
        Sse::new(sse_stream(job, shape, log_content))
            .keep_alive(KeepAlive::default())
            .into_response()
    } else {
        whole(job, shape, log_content).await
    }
}

/// A non-streamed answer: waits for every choice. A client that goes away drops this future,
/// and with it the generation (cancelled).
async fn whole(mut job: Generation, shape: Shape, log_content: bool) -> Response {
    let n = job.n as usize;
    let mut done: Vec<Option<Completion>> = vec![None; n];
    let mut logprobs: Vec<Vec<TokenLogprob>> = vec![Vec::new(); n];
    while let Some((i, e)) = job.next().await {
        let i = i as usize;
        match e {
            SeqEvent::Token { id, logprobs: Some(lp), .. } => {
                if let Some(v) = logprobs.get_mut(i) {
                    v.push(wire_logprob(&shape.tokenizer, id, &lp));
                }
            }
            SeqEvent::Done(c) => {
                if let Some(slot) = done.get_mut(i) {
                    *slot = Some(c);
                }
            }
            SeqEvent::Failed(e) => return ApiError::from(e).into_response(),
            _ => {}
        }
    }
    if done.iter().any(Option::is_none) {
        return ApiError::new(ErrorCode::Internal, "a choice ended without a result")
            .into_response();
    }
    let usage = usage(&job, &done, shape.per_prompt);
    let timings = done.iter().flatten().map(generate::timings).collect();
    if log_content {
        tracing::info!(answers = ?done.iter().flatten().map(|c| c.text.as_str()).collect::<Vec<_>>(), "answer");
    }
    let wants_lp = logprobs.iter().any(|v| !v.is_empty());
    if shape.chat {
        let choices = done
            .into_iter()
            .flatten()
            .zip(logprobs)
            .enumerate()
            .map(|(i, (c, lp))| ChatChoice {
                index: i as u32,
                finish_reason: Some(generate::finish_reason(&c).into()),
                message: AssistantMessage { role: "assistant".into(), content: c.text },
                logprobs: wants_lp.then_some(ChatLogprobs { content: lp }),
            })
            .collect();
        let body = ChatCompletion {
            id: shape.id,
            object: "chat.completion".into(),
            created: shape.created,
            model: shape.model,
            choices,
            usage,
            system_fingerprint: fingerprint(),
            timings,
        };
        axum::Json(body).into_response()
    } else {
        let choices = done
            .into_iter()
            .flatten()
            .zip(logprobs)
            .enumerate()
            .map(|(i, (c, lp))| {
                let echo = job.echo.get(i).cloned().flatten().unwrap_or_default();
                CompletionChoice {
                    index: i as u32,
                    logprobs: wants_lp
                        .then(|| completion_logprobs(&lp, echo.chars().count() as u64)),
                    finish_reason: Some(generate::finish_reason(&c).into()),
                    text: echo + &c.text,
                }
            })
            .collect();
        let body = WireCompletion {
            id: shape.id,
            object: "text_completion".into(),
            created: shape.created,
            model: shape.model,
            system_fingerprint: fingerprint(),
            choices,
            usage: Some(usage),
            timings: Some(timings),
        };
        axum::Json(body).into_response()
    }
}

/// The build, as OpenAI's `system_fingerprint`.
pub fn fingerprint() -> String {
    format!("realm-{}", env!("CARGO_PKG_VERSION"))
}

/// Chat logprobs in the completions API's layout, text offsets from `start`.
fn completion_logprobs(lp: &[TokenLogprob], start: u64) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    let mut offset = start;
    for t in lp {
        out.text_offset.push(offset);
        offset += t.token.chars().count() as u64;
        out.tokens.push(t.token.clone());
        out.token_logprobs.push(t.logprob);
        out.top_logprobs
            .push(t.top_logprobs.iter().map(|a| (a.token.clone(), a.logprob)).collect());
    }
    out
}

/// The stream's state between events.
struct Streaming {
    job: Generation,
    shape: Shape,
    out: VecDeque<Event>,
    done: Vec<Option<Completion>>,
    /// Per choice: characters sent so far (completions' `text_offset`).
    offsets: Vec<u64>,
    finished: bool,
    log_content: bool,
}

fn data<T: serde::Serialize>(v: &T) -> Event {
    Event::default().data(serde_json::to_string(v).unwrap_or_default())
}

impl Streaming {
    fn chat_chunk(
        &self,
        index: u32,
        delta: ChatDelta,
        logprobs: Option<ChatLogprobs>,
        finish: Option<String>,
    ) -> Event {
        let timings = finish
            .as_ref()
            .and_then(|_| self.done.get(index as usize).cloned().flatten())
            .map(|c| generate::timings(&c));
        data(&ChatCompletionChunk {
            id: self.shape.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.shape.created,
            model: self.shape.model.clone(),
            system_fingerprint: fingerprint(),
            choices: vec![ChatChunkChoice { index, delta, logprobs, finish_reason: finish }],
            usage: None,
            timings,
        })
    }

    fn text_chunk(
        &self,
        index: u32,
        text: String,
        logprobs: Option<CompletionLogprobs>,
        finish: Option<String>,
    ) -> Event {
        let timings = finish
            .as_ref()
            .and_then(|_| self.done.get(index as usize).cloned().flatten())
            .map(|c| vec![generate::timings(&c)]);
        data(&WireCompletion {
            id: self.shape.id.clone(),
            object: "text_completion".into(),
            created: self.shape.created,
            model: self.shape.model.clone(),
            system_fingerprint: fingerprint(),
            choices: vec![CompletionChoice { index, text, logprobs, finish_reason: finish }],
            usage: None,
            timings,
        })
    }

    fn text(&mut self, index: u32, text: String, lp: Option<TokenLogprob>) {
        let i = index as usize;
        if self.shape.chat {
            let delta = ChatDelta { role: None, content: Some(text) };
            let lp = lp.map(|l| ChatLogprobs { content: vec![l] });
            let e = self.chat_chunk(index, delta, lp, None);
            self.out.push_back(e);
        } else {
            let start = self.offsets.get(i).copied().unwrap_or(0);
            if let Some(o) = self.offsets.get_mut(i) {
                *o += text.chars().count() as u64;
            }
            let lp = lp.map(|l| completion_logprobs(std::slice::from_ref(&l), start));
            let e = self.text_chunk(index, text, lp, None);
            self.out.push_back(e);
        }
    }

    /// Turns one engine event into stream events.
    fn on(&mut self, i: u32, e: SeqEvent) {
        let ix = i as usize;
        match e {
            SeqEvent::Started { .. } => {
                if self.shape.chat {
                    let delta =
                        ChatDelta { role: Some("assistant".into()), content: Some(String::new()) };
                    let e = self.chat_chunk(i, delta, None, None);
                    self.out.push_back(e);
                } else if let Some(echo) = self.job.echo.get(ix).cloned().flatten() {
                    self.text(i, echo, None);
                }
            }
            SeqEvent::Token { id, text, logprobs, .. } => {
                let lp = logprobs.map(|lp| wire_logprob(&self.shape.tokenizer, id, &lp));
                if !text.is_empty() || lp.is_some() {
                    self.text(i, text, lp);
                }
            }
            SeqEvent::Flush { text } => {
                if !text.is_empty() {
                    self.text(i, text, None);
                }
            }
            SeqEvent::Preempted => {}
            SeqEvent::Done(c) => {
                let finish = Some(generate::finish_reason(&c).to_string());
                if self.log_content {
                    tracing::info!(choice = i, answer = %c.text, "answer");
                }
                if let Some(slot) = self.done.get_mut(ix) {
                    *slot = Some(c);
                }
                let e = if self.shape.chat {
                    self.chat_chunk(i, ChatDelta::default(), None, finish)
                } else {
                    self.text_chunk(i, String::new(), None, finish)
                };
                self.out.push_back(e);
                if self.done.iter().all(Option::is_some) {
                    self.end();
                }
            }
            SeqEvent::Failed(err) => {
                // OpenAI's clients raise on a chunk that carries `error`.
                self.out.push_back(data(&ApiError::from(err).body()));
                self.finished = true;
            }
        }
    }

    fn end(&mut self) {
        if self.shape.include_usage {
            let usage = usage(&self.job, &self.done, self.shape.per_prompt);
            let e = if self.shape.chat {
                data(&ChatCompletionChunk {
                    id: self.shape.id.clone(),
                    object: "chat.completion.chunk".into(),
                    created: self.shape.created,
                    model: self.shape.model.clone(),
                    system_fingerprint: fingerprint(),
                    choices: Vec::new(),
                    usage: Some(usage),
                    timings: None,
                })
            } else {
                data(&WireCompletion {
                    id: self.shape.id.clone(),
                    object: "text_completion".into(),
                    created: self.shape.created,
                    model: self.shape.model.clone(),
                    system_fingerprint: fingerprint(),
                    choices: Vec::new(),
                    usage: Some(usage),
                    timings: None,
                })
            };
            self.out.push_back(e);
        }
        self.out.push_back(Event::default().data("[DONE]"));
        self.finished = true;
    }
}

/// The server-sent events of a streamed answer. Dropping the stream (the client went away)
/// drops the generation: every choice still running is cancelled.
fn sse_stream(
    job: Generation,
    shape: Shape,
    log_content: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let n = job.n as usize;
    let st = Streaming {
        job,
        shape,
        out: VecDeque::new(),
        done: vec![None; n],
        offsets: vec![0; n],
        finished: false,
        log_content,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(e) = st.out.pop_front() {
                return Some((Ok(e), st));
            }
            if st.finished {
                return None;
            }
            match st.job.next().await {
                Some((i, e)) => st.on(i, e),
                None => {
                    let e = ApiError::new(ErrorCode::Internal, "the answer ended without a result");
                    st.out.push_back(data(&e.body()));
                    st.finished = true;
                }
            }
        }
    })
}
