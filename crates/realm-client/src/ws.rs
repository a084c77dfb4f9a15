//! The `realm.v1` WebSocket protocol (`native-server/PROTOCOL.md`): one connection, many
//! requests, each a [`RequestStream`] of its messages.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use realm_protocol::{
    ChatCompletionRequest, ClientMessage, CompletionRequest, DoneMessage, Hello, ServerMessage,
    WS_PROTOCOL,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Error, describe};

/// Close code reported when the connection ended without a close frame.
const ABNORMAL: u16 = 1006;
/// The largest message this client reads (a `done` with 16 choices is a few KB).
const MAX_MESSAGE: usize = 16 << 20;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Item = Result<ServerMessage, Error>;

enum Command {
    /// A client message, already serialized.
    Send(String),
    Close,
}

#[derive(Default)]
struct State {
    /// Open requests by id: where their messages go.
    requests: HashMap<String, mpsc::UnboundedSender<Item>>,
    /// `ping`s waiting for their `pong`, in order.
    pongs: VecDeque<oneshot::Sender<Option<String>>>,
    /// Set once the connection has closed: its close code and reason.
    closed: Option<(u16, String)>,
}

struct Shared {
    state: Mutex<State>,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the map half-updated: use it as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed_error(&self) -> Option<Error> {
        self.lock()
            .closed
            .as_ref()
            .map(|(code, reason)| Error::ConnectionClosed { code: *code, reason: reason.clone() })
    }

    /// Fail every open request and ping with the close code; later calls fail at once.
    fn close_all(&self, code: u16, reason: String) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some((code, reason.clone()));
        }
        for (_, tx) in st.requests.drain() {
            let _ = tx.send(Err(Error::ConnectionClosed { code, reason: reason.clone() }));
        }
        st.pongs.clear();
    }
}

/// A `realm.v1` connection. Requests sent on it run at once, side by side; each answer is a
/// [`RequestStream`]. Dropping the connection closes it (code 1000), which cancels its
/// requests on the server and ends their streams with [`Error::ConnectionClosed`].
pub struct Connection {
    hello: Hello,
    shared: Arc<Shared>,
    cmd: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("hello", &self.hello)
            .field("closed", &self.close_code())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) async fn open(
        url: &str,
        api_key: Option<&str>,
        timeout: Duration,
    ) -> Result<Connection, Error> {
        let mut req = url
            .into_client_request()
            .map_err(|e| Error::Connection(format!("bad WebSocket URL {url}: {e}")))?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(WS_PROTOCOL));
        if let Some(k) = api_key {
            let v = HeaderValue::from_str(&format!("Bearer {k}"))
                .map_err(|_| Error::Connection("the API key is not a valid header value".into()))?;
            req.headers_mut().insert("Authorization", v);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connecting = tokio_tungstenite::connect_async_with_config(req, Some(config), true);
        let (mut ws, resp) = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(Error::Connection(format!("connecting to {url} timed out"))),
            Ok(Err(e)) => return Err(handshake_error(e)),
            Ok(Ok(v)) => v,
        };
        if let Some(p) = resp.headers().get("Sec-WebSocket-Protocol")
            && p.as_bytes() != WS_PROTOCOL.as_bytes()
        {
            return Err(Error::Protocol(format!(
                "the server selected the subprotocol {p:?}, not {WS_PROTOCOL}"
            )));
        }
        let hello = match tokio::time::timeout(timeout, read_hello(&mut ws)).await {
            Err(_) => return Err(Error::Connection("no hello from the server in time".into())),
            Ok(r) => r?,
        };
        if hello.protocol != WS_PROTOCOL {
            return Err(Error::Protocol(format!(
                "the server speaks {}, not {WS_PROTOCOL}",
                hello.protocol
            )));
        }
        let shared =
            Arc::new(Shared { state: Mutex::new(State::default()), next_id: AtomicU64::new(1) });
        let (cmd, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(ws, rx, shared.clone()));
        Ok(Connection { hello, shared, cmd })
    }

    /// The server's `hello`: its model and this connection's limits.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Requests sent and not yet ended by their `done` or `error`.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// The close code, once the connection has closed.
    pub fn close_code(&self) -> Option<u16> {
        self.shared.lock().closed.as_ref().map(|c| c.0)
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.close_code().is_some()
    }

    /// Start a chat completion; `id` is the request's name on this connection (unique among
    /// those in flight), `None` for a generated one. Fails at once with
    /// [`Error::ConnectionClosed`] on a closed connection.
    pub fn chat(
        &self,
        id: Option<String>,
        req: &ChatCompletionRequest,
    ) -> Result<RequestStream, Error> {
        let id = id.unwrap_or_else(|| self.next_id());
        self.start(id.clone(), ClientMessage::Chat { id, request: req.clone() })
    }

    /// Start a (text) completion; as [`Connection::chat`].
    pub fn complete(
        &self,
        id: Option<String>,
        req: &CompletionRequest,
    ) -> Result<RequestStream, Error> {
        let id = id.unwrap_or_else(|| self.next_id());
        self.start(id.clone(), ClientMessage::Complete { id, request: req.clone() })
    }

    /// Send a `ping` and wait for its `pong`; returns the `pong`'s data.
    pub async fn ping(&self, data: Option<String>) -> Result<Option<String>, Error> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if let Some((code, reason)) = &st.closed {
                return Err(Error::ConnectionClosed { code: *code, reason: reason.clone() });
            }
            st.pongs.push_back(tx);
        }
        if self.cmd.send(Command::Send(encode(&ClientMessage::Ping { data })?)).is_err() {
            return Err(self.gone());
        }
        rx.await.map_err(|_| self.gone())
    }

    /// Close the connection (code 1000): its open requests end with
    /// [`Error::ConnectionClosed`], and the server cancels them.
    pub fn close(&self) {
        let _ = self.cmd.send(Command::Close);
    }

    fn next_id(&self) -> String {
        format!("r{}", self.shared.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn gone(&self) -> Error {
        self.shared
            .closed_error()
            .unwrap_or(Error::ConnectionClosed { code: ABNORMAL, reason: String::new() })
    }

    fn start(&self, id: String, msg: ClientMessage) -> Result<RequestStream, Error> {
        let text = encode(&msg)?;
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut st = self.shared.lock();
            if let Some((code, reason)) = &st.closed {
                return Err(Error::ConnectionClosed { code: *code, reason: reason.clone() });
            }
            if st.requests.contains_key(&id) {
                return Err(Error::Api {
                    code: realm_protocol::ErrorCode::InvalidRequest,
                    status: 400,
                    message: format!("a request with id {id:?} is in flight on this connection"),
                    param: Some("id".into()),
                    retry_after: None,
                });
            }
            st.requests.insert(id.clone(), tx);
        }
        if self.cmd.send(Command::Send(text)).is_err() {
            self.shared.lock().requests.remove(&id);
            return Err(self.gone());
        }
        Ok(RequestStream { id, rx, cmd: self.cmd.clone(), finished: false })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.cmd.send(Command::Close);
    }
}

/// One request's messages: `created`, `delta`s, then `done` (the last item), or an
/// [`Error`] (a refused or failed request: [`Error::Api`]; a lost connection:
/// [`Error::ConnectionClosed`]). Dropping it before its end sends `cancel`.
pub struct RequestStream {
    id: String,
    rx: mpsc::UnboundedReceiver<Item>,
    cmd: mpsc::UnboundedSender<Command>,
    finished: bool,
}

impl std::fmt::Debug for RequestStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStream")
            .field("id", &self.id)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A whole answer read from a [`RequestStream`].
#[derive(Debug, Clone, PartialEq)]
pub struct RequestResult {
    /// The model that served it and the prompt's tokens (from `created`).
    pub model: String,
    pub prompt_tokens: u64,
    /// Each choice's text, by `index`.
    pub texts: Vec<String>,
    /// The `done`: finish reasons, timings and usage.
    pub done: DoneMessage,
}

impl RequestResult {
    /// The first choice's text.
    pub fn text(&self) -> &str {
        self.texts.first().map_or("", String::as_str)
    }
}

impl RequestStream {
    /// The request's id on its connection.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Ask the server to stop: the stream goes on to its `done` (finish `cancelled`).
    pub fn cancel(&self) {
        if let Ok(text) = encode(&ClientMessage::Cancel { id: self.id.clone() }) {
            let _ = self.cmd.send(Command::Send(text));
        }
    }

    /// Read the rest of the stream into a [`RequestResult`].
    pub async fn result(mut self) -> Result<RequestResult, Error> {
        let mut texts: Vec<String> = Vec::new();
        let (mut model, mut prompt_tokens) = (String::new(), 0);
        while let Some(m) = self.next().await {
            match m? {
                ServerMessage::Created { model: m, prompt_tokens: p, .. } => {
                    model = m;
                    prompt_tokens = p;
                }
                ServerMessage::Delta(d) => {
                    let i = d.index as usize;
                    if texts.len() <= i {
                        texts.resize(i + 1, String::new());
                    }
                    texts[i].push_str(&d.text);
                }
                ServerMessage::Done(done) => {
                    if texts.len() < done.choices.len() {
                        texts.resize(done.choices.len(), String::new());
                    }
                    return Ok(RequestResult { model, prompt_tokens, texts, done });
                }
                _ => {}
            }
        }
        Err(Error::Protocol(format!("request {} ended without done", self.id)))
    }
}

impl Stream for RequestStream {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(Some(Err(Error::ConnectionClosed {
                    code: ABNORMAL,
                    reason: String::new(),
                })))
            }
            Poll::Ready(Some(item)) => {
                if matches!(item, Err(_) | Ok(ServerMessage::Done(_))) {
                    this.finished = true;
                }
                Poll::Ready(Some(item))
            }
        }
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel();
        }
    }
}

fn encode(m: &ClientMessage) -> Result<String, Error> {
    serde_json::to_string(m).map_err(|e| Error::Protocol(format!("encoding a message: {e}")))
}

async fn read_hello(ws: &mut Ws) -> Result<Hello, Error> {
    loop {
        match ws.next().await {
            None => {
                return Err(Error::ConnectionClosed {
                    code: ABNORMAL,
                    reason: "closed before hello".into(),
                });
            }
            Some(Err(e)) => return Err(Error::Connection(describe(&e))),
            Some(Ok(Message::Text(t))) => {
                return match serde_json::from_str::<ServerMessage>(t.as_str()) {
                    Ok(ServerMessage::Hello(h)) => Ok(h),
                    Ok(_) => Err(Error::Protocol("the first message was not hello".into())),
                    Err(e) => Err(Error::Protocol(format!("unreadable hello: {e}"))),
                };
            }
            Some(Ok(Message::Close(f))) => {
                let (code, reason) = close_parts(f);
                return Err(Error::ConnectionClosed { code, reason });
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(Error::Protocol("a binary frame before hello".into()));
            }
            Some(Ok(_)) => {}
        }
    }
}

fn close_parts(f: Option<CloseFrame>) -> (u16, String) {
    match f {
        Some(f) => (u16::from(f.code), f.reason.as_str().to_string()),
        None => (1005, String::new()),
    }
}

/// The connection's task: routes the server's messages to their requests and writes the
/// client's; on any end it fails every open request with the close code.
async fn run(mut ws: Ws, mut cmds: mpsc::UnboundedReceiver<Command>, shared: Arc<Shared>) {
    let (code, reason) = loop {
        tokio::select! {
            msg = ws.next() => match msg {
                None => break (ABNORMAL, String::new()),
                Some(Err(e)) => break (ABNORMAL, describe(&e)),
                Some(Ok(Message::Text(t))) => route(&shared, t.as_str()),
                Some(Ok(Message::Close(f))) => {
                    let (code, reason) = close_parts(f);
                    let _ = ws.close(None).await; // answer the close handshake
                    break (code, reason);
                }
                Some(Ok(Message::Binary(_))) => {
                    let _ = ws.close(Some(CloseFrame { code: CloseCode::Unsupported, reason: "binary frame".into() })).await;
                    break (1003, "the server sent a binary frame".into());
                }
                Some(Ok(_)) => {} // ping/pong frames: tungstenite answers pings itself
            },
            cmd = cmds.recv() => match cmd {
                Some(Command::Send(text)) => {
                    if let Err(e) = ws.send(Message::Text(text.into())).await {
                        break (ABNORMAL, describe(&e));
                    }
                }
                Some(Command::Close) | None => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    break (1000, "closed by the client".into());
                }
            },
        }
    };
    shared.close_all(code, reason);
    // Drain a client close's answer briefly, without blocking anyone.
    if code == 1000 {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while ws.next().await.is_some() {}
        })
        .await;
    }
}

/// One text frame from the server, to the request it names.
fn route(shared: &Shared, text: &str) {
    let msg = match parse(text) {
        Ok(m) => m,
        Err(e) => {
            // Garbage: fail the request it names, if any; otherwise ignore it.
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string));
            if let Some(id) = id
                && let Some(tx) = shared.lock().requests.remove(&id)
            {
                let _ = tx.send(Err(Error::Protocol(format!("unreadable message: {e}"))));
            }
            return;
        }
    };
    let (id, last) = match &msg {
        ServerMessage::Created { id, .. } => (id.clone(), false),
        ServerMessage::Delta(d) => (d.id.clone(), false),
        ServerMessage::Done(d) => (d.id.clone(), true),
        ServerMessage::Error(e) => match &e.id {
            Some(id) => (id.clone(), true),
            None => return, // about a message of ours the server could not read
        },
        ServerMessage::Pong { data } => {
            if let Some(tx) = shared.lock().pongs.pop_front() {
                let _ = tx.send(data.clone());
            }
            return;
        }
        ServerMessage::Hello(_) => return,
    };
    let mut st = shared.lock();
    let tx = if last { st.requests.remove(&id) } else { st.requests.get(&id).cloned() };
    drop(st);
    if let Some(tx) = tx {
        let item = match msg {
            ServerMessage::Error(e) => Err(Error::from_ws(e)),
            m => Ok(m),
        };
        let _ = tx.send(item); // a dropped stream: its cancel is on the way
    }
}

/// A server message; an `error` with a code this version does not know reads as `internal`.
fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
    match serde_json::from_str::<ServerMessage>(text) {
        Ok(m) => Ok(m),
        Err(e) => {
            let mut v: serde_json::Value = serde_json::from_str(text)?;
            if v.get("type").and_then(|t| t.as_str()) == Some("error")
                && let Some(c) = v.get_mut("code")
            {
                *c = serde_json::Value::String("internal".into());
                return serde_json::from_value(v);
            }
            Err(e)
        }
    }
}

fn handshake_error(e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(resp) => {
            let retry =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = resp.body().clone().unwrap_or_default();
            Error::from_http(resp.status().as_u16(), retry.as_deref(), &body)
        }
        tungstenite::Error::Io(e) => Error::Connection(describe(&e)),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Error::Connection("the connection closed during the handshake".into())
        }
        other => Error::Protocol(format!("WebSocket handshake: {}", describe(&other))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_error_codes_read_as_internal() {
        let m = parse(r#"{"type":"error","id":"a","code":"brand_new","message":"x"}"#).unwrap();
        match m {
            ServerMessage::Error(e) => assert_eq!(e.code, realm_protocol::ErrorCode::Internal),
            _ => unreachable!(),
        }
        assert!(parse("not json").is_err());
    }
}
