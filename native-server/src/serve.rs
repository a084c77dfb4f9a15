//! Start, serve, drain: the listener comes up first (`/health` answers 503 `loading`), the
//! model loads on a blocking thread, then requests are served. Connections are bounded
//! (`--max-connections`; more wait in the listen queue), a client must send its headers within
//! `--header-timeout` and its body within `--body-timeout` (a slowloris client holds a
//! connection slot for seconds, not forever). SIGTERM or SIGINT: answer new requests 503
//! `shutting_down` (`/health`: `draining`), let those in flight finish until `--drain-timeout`,
//! cancel the rest (each ends with its final event), close the listener and the connections,
//! exit 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use realm_protocol::Limits;
use realm_runtime::{
    BackendKind, DeviceOptions, Engine, EngineOptions, KvDtype, LookupConfig, Scheduler,
    SchedulerConfig,
};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::app::{App, ConnSlot, Phase, Ready, Settings};
use crate::auth::Auth;
use crate::config::{Args, ConfigError, ConfigFile, parse_size};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("cannot load the model {path}: {source}")]
    Load { path: PathBuf, source: realm_runtime::RuntimeError },
    #[error("{0}")]
    Other(String),
}

/// The model when none is given: the default model where scripts/setup.sh puts it.
pub fn default_model() -> PathBuf {
    let cache = std::env::var_os("REALM_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/realm")
    });
    cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The scheduler's limits from the flags.
fn scheduler_config(args: &Args, engine: &Engine) -> Result<SchedulerConfig, ConfigError> {
    let d = SchedulerConfig::default();
    let per_pos = engine.kv_bytes_per_token(KvDtype::F16).max(1);
    let kv_budget_bytes = match (&args.kv_mem, args.ctx_size) {
        (Some(s), _) => parse_size(s)?,
        (None, Some(c)) => (c.next_multiple_of(d.block_size) as u64) * per_pos,
        (None, None) => d.kv_budget_bytes,
    };
    if args.max_running == 0 || args.max_waiting == 0 {
        return Err(ConfigError::Invalid(
            "--max-running and --max-waiting must be at least 1".into(),
        ));
    }
    Ok(SchedulerConfig {
        kv_budget_bytes,
        max_running: args.max_running,
        max_waiting: args.max_waiting,
        max_batch_tokens: args.max_batch_tokens.max(args.max_running),
        // Never past the context the model was trained for (0: exactly that).
        max_seq_len: args.ctx_size.unwrap_or(0).min(engine.n_ctx_train()),
        lookup: (args.draft_max > 0).then(|| LookupConfig {
            draft_max: args.draft_max,
            measured: !args.draft_always,
            ..LookupConfig::default()
        }),
        ..d
    })
}

fn load(args: &Args, model: &PathBuf) -> Result<Ready, ServerError> {
    let backend = BackendKind::from_name(&args.backend).ok_or_else(|| {
        ServerError::Other(format!("unknown backend '{}' ({})", args.backend, BackendKind::NAMES))
    })?;
    let cpu_isa = args
        .cpu_isa
        .as_deref()
        .map(str::parse::<realm_runtime::CpuIsa>)
        .transpose()
        .map_err(|e| ServerError::Other(format!("--cpu-isa: {e}")))?;
    let opts = EngineOptions {
        device: DeviceOptions { backend, threads: args.threads, profile: false, cpu_isa },
    };
    let engine = Engine::load_path(model, opts)
        .map_err(|source| ServerError::Load { path: model.clone(), source })?;
    let config = scheduler_config(args, &engine)?;
    let info = engine.backend_info();
    let scheduler = Scheduler::start(engine, config)
        .map_err(|source| ServerError::Load { path: model.clone(), source })?;
    let stats = scheduler.stats();
    tracing::info!(
        backend = %info.name,
        kv_positions = stats.pool_positions,
        max_seq_len = stats.max_seq_len,
        max_running = config.max_running,
        "model loaded"
    );
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let mut names = args.alias.clone();
    names.push(stem);
    if let Some(f) = model.file_name() {
        names.push(f.to_string_lossy().into_owned());
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Ready { scheduler, names, created })
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Runs the server until a signal has drained it.
pub async fn run(args: Args) -> Result<(), ServerError> {
    let model = args.model.clone().unwrap_or_else(default_model);
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let auth = Auth::new(&file.tenants, &args.api_keys);
    let settings = Settings {
        limits: Limits { max_choices: args.max_choices.max(1), ..Limits::default() },
        max_body: args.max_body,
        body_timeout: Duration::from_secs(args.body_timeout.max(1)),
        log_content: args.log_content,
        ws_idle_timeout: Duration::from_secs(args.ws_idle_timeout.max(1)),
        ws_max_in_flight: args.ws_max_in_flight.max(1),
        metrics_key: args.metrics_key.as_deref().map(crate::auth::sha256),
        cors_origins: args.cors_origins.clone(),
    };
    let name = args.alias.first().cloned().unwrap_or_else(|| {
        model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    });
    let metrics = Metrics::new(&name, &args.backend)
        .map_err(|e| ServerError::Other(format!("metrics: {e}")))?;
    let app = Arc::new(App::new(settings, auth, metrics, args.max_connections));

    let addr = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind { addr: addr.clone(), source })?;
    let local: Option<SocketAddr> = listener.local_addr().ok();
    if app.auth.is_open() {
        tracing::warn!(
            "no API keys: the server is open to anyone who can reach {addr} (give --api-key or --config)"
        );
    }
    let loopback = local.is_some_and(|a| a.ip().is_loopback());
    if !loopback {
        tracing::warn!(%addr, "listening beyond loopback");
    }
    tracing::info!(addr = %local.map_or(addr.clone(), |a| a.to_string()), model = %model.display(), "listening; loading the model");

    let (stop_tx, stop_rx) = watch::channel(false);
    let conns = app.conn_slots.clone();
    let acceptor = tokio::spawn(accept(
        listener,
        app.clone(),
        stop_rx,
        conns.clone(),
        Duration::from_secs(args.header_timeout.max(1)),
    ));

    let load_args = args.clone();
    let loaded = tokio::select! {
        r = tokio::task::spawn_blocking(move || load(&load_args, &model)) => Some(r),
        () = shutdown_signal() => None,
    };
    match loaded {
        None => {
            let _ = stop_tx.send(true);
            return Ok(());
        }
        Some(Err(e)) => return Err(ServerError::Other(format!("the loader stopped: {e}"))),
        Some(Ok(Err(e))) => {
            let _ = stop_tx.send(true);
            return Err(e);
        }
        Some(Ok(Ok(ready))) => {
            let _ = app.ready.set(ready);
            app.set_phase(Phase::Ready);
            tracing::info!("ready");
        }
    }

    shutdown_signal().await;
    let t0 = Instant::now();
    tracing::info!(
        in_flight = app.in_flight.load(std::sync::atomic::Ordering::Acquire),
        "draining"
    );
    // New requests are answered 503 `shutting_down` (and /health `draining`) from now on: the
    // listener stays open so load balancers and clients see why.
    app.set_phase(Phase::Draining);
    let deadline = t0 + Duration::from_secs(args.drain_timeout);
    while app.in_flight.load(std::sync::atomic::Ordering::Acquire) > 0 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = app.in_flight.load(std::sync::atomic::Ordering::Acquire);
    if left > 0 {
        tracing::warn!(left, "drain timeout: cancelling the requests still running");
    }
    // Cancels whatever still runs (each ends with its final event) and stops the engine.
    let app2 = app.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(r) = app2.ready.get() {
            r.scheduler.shutdown();
        }
    })
    .await;
    // Then the listener closes and connections finish writing their last events (bounded).
    let _ = stop_tx.send(true);
    let all = u32::try_from(args.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), conns.acquire_many(all)).await;
    acceptor.abort();
    tracing::info!(seconds = t0.elapsed().as_secs_f64(), "stopped");
    Ok(())
}

/// Accepts connections until told to stop; then asks each to finish (HTTP/1: after its
/// response in flight).
async fn accept(
    listener: TcpListener,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
    conns: Arc<Semaphore>,
    header_timeout: Duration,
) {
    let router = crate::app::router(app.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = conns.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let slot = ConnSlot(Arc::new(std::sync::Mutex::new(Some(permit))));
        let (router, req_slot) = (router.clone(), slot.clone());
        let svc =
            tower::service_fn(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(req_slot.clone());
                tower::ServiceExt::oneshot(router.clone(), req)
            });
        let conn = http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .with_upgrades();
        let mut stop = stop.clone();
        let gauge = app.metrics.connections.with_label_values(&["http"]);
        tokio::spawn(async move {
            gauge.inc();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            gauge.dec();
            // The slot goes back unless an upgraded WebSocket took it over.
            drop(slot);
        });
    }
}
