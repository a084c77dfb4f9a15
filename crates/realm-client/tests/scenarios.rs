//! clients/SCENARIOS.md, S1–S6, against the real `realm-server` on the real model.
//!
//! With `REALM_TEST_URL` set (scripts/test-clients.sh), the tests use that running server with
//! the keys `REALM_TEST_KEY`, `REALM_TEST_LIMITED_KEY` and `REALM_TEST_METRICS_KEY`, and leave it
//! running. Without it, each test starts its own server (loopback, a free port, a tenants file
//! with SHA-256 keys: a `main` tenant, a `limited` one with requests_per_minute = 2 and
//! max_tokens = 64; a metrics key) and kills it by its PID when done. S6 always starts its own.
//! The tests run one at a time. The binary is `REALM_SERVER_BIN`, else
//! `<workspace>/target/debug/realm-server`; the model `REALM_MODEL`, else SmolLM2-135M in
//! `~/.cache/realm/models`. They are `#[ignore]`d in a plain `cargo test` (which may run before
//! the server is built); run them with `cargo test --locked -p realm-client -- --ignored` after
//! `cargo build -p realm-server`. A missing binary or model fails them (never a silent skip).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, non_snake_case)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use realm_client::protocol::{ChatCompletionRequest, ErrorCode, ServerMessage, StreamOptions};
use realm_client::{Client, Error, StreamExt, message};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

static KEY: LazyLock<String> =
    LazyLock::new(|| env_or("REALM_TEST_KEY", "client-test-key-0123456789"));
static LIMITED_KEY: LazyLock<String> =
    LazyLock::new(|| env_or("REALM_TEST_LIMITED_KEY", "client-limited-key-abcdef"));
static METRICS_KEY: LazyLock<String> =
    LazyLock::new(|| env_or("REALM_TEST_METRICS_KEY", "client-metrics-key"));
const LIMITED_RPM: usize = 2;

/// One server at a time: the machine may have few cores, and S3 reads a global gauge.
static SERIAL: Mutex<()> = Mutex::new(());

fn server_bin() -> PathBuf {
    match std::env::var_os("REALM_SERVER_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/realm-server"),
    }
}

fn model() -> PathBuf {
    if let Some(p) = std::env::var_os("REALM_MODEL") {
        return PathBuf::from(p);
    }
    let cache = match std::env::var_os("REALM_CACHE_DIR") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/realm"),
    };
    cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn sha(k: &str) -> String {
    Sha256::digest(k.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The process and temp dir of a server this harness started; a shared one has none.
struct Own {
    child: Child,
    dir: PathBuf,
}

struct Server {
    own: Option<Own>,
    url: String,
    addr: String,
    _serial: MutexGuard<'static, ()>,
}

impl Server {
    /// The shared server of `REALM_TEST_URL` if set, else one of its own.
    async fn start() -> Server {
        match std::env::var("REALM_TEST_URL") {
            Ok(url) if !url.is_empty() => Server::shared(&url).await,
            _ => Server::start_own().await,
        }
    }

    async fn shared(url: &str) -> Server {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let url = url.trim_end_matches('/').to_string();
        let addr = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("REALM_TEST_URL {url}: not http://"))
            .to_string();
        let mut s = Server { own: None, url, addr, _serial: serial };
        s.wait_ready(Duration::from_secs(10)).await;
        s
    }

    async fn start_own() -> Server {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let bin = server_bin();
        assert!(
            bin.is_file(),
            "realm-server binary not found at {} (set REALM_SERVER_BIN, or `cargo build -p realm-server` first; \
             scripts/test-clients.sh does both)",
            bin.display()
        );
        let model = model();
        assert!(model.is_file(), "model not found at {} (set REALM_MODEL)", model.display());
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("realm-client-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tenants = dir.join("tenants.toml");
        std::fs::write(
            &tenants,
            format!(
                "[[tenant]]\nname = \"main\"\nkey_sha256 = [\"{}\"]\n\n\
                 [[tenant]]\nname = \"limited\"\nkey_sha256 = [\"{}\"]\nrequests_per_minute = {LIMITED_RPM}\nmax_tokens = 64\n",
                sha(&KEY),
                sha(&LIMITED_KEY)
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(&bin)
            .args(["-m".as_ref(), model.as_os_str()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-t", "2"])
            .args(["--config".as_ref(), tenants.as_os_str()])
            .args(["--metrics-key", METRICS_KEY.as_str(), "--max-running", "8", "-c", "4096"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let addr = format!("127.0.0.1:{port}");
        let own = Some(Own { child, dir });
        let mut s = Server { own, url: format!("http://{addr}"), addr, _serial: serial };
        s.wait_ready(Duration::from_secs(120)).await;
        s
    }

    async fn wait_ready(&mut self, timeout: Duration) {
        let c = Client::new(&self.url);
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Some(own) = &mut self.own
                && let Some(st) = own.child.try_wait().unwrap()
            {
                panic!("realm-server exited with {st}: {}", self.logs());
            }
            if let Ok(h) = c.health().await
                && h.status == "ok"
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("realm-server at {} did not become ready: {}", self.url, self.logs());
    }

    fn logs(&self) -> String {
        let Some(own) = &self.own else {
            return "(a shared server: its log is with whoever started it)".into();
        };
        let s = std::fs::read_to_string(own.dir.join("server.log")).unwrap_or_default();
        s[s.len().saturating_sub(4000)..].to_string()
    }

    fn client(&self) -> Client {
        Client::new(&self.url).api_key(KEY.as_str())
    }

    /// SIGKILL, by PID: only a server this harness started.
    fn kill(&mut self) {
        let own = self.own.as_mut().expect("kill: not a server this harness started");
        let _ = own.child.kill();
        let _ = own.child.wait();
    }

    async fn running(&self) -> f64 {
        let mut s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let req = format!(
            "GET /metrics HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
            self.addr, *METRICS_KEY
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.") && out.contains(" 200 "), "metrics: {out}");
        out.lines()
            .find_map(|l| l.strip_prefix("realm_num_requests_running "))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }

    async fn wait_running(&self, pred: impl Fn(f64) -> bool, timeout: Duration) -> f64 {
        let t0 = Instant::now();
        loop {
            let n = self.running().await;
            if pred(n) || t0.elapsed() > timeout {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    /// A server of its own is killed; a shared one is left running.
    fn drop(&mut self) {
        if let Some(own) = &mut self.own {
            let _ = own.child.kill();
            let _ = own.child.wait();
            let _ = std::fs::remove_dir_all(&own.dir);
        }
    }
}

fn chat_req(prompt: &str, max_tokens: u32, seed: i64) -> ChatCompletionRequest {
    ChatCompletionRequest {
        messages: vec![message("user", prompt)],
        max_tokens: Some(max_tokens),
        seed: Some(seed),
        ..Default::default()
    }
}

fn long_req() -> ChatCompletionRequest {
    ChatCompletionRequest { ignore_eos: Some(true), ..chat_req("Name three colours.", 2000, 1) }
}

/// Fail a hang instead of waiting for it.
async fn within<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f).await.expect("timed out: a hang")
}

// S1 -- a streamed chat answer equals the server's non-streamed answer for the same seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_S1_stream_equals_whole_answer() {
    let srv = Server::start().await;
    let c = srv.client();
    let req =
        ChatCompletionRequest { temperature: Some(0.7), ..chat_req("Name three colours.", 24, 7) };
    let whole = within(120, c.chat(&req)).await.unwrap();
    let whole_text = whole.choices[0].message.content.clone();
    assert!(!whole_text.is_empty());

    let sreq = ChatCompletionRequest {
        stream_options: Some(StreamOptions { include_usage: Some(true) }),
        ..req.clone()
    };
    let mut stream = c.chat_stream(&sreq).await.unwrap();
    let (mut text, mut finish, mut timings, mut usage) = (String::new(), None, None, None);
    while let Some(chunk) = within(120, stream.next()).await {
        let chunk = chunk.unwrap();
        if let Some(ch) = chunk.choices.first() {
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
            finish = ch.finish_reason.clone().or(finish);
            timings = chunk.timings.clone().or(timings);
        } else {
            usage = chunk.usage.clone();
        }
    }
    assert_eq!(text, whole_text);
    assert_eq!(finish, whole.choices[0].finish_reason);
    assert_eq!(usage.unwrap().completion_tokens, whole.usage.completion_tokens);
    assert_eq!(timings.unwrap().predicted_n, whole.timings[0].predicted_n);

    // and over realm.v1
    let conn = c.connect().await.unwrap();
    let res = within(120, conn.chat(None, &req).unwrap().result()).await.unwrap();
    assert_eq!(res.text(), whole_text);
    assert_eq!(Some(res.done.choices[0].finish_reason.clone()), whole.choices[0].finish_reason);
    assert_eq!(res.done.usage.completion_tokens, whole.usage.completion_tokens);
    assert_eq!(res.done.choices[0].timings.predicted_n, whole.timings[0].predicted_n);
}

// S2 -- three requests at once on one connection, each answered in full and as if alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_S2_three_concurrent_requests_on_one_connection() {
    let srv = Server::start().await;
    let c = srv.client();
    let prompts = ["Name three colours.", "Count to five.", "Say hi."];
    let mut alone = Vec::new();
    for p in prompts {
        let r = within(120, c.chat(&chat_req(p, 16, 3))).await.unwrap();
        alone.push(r.choices[0].message.content.clone());
    }
    let conn = c.connect().await.unwrap();
    let streams: Vec<_> =
        prompts.iter().map(|p| conn.chat(None, &chat_req(p, 16, 3)).unwrap()).collect();
    let ids: std::collections::HashSet<_> = streams.iter().map(|s| s.id().to_string()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(conn.in_flight(), 3);
    // all three in flight at once: every `created` comes before the first `done`
    let mut streams = streams;
    for s in &mut streams {
        match within(60, s.next()).await {
            Some(Ok(ServerMessage::Created { prompt_tokens, .. })) => assert!(prompt_tokens > 0),
            other => panic!("expected created, got {other:?}"),
        }
    }
    assert_eq!(conn.in_flight(), 3);
    let results =
        within(120, futures_util::future::join_all(streams.into_iter().map(|s| s.result()))).await;
    let results: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    let texts: Vec<String> = results.iter().map(|r| r.text().to_string()).collect();
    assert_eq!(texts, alone);
    assert!(results.iter().all(|r| r.done.usage.completion_tokens > 0));
    assert_eq!(conn.in_flight(), 0);
}

// S3 -- cancelling mid-stream frees the request on the server (realm_num_requests_running).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_S3_cancel_running_count_drops() {
    let srv = Server::start().await;
    let c = srv.client();
    let ten = Duration::from_secs(10);
    assert_eq!(srv.wait_running(|n| n == 0.0, ten).await, 0.0);

    // realm.v1: an explicit cancel ends with done, finish "cancelled"
    let conn = c.connect().await.unwrap();
    let mut s = conn.chat(None, &long_req()).unwrap();
    let mut deltas = 0;
    while deltas < 3 {
        if let ServerMessage::Delta(_) = within(60, s.next()).await.unwrap().unwrap() {
            deltas += 1;
        }
    }
    assert!(srv.running().await >= 1.0);
    s.cancel();
    let res = within(30, s.result()).await.unwrap();
    assert_eq!(res.done.choices[0].finish_reason, "cancelled");
    assert_eq!(srv.wait_running(|n| n == 0.0, ten).await, 0.0);

    // realm.v1: dropping the stream cancels too; the connection still answers ping
    let mut s2 = conn.chat(None, &long_req()).unwrap();
    for _ in 0..3 {
        within(60, s2.next()).await.unwrap().unwrap();
    }
    assert!(srv.running().await >= 1.0);
    drop(s2);
    assert_eq!(srv.wait_running(|n| n == 0.0, ten).await, 0.0);
    let pong = within(10, conn.ping(Some("still-open".into()))).await.unwrap();
    assert_eq!(pong.as_deref(), Some("still-open"));
    assert!(!conn.is_closed());

    // SSE: dropping the stream closes the response
    let mut stream = c.chat_stream(&long_req()).await.unwrap();
    for _ in 0..4 {
        within(60, stream.next()).await.unwrap().unwrap();
    }
    assert!(srv.running().await >= 1.0);
    drop(stream);
    assert_eq!(srv.wait_running(|n| n == 0.0, ten).await, 0.0);

    // SSE: cancelling the task that reads the stream
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c2 = c.clone();
    let task = tokio::spawn(async move {
        let mut stream = c2.chat_stream(&long_req()).await.unwrap();
        let mut tx = Some(tx);
        let mut n = 0;
        while let Some(ch) = stream.next().await {
            ch.unwrap();
            n += 1;
            if n == 4
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    within(60, rx).await.unwrap();
    assert!(srv.running().await >= 1.0);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(srv.wait_running(|n| n == 0.0, ten).await, 0.0);
}

fn assert_auth(e: Error) {
    assert!(e.is_auth(), "expected the authentication error, got {e:?}");
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.code(), Some(ErrorCode::InvalidApiKey));
}

// S4 -- a wrong key is the authentication error type (HTTP and the WebSocket handshake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_S4_wrong_key_is_authentication_error() {
    let srv = Server::start().await;
    let req = chat_req("Name three colours.", 4, 1);
    for c in [Client::new(&srv.url).api_key("wrong-key"), Client::new(&srv.url)] {
        assert_auth(within(30, c.chat(&req)).await.unwrap_err());
        assert_auth(within(30, c.chat_stream(&req)).await.unwrap_err());
        assert_auth(within(30, c.models()).await.unwrap_err());
        assert_auth(within(30, c.connect()).await.unwrap_err());
    }
    // the right key works
    assert!(!srv.client().models().await.unwrap().data.is_empty());
}

// S5 -- a tenant over its limit gets the rate-limit error with its retry delay. On a shared server
// another client may have spent the tenant's minute already: the first request may be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_S5_tenant_over_limit_is_rate_limit_error() {
    let srv = Server::start().await;
    let c = Client::new(&srv.url).api_key(LIMITED_KEY.as_str());
    let req = chat_req("Name three colours.", 2, 1);
    let mut err = None;
    for _ in 0..=LIMITED_RPM {
        match within(60, c.chat(&req)).await {
            Ok(_) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the tenant's requests_per_minute never refused");
    assert!(err.is_rate_limit(), "{err:?}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.code(), Some(ErrorCode::RateLimitExceeded));
    let ra = err.retry_after().expect("Retry-After");
    assert!(ra > Duration::ZERO && ra <= Duration::from_secs(60), "{ra:?}");

    // the same over realm.v1: an `error` message with retry_after_s; the connection lives
    let conn = c.connect().await.unwrap();
    let mut werr = None;
    for _ in 0..=LIMITED_RPM {
        match within(60, conn.chat(None, &req).unwrap().result()).await {
            Ok(_) => {}
            Err(e) => {
                werr = Some(e);
                break;
            }
        }
    }
    let werr = werr.expect("no rate-limit error over realm.v1");
    assert!(werr.is_rate_limit(), "{werr:?}");
    let ra = werr.retry_after().expect("retry_after_s");
    assert!(ra > Duration::ZERO && ra <= Duration::from_secs(60), "{ra:?}");
    assert_eq!(within(10, conn.ping(None)).await.unwrap(), None);
    assert!(!conn.is_closed());
}

// S6 -- a server killed mid-stream: a clean connection error, no hang. Always a server of its own
// (never the shared one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_S6_server_killed_mid_stream() {
    let mut srv = Server::start_own().await;
    let c = srv.client();
    let req = ChatCompletionRequest { max_tokens: Some(4000), ..long_req() };
    let mut sse = c.chat_stream(&req).await.unwrap();
    within(60, sse.next()).await.unwrap().unwrap();
    let conn = c.connect().await.unwrap();
    let mut ws: Vec<_> = (0..2).map(|_| conn.chat(None, &req).unwrap()).collect();
    for s in &mut ws {
        match within(60, s.next()).await {
            Some(Ok(ServerMessage::Created { .. })) => {}
            other => panic!("expected created, got {other:?}"),
        }
    }
    loop {
        if let ServerMessage::Delta(_) = within(60, ws[0].next()).await.unwrap().unwrap() {
            break;
        }
    }

    srv.kill();
    let t0 = Instant::now();
    let sse_err = within(10, async {
        while let Some(item) = sse.next().await {
            if let Err(e) = item {
                return e;
            }
        }
        panic!("the SSE stream ended without an error");
    })
    .await;
    assert!(matches!(sse_err, Error::Connection(_)), "{sse_err:?}");
    for s in ws {
        match within(10, s.result()).await {
            Err(Error::ConnectionClosed { code, .. }) => assert_eq!(code, 1006),
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
    }
    assert!(conn.is_closed());
    assert_eq!(conn.close_code(), Some(1006));
    assert!(matches!(conn.chat(None, &req), Err(Error::ConnectionClosed { code: 1006, .. })));
    assert!(matches!(conn.ping(None).await, Err(Error::ConnectionClosed { .. })));
    assert!(t0.elapsed() < Duration::from_secs(10));

    // new requests find no server: a connection error at once
    let t1 = Instant::now();
    let e = within(5, c.chat(&chat_req("hi", 2, 1))).await.unwrap_err();
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
    let e = within(5, c.connect()).await.unwrap_err();
    assert!(matches!(e, Error::Connection(_)), "{e:?}");
    let e = within(5, c.chat_stream(&chat_req("hi", 2, 1))).await.unwrap_err();
    assert!(e.is_connection(), "{e:?}");
    assert!(t1.elapsed() < Duration::from_secs(5));
}

// The README's example, run as written against a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs target/debug/realm-server: run via scripts/test-clients.sh"]
async fn test_example_chat_runs() {
    let srv = Server::start().await;
    // tests live in target/<profile>/deps/; `cargo test` builds examples into target/<profile>/examples/
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples").join("chat");
    assert!(example.is_file(), "example not built at {}", example.display());
    let out = tokio::process::Command::new(&example)
        .env("REALM_BASE_URL", &srv.url)
        .env("REALM_API_KEY", KEY.as_str())
        .output();
    let out = within(120, out).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.trim().is_empty());
}
