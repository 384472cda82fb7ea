//! The control socket: a small HTTP/JSON API on a unix socket in the run directory, which the
//! `edgelog` CLI talks to (`status`, `reload`, `show log destinations`).
//!
//! ```text
//! GET  /v1/status     what runs: version, config, directories, uptime, sources, destinations
//! GET  /v1/counters   every source's and destination's counters (the shutdown summary's JSON)
//! POST /v1/reload     re-read the config (as SIGHUP); 200 with "ok", 400 with the errors
//! GET  /metrics       Prometheus text ([`metrics`](crate::metrics))
//! ```
//!
//! Access is the socket file's: mode 0660, so its owner and group may talk to the daemon and
//! nobody else can connect. Changing state (reload) goes through the same channel as SIGHUP,
//! so the daemon applies one change at a time.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::stats::Registry;

/// The socket's name in the run directory.
pub const SOCKET: &str = "control.sock";

/// A reload asked for over the socket, and where to send its outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Clone)]
struct Api {
    stats: Arc<Registry>,
    status: Arc<RwLock<Value>>,
    reload: mpsc::Sender<ReloadRequest>,
    started: edgelog_core::Timestamp,
    exporter: Arc<crate::metrics::Exporter>,
}

/// The running control socket.
#[derive(Debug)]
pub struct Control {
    path: PathBuf,
    /// The daemon's description, replaced after every start and reload.
    pub status: Arc<RwLock<Value>>,
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `<run_dir>/control.sock` (mode 0660) and serves it until the runtime ends.
pub fn start(
    run_dir: &Path,
    stats: Arc<Registry>,
    reload: mpsc::Sender<ReloadRequest>,
    started: edgelog_core::Timestamp,
) -> anyhow::Result<Control> {
    let path = run_dir.join(SOCKET);
    crate::sources::claim_socket_path(&path)?;
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting mode 0660 on {}", path.display()))?;
    let status = Arc::new(RwLock::new(Value::Null));
    let api = Api {
        stats,
        status: status.clone(),
        reload,
        started,
        exporter: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/status", get(get_status))
        .route("/v1/counters", get(get_counters))
        .route("/v1/reload", post(post_reload))
        .route("/metrics", get(get_metrics))
        .with_state(api);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("control socket: {e}");
        }
    });
    Ok(Control { path, status })
}

fn json(v: &Value) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        format!("{v}\n"),
    )
}

async fn get_status(State(api): State<Api>) -> impl axum::response::IntoResponse {
    let mut status = api.status.read().unwrap_or_else(|e| e.into_inner()).clone();
    let up = edgelog_core::Timestamp::now().unix_seconds() - api.started.unix_seconds();
    status["uptime_seconds"] = up.into();
    json(&status)
}

async fn get_counters(State(api): State<Api>) -> impl axum::response::IntoResponse {
    json(&api.stats.to_json())
}

async fn get_metrics(State(api): State<Api>) -> impl axum::response::IntoResponse {
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        api.exporter.render(&api.stats),
    )
}

async fn post_reload(State(api): State<Api>) -> (StatusCode, String) {
    let (tx, rx) = oneshot::channel();
    if api.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".into());
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n".into()),
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".into()),
    }
}
