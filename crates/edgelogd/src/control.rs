//! The control socket: a small HTTP/JSON API on a unix socket in the run directory, which the
//! `edgelog` CLI talks to (`status`, `reload`, `show log destinations`).
//!
//! ```text
//! GET  /v1/status     what runs: version, config, directories, uptime, sources, destinations
//! GET  /v1/counters   every source's and destination's counters (the shutdown summary's JSON)
//! POST /v1/reload     re-read the config (as SIGHUP); 200 with "ok", 400 with the errors
//! GET  /metrics       Prometheus text ([`metrics`](crate::metrics))
//! GET  /v1/follow     records as they pass, JSON lines; ?level=&app=&module=&source=&grep=
//! GET  /v1/tables     the tables in the run directory
//! POST /v1/levels     ?level=&bd=&module=&group=[&plugin_alias=]: as `edgelog set log level`
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
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::event::Batch;

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
    /// When the daemon started, on the monotonic clock: uptime survives clock steps.
    started: std::time::Instant,
    exporter: Arc<crate::metrics::Exporter>,
    feed: broadcast::Sender<Arc<Batch>>,
    run_dir: PathBuf,
    state_dir: PathBuf,
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
    cfg: &crate::config::ControlConfig,
    run_dir: &Path,
    state_dir: &Path,
    stats: Arc<Registry>,
    reload: mpsc::Sender<ReloadRequest>,
    started: std::time::Instant,
    feed: broadcast::Sender<Arc<Batch>>,
) -> anyhow::Result<Control> {
    let path = run_dir.join(SOCKET);
    crate::sources::claim_socket_path(&path)?;
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting mode 0660 on {}", path.display()))?;
    if let Some(name) = &cfg.group {
        let group = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .with_context(|| format!("control group {name:?} does not exist"))?;
        nix::unistd::chown(&path, None, Some(group.gid))
            .with_context(|| format!("giving {} to group {name}", path.display()))?;
    }
    let status = Arc::new(RwLock::new(Value::Null));
    let api = Api {
        stats,
        status: status.clone(),
        reload,
        started,
        exporter: Arc::default(),
        feed,
        run_dir: run_dir.to_owned(),
        state_dir: state_dir.to_owned(),
    };
    let app = Router::new()
        .route("/v1/status", get(get_status))
        .route("/v1/counters", get(get_counters))
        .route("/v1/reload", post(post_reload))
        .route("/metrics", get(get_metrics))
        .route("/v1/follow", get(get_follow))
        .route("/v1/tables", get(get_tables))
        .route("/v1/levels", post(post_level));
    if let Some(addr) = cfg.metrics_address {
        let metrics = Router::new()
            .route("/metrics", get(get_metrics))
            .with_state(api.clone());
        let tcp = std::net::TcpListener::bind(addr)
            .with_context(|| format!("serving metrics on {addr}"))?;
        tcp.set_nonblocking(true)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(tcp, metrics).await {
                tracing::error!("metrics on {addr}: {e}");
            }
        });
    }
    let app = app.with_state(api);
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
    let up = api.started.elapsed().as_secs();
    status["uptime_seconds"] = up.into();
    status["degraded"] = api.stats.degraded().into();
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

/// `GET /v1/follow?level=L&app=A&module=M&source=S&grep=TEXT`: every record passing the
/// router from now on, as JSON lines (the `json` output format), filtered.
#[derive(Debug, Default)]
struct Follow {
    level: Option<edgelog_core::Level>,
    app: Option<String>,
    module: Option<String>,
    source: Option<String>,
    grep: Option<String>,
}

/// `%XX` and `+` decoding of one query value.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a query string, values decoded.
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k, unescape(v))
        })
}

impl Follow {
    fn parse(query: Option<&str>) -> Result<Follow, String> {
        let mut f = Follow::default();
        for (k, v) in query_pairs(query) {
            match k {
                "level" => f.level = Some(v.parse().map_err(|e| format!("level: {e}"))?),
                "app" | "bd" => f.app = Some(v),
                "module" => f.module = Some(v),
                "source" => f.source = Some(v),
                "grep" => f.grep = Some(v),
                _ => {
                    return Err(format!(
                        "unknown filter {k:?}: expected level, app, module, source or grep"
                    ));
                }
            }
        }
        Ok(f)
    }

    fn wants(&self, e: &crate::event::Event) -> bool {
        self.level
            .is_none_or(|l| edgelog_core::LevelFilter::from(l).enabled(e.level()))
            && self.app.as_deref().is_none_or(|a| e.app() == Some(a))
            && self
                .module
                .as_deref()
                .is_none_or(|m| e.text_field("module") == Some(m))
            && self.source.as_deref().is_none_or(|s| *e.source == *s)
            && self
                .grep
                .as_deref()
                .is_none_or(|g| e.msg().message.as_deref().is_some_and(|m| m.contains(g)))
    }
}

async fn get_follow(State(api): State<Api>, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let filter = match Follow::parse(uri.query()) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let rx = api.feed.subscribe();
    let stream = futures_util::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            match rx.recv().await {
                Ok(batch) => {
                    let mut out = Vec::new();
                    for e in batch.events.iter().filter(|e| filter.wants(e)) {
                        crate::output::encode(
                            &mut out,
                            crate::output::OutputFormat::Json,
                            e,
                            &batch.device,
                        );
                        out.push(b'\n');
                    }
                    if !out.is_empty() {
                        return Some((Ok::<_, std::convert::Infallible>(out), (rx, filter)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let line = format!("{{\"lagged\":{n}}}\n").into_bytes();
                    return Some((Ok(line), (rx, filter)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    (
        [("content-type", "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// `GET /v1/tables`: the tables in the run directory, library and daemon alike.
async fn get_tables(State(api): State<Api>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let found = match edgelog_core::table::find_tables(&api.run_dir) {
        Ok(f) => f,
        Err(e) => {
            let why = format!("{}: {e}\n", api.run_dir.display());
            return (StatusCode::INTERNAL_SERVER_ERROR, why).into_response();
        }
    };
    let tables: Vec<Value> = found
        .iter()
        .filter_map(|t| {
            let r = edgelog_core::table::TableReader::open(&t.path).ok()?;
            let c = r.counters();
            let info = r.info();
            Some(serde_json::json!({
                "table": t.name, "bd": t.bd, "module": info.module,
                "entries": r.entries(), "capacity": info.capacity, "lanes": info.lanes,
                "lost": c.lost_busy + c.lost_lapped, "no_space": c.no_space,
            }))
        })
        .collect();
    json(&Value::from(tables)).into_response()
}

/// `POST /v1/levels?level=L[&bd=B][&module=M][&group=G][&plugin_alias=NAME]`: the same change
/// as `edgelog set log level` — a library level in the control block, or a plugin alias's
/// export level (then applied by a reload).
async fn post_level(State(api): State<Api>, uri: axum::http::Uri) -> (StatusCode, String) {
    let mut level = None;
    let mut alias = None;
    let mut scope = edgelog_core::control::Scope::default();
    for (k, v) in query_pairs(uri.query()) {
        match k {
            "level" => match v.parse::<edgelog_core::LevelFilter>() {
                Ok(l) => level = Some(l),
                Err(e) => return (StatusCode::BAD_REQUEST, format!("level: {e}\n")),
            },
            "bd" => scope.bd = Some(v),
            "module" => scope.module = Some(v),
            "group" => scope.group = Some(v),
            "plugin_alias" => alias = Some(v),
            _ => {
                let why = format!(
                    "unknown key {k:?}: expected level, bd, module, group or plugin_alias\n"
                );
                return (StatusCode::BAD_REQUEST, why);
            }
        }
    }
    let Some(level) = level else {
        return (StatusCode::BAD_REQUEST, "missing level\n".into());
    };
    if let Err(e) = scope.validate() {
        return (StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    if let Some(a) = &alias {
        // The same checks as the CLI's, and the alias must name a destination.
        if let Err(e) = edgelog_core::control::check_plugin_rule(a, &scope) {
            return (StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
        let status = api.status.read().unwrap_or_else(|e| e.into_inner());
        let names: Vec<&str> = status["destinations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str())
            .collect();
        if !names.contains(&a.as_str()) {
            let why = format!(
                "no destination is named {a:?} (the plugin aliases are: {})\n",
                names.join(", ")
            );
            return (StatusCode::BAD_REQUEST, why);
        }
    }
    let changed = match &alias {
        Some(a) => edgelog_core::control::set_plugin_level(&api.state_dir, a, &scope, Some(level)),
        None => edgelog_core::control::Control::open(&api.run_dir, Some(&api.state_dir))
            .and_then(|c| c.set(scope.clone(), level)),
    };
    if let Err(e) = changed {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"));
    }
    if alias.is_some() {
        return post_reload(State(api)).await;
    }
    (
        StatusCode::OK,
        format!("log level of {scope} set to {level}\n"),
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
