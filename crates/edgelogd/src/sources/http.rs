//! HTTP receivers: `gelf_http` (Graylog's `POST /gelf`) and `alertmanager` (Prometheus
//! Alertmanager's webhook).
//!
//! A request is accepted (`202`) only after its records were handed to the router, so a
//! sender that gets 202 can forget them, and a daemon that is behind slows its senders down
//! instead of buffering without bound. A request is all or nothing: a body with one bad
//! message is refused with `400` and the reason (which line, what is wrong), and nothing of it
//! is taken — the sender knows, and its retry will not duplicate the good part. `401` for a
//! missing or wrong bearer token, `413` for a body over `max_body` (compressed or not),
//! `405`/`404` for the wrong method or path. Refused requests are counted as `rejected`.
//!
//! **Bounded.** At most `max_connections` connections. At the limit a new connection takes the
//! place of the oldest one that is idle (no request being handled: waiting for headers, or
//! kept alive between requests), which is closed; when every connection is busy with a request
//! the new one is closed instead — either way counted as `connection_limit`. So idle
//! connections, however many, never lock a legitimate client out. A client has
//! `header_timeout` to send a request's headers (an idle keep-alive connection too), and
//! `body_timeout` for its body, which must also arrive at `min_body_rate` on average once it
//! has had [`MIN_RATE_GRACE`] (`408` otherwise). Bodies in flight share one budget for the
//! whole daemon (`http_body_budget`, 64 MiB): a request that would exceed it is answered `503`
//! with `Retry-After`, counted as `busy`, before its body is read — so a hundred slow 10 MB
//! bodies cost the budget, not a gigabyte.
//!
//! GELF bodies may be gzip or zlib (detected by their magic, whatever `Content-Encoding`
//! says) and hold one message or newline-delimited messages (bulk). Alertmanager's version 4
//! payload becomes one record per alert: severity from the `severity` label, the alert name
//! as MSGID, `[FIRING]`/`[RESOLVED]` and the summary as the message, labels and annotations
//! as `label_*` and `annotation_*` fields.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use axum::{Extension, Router};
use edgelog_codec::gelf::{self, compress};
use edgelog_codec::{Format, Message, Mode, Pri};
use edgelog_core::{Facility, Level, Timestamp, Value};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use super::tcp::listen;
use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

pub(crate) const GELF: SourceType = SourceType {
    name: "gelf_http",
    format: edgelog_codec::FormatHint::Gelf,
    read: |d, s, _| read(d, s, Kind::Gelf),
};

pub(crate) const ALERTMANAGER: SourceType = SourceType {
    name: "alertmanager",
    format: edgelog_codec::FormatHint::Auto,
    read: |d, s, _| read(d, s, Kind::Alertmanager),
};

/// An HTTP receiver: what it accepts, where it listens, and its limits.
#[derive(Debug, Clone, PartialEq)]
struct HttpConfig {
    kind: Kind,
    address: SocketAddr,
    path: String,
    /// The largest body accepted (after decompression, for GELF); larger ones get 413.
    max_body: usize,
    /// When set, requests must carry `Authorization: Bearer <token>`.
    token: Option<String>,
    /// Connections open at once; beyond it the oldest idle one is closed, or, all busy, the
    /// new one is refused (counted `connection_limit`).
    max_connections: usize,
    /// How long a client may take to send a request's headers (and, idle, the next ones).
    header_timeout: Duration,
    /// How long a client may take to send a body.
    body_timeout: Duration,
    /// The slowest a body may arrive, in bytes per second on average, once it has had 5 s:
    /// a trickle would hold the budget.
    min_body_rate: u64,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    kind: Kind,
) -> Option<Arc<dyn SourceSpec>> {
    let address = s.required(d, "address", reader::address);
    let path = s
        .value(d, "path", |v| {
            let p = reader::string(v)?;
            if p.starts_with('/') {
                Ok(p)
            } else {
                Err(format!("invalid path {p:?}: must start with '/'"))
            }
        })
        .unwrap_or_else(|| {
            match kind {
                Kind::Gelf => "/gelf",
                Kind::Alertmanager => "/",
            }
            .to_owned()
        });
    let max_body = s
        .value(d, "max_body", reader::positive_size)
        .map_or(10 << 20, |n| n.clamp(1024, 1 << 30) as usize);
    let token = s.value(d, "token", reader::string);
    let max_connections = super::tcp::max_connections(d, s);
    let mut timeout = |key, default| {
        s.value(d, key, reader::positive_duration)
            .unwrap_or(Duration::from_secs(default))
    };
    let header_timeout = timeout("header_timeout", 10);
    let body_timeout = timeout("body_timeout", 30);
    let min_body_rate = s
        .value(d, "min_body_rate", reader::positive_size)
        .unwrap_or(1024);
    Some(Arc::new(HttpConfig {
        kind,
        address: address?,
        path,
        max_body,
        token,
        max_connections,
        header_timeout,
        body_timeout,
        min_body_rate,
    }))
}

impl SourceSpec for HttpConfig {
    fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Gelf => GELF.name,
            Kind::Alertmanager => ALERTMANAGER.name,
        }
    }

    fn endpoints(&self) -> Vec<String> {
        vec![format!("tcp {}", self.address)]
    }

    fn describe(&self) -> String {
        let what = match self.kind {
            Kind::Gelf => "GELF",
            Kind::Alertmanager => "Alertmanager webhook",
        };
        format!("{what} http://{}{}", self.address, self.path)
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let listener = listen(&cx, self.address)?;
        Ok(tokio::spawn(run(
            listener,
            self.clone(),
            cx.ingest,
            cx.stop,
        )))
    }
}

/// What the receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gelf,
    Alertmanager,
}

#[derive(Debug, Clone)]
struct Receiver {
    cfg: Arc<HttpConfig>,
    ingest: Arc<Mutex<Ingest>>,
}

type Reply = (StatusCode, String);

/// How long a body may take before `min_body_rate` applies to it.
const MIN_RATE_GRACE: Duration = Duration::from_secs(5);

static BUDGET: std::sync::OnceLock<Semaphore> = std::sync::OnceLock::new();

/// Sets the bytes of request bodies all HTTP sources of the daemon may hold at once; the
/// first setting holds for the life of the process.
pub(crate) fn set_budget(bytes: usize) {
    let _ = BUDGET.set(Semaphore::new(bytes >> 10));
}

/// The budget in KiB permits (a semaphore counts in `u32`-sized chunks comfortably).
fn budget() -> &'static Semaphore {
    BUDGET.get_or_init(|| Semaphore::new(crate::config::DEFAULT_HTTP_BODY_BUDGET >> 10))
}

/// Whether a connection is busy with a request (handled now), or idle and so the first to go
/// when the connections are at their limit.
#[derive(Debug, Clone, Default)]
struct Busy(Arc<AtomicBool>);

/// Marks the connection busy for as long as it lives.
struct Handling(Busy);

impl Handling {
    fn new(b: &Busy) -> Handling {
        b.0.store(true, Relaxed);
        Handling(b.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        (self.0).0.store(false, Relaxed);
    }
}

/// The open connections, oldest first: whether each is busy, and how to close it.
#[derive(Debug, Default)]
struct Open(std::collections::VecDeque<(tokio::task::Id, Busy, tokio::task::AbortHandle)>);

impl Open {
    /// Makes room for one more under `max`: closes the oldest idle connection. False if every
    /// connection is busy.
    fn make_room(&mut self, max: usize) -> bool {
        if self.0.len() < max {
            return true;
        }
        match self.0.iter().position(|(_, b, _)| !b.0.load(Relaxed)) {
            Some(i) => {
                if let Some((_, _, abort)) = self.0.remove(i) {
                    abort.abort();
                }
                true
            }
            None => false,
        }
    }

    fn ended(&mut self, id: tokio::task::Id) {
        self.0.retain(|(i, _, _)| *i != id);
    }
}

async fn run(listener: TcpListener, cfg: HttpConfig, ingest: Ingest, mut stop: Stop) {
    let (max_connections, cfg_header_timeout) = (cfg.max_connections, cfg.header_timeout);
    let ingest = Arc::new(Mutex::new(ingest));
    let app = Router::new()
        .route(&cfg.path, post(receive).fallback(wrong_method))
        .fallback(wrong_path)
        .with_state(Receiver {
            cfg: Arc::new(cfg),
            ingest: ingest.clone(),
        });
    // hyper is driven directly rather than through `axum::serve` for one setting: half-close.
    // Fire-and-forget clients (graypy) send a request and close their side at once; without
    // half-close support hyper would drop such a request unanswered and unread.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.half_close(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(cfg_header_timeout);
    let mut conns = JoinSet::new();
    let mut open = Open::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.wait() => break,
            Some(done) = conns.join_next_with_id(), if !conns.is_empty() => {
                match done {
                    Ok((id, ())) => open.ended(id),
                    Err(e) => open.ended(e.id()),
                }
                continue;
            }
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accepting: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if open.0.len() >= max_connections {
            ingest
                .lock()
                .await
                .stats()
                .add_drop(SourceDrop::ConnectionLimit, 1);
            if !open.make_room(max_connections) {
                drop(stream);
                continue;
            }
        }
        let busy = Busy::default();
        let service = TowerToHyperService::new(
            app.clone()
                .layer(Extension(peer))
                .layer(Extension(busy.clone())),
        );
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop.clone();
        let abort = conns.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.wait() => {
                    // Finish the request in progress, then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
                }
            }
        });
        open.0.push_back((abort.id(), busy, abort));
    }
    while conns.join_next().await.is_some() {}
    let _ = ingest.lock().await.flush().await;
}

async fn receive(
    State(r): State<Receiver>,
    Extension(peer): Extension<SocketAddr>,
    Extension(busy): Extension<Busy>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let _handling = Handling::new(&busy);
    // The body's share of the budget, before any of it is read: what it says it is, else
    // as much as a body may be.
    let claimed = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(r.cfg.max_body)
        .clamp(1, r.cfg.max_body);
    let Ok(_share) = budget().try_acquire_many(claimed.div_ceil(1024) as u32) else {
        r.ingest.lock().await.stats().add_drop(SourceDrop::Busy, 1);
        let why = "busy: too many request bodies in flight, retry later\n";
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            why,
        )
            .into_response();
    };
    let reply = accept(&r, peer, &headers, body).await;
    if reply.0 != StatusCode::ACCEPTED {
        r.ingest
            .lock()
            .await
            .stats()
            .add_drop(SourceDrop::Rejected, 1);
        tracing::debug!(%peer, "refused with {}: {}", reply.0, reply.1);
    }
    reply.into_response()
}

/// A request to another path: refused, and counted like every refusal.
async fn wrong_path(State(r): State<Receiver>) -> Reply {
    r.ingest
        .lock()
        .await
        .stats()
        .add_drop(SourceDrop::Rejected, 1);
    let path = &r.cfg.path;
    (StatusCode::NOT_FOUND, format!("not here: POST to {path}\n"))
}

/// Another method than POST on the path: refused, and counted.
async fn wrong_method(State(r): State<Receiver>) -> Reply {
    r.ingest
        .lock()
        .await
        .stats()
        .add_drop(SourceDrop::Rejected, 1);
    (StatusCode::METHOD_NOT_ALLOWED, "only POST\n".into())
}

async fn accept(r: &Receiver, peer: SocketAddr, headers: &HeaderMap, body: Body) -> Reply {
    if let Some(token) = &r.cfg.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token\n".into(),
            );
        }
    }
    let body = match read_body(body, &r.cfg).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes\n", r.cfg.max_body),
            );
        }
        Err(BodyError::Late) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {:?}\n", r.cfg.body_timeout),
            );
        }
        Err(BodyError::Slow) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body arrived slower than {} bytes a second\n",
                    r.cfg.min_body_rate
                ),
            );
        }
        Err(BodyError::Broken) => {
            return (StatusCode::BAD_REQUEST, "the body was cut short\n".into());
        }
    };
    // A body received whole is taken whole, even if the client hangs up before the reply
    // (fire-and-forget clients such as graypy do): the work runs in its own task, which a
    // dropped request does not cancel.
    let host = peer.ip().to_string();
    let r = r.clone();
    let work = tokio::spawn(async move {
        match r.cfg.kind {
            Kind::Gelf => gelf_body(&r, &body, &host).await,
            Kind::Alertmanager => alertmanager_body(&r, &body).await,
        }
    });
    work.await.unwrap_or_else(|_| shutting_down())
}

async fn gelf_body(r: &Receiver, body: &[u8], host: &str) -> Reply {
    let payload = match compress::decompress(body, r.cfg.max_body) {
        Ok(p) => p,
        Err(kind) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot decompress the body: {kind}\n"),
            );
        }
    };
    // One message (possibly pretty-printed), or one per line.
    let messages: Vec<&[u8]> = if gelf::parse(&payload, Mode::Strict).error.is_none() {
        vec![&payload[..]]
    } else {
        let mut lines = Vec::new();
        for (i, line) in payload.split(|&b| b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            if lines.len() == MAX_RECORDS {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("more than {MAX_RECORDS} messages in one request: nothing was taken\n"),
                );
            }
            if let Some(e) = gelf::parse(line, Mode::Strict).error {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("message on line {}: {e}\n", i + 1),
                );
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                "no GELF message in the body\n".into(),
            );
        }
        lines
    };
    let mut ingest = r.ingest.lock().await;
    for m in &messages {
        ingest.bytes(m, false, Some(host));
        if ingest.is_full() && ingest.flush().await.is_err() {
            return shutting_down();
        }
    }
    match ingest.flush().await {
        Ok(()) => (StatusCode::ACCEPTED, String::new()),
        Err(_) => shutting_down(),
    }
}

/// Why a body was not read whole.
enum BodyError {
    TooLarge,
    /// Not whole within `body_timeout`.
    Late,
    /// Slower than `min_body_rate` once past [`MIN_RATE_GRACE`].
    Slow,
    /// The connection failed mid-body.
    Broken,
}

/// Reads a request body of at most `max_body` bytes, within `body_timeout` and at
/// `min_body_rate`.
async fn read_body(mut body: Body, cfg: &HttpConfig) -> Result<bytes::Bytes, BodyError> {
    use http_body_util::BodyExt as _;
    let started = Instant::now();
    let deadline = started + cfg.body_timeout;
    let mut buf = bytes::BytesMut::new();
    loop {
        // If nothing more arrived, when the average would fall below the rate.
        let owed = Duration::from_secs_f64(buf.len() as f64 / cfg.min_body_rate.max(1) as f64);
        let slow_at = started + MIN_RATE_GRACE.max(owed);
        let frame = tokio::time::timeout_at(deadline.min(slow_at).into(), body.frame()).await;
        match frame {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > cfg.max_body {
                        return Err(BodyError::TooLarge);
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(None) => return Ok(buf.freeze()),
            Err(_) if Instant::now() >= deadline => return Err(BodyError::Late),
            Err(_) => return Err(BodyError::Slow),
        }
    }
}

fn shutting_down() -> Reply {
    (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
}

/// One Alertmanager alert as a message.
fn alert_message(alert: &Json, receiver: Option<&str>) -> Message<'static> {
    let text = |v: &Json| v.as_str().map(str::to_owned);
    let labels = alert["labels"].as_object();
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Json::as_str);
    let resolved = alert["status"] == "resolved";
    let name = label("alertname").unwrap_or("alert");
    let severity = label("severity")
        .and_then(|s| s.parse::<Level>().ok())
        .unwrap_or(Level::Warning);
    let mut m = Message::new(Format::Raw);
    m.pri = Some(Pri {
        facility: Facility::Daemon,
        severity,
    });
    let at = if resolved { "endsAt" } else { "startsAt" };
    m.timestamp = alert[at]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .and_then(Timestamp::from_jiff);
    m.app_name = Some("alertmanager".into());
    m.msg_id = Some(name.chars().take(32).collect::<String>().into());
    let about = alert["annotations"]["summary"]
        .as_str()
        .or(alert["annotations"]["description"].as_str())
        .unwrap_or("");
    let status = if resolved { "RESOLVED" } else { "FIRING" };
    m.message = Some(format!("[{status}] {name}: {about}").into());
    let mut field = |k: String, v: String| m.fields.push((k.into(), Value::from(v)));
    field(
        "status".into(),
        if resolved { "resolved" } else { "firing" }.into(),
    );
    for (k, key) in [
        ("fingerprint", "fingerprint"),
        ("generatorURL", "generator_url"),
    ] {
        if let Some(v) = text(&alert[k]) {
            field(key.into(), v);
        }
    }
    if let Some(r) = receiver {
        field("receiver".into(), r.to_owned());
    }
    for (prefix, key) in [("label_", "labels"), ("annotation_", "annotations")] {
        if let Some(map) = alert[key].as_object() {
            for (k, v) in map {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                field(format!("{prefix}{k}"), v);
            }
        }
    }
    m
}

/// The most records one request may carry: alerts of an Alertmanager request (it sends a
/// group's alerts, rarely more than a few hundred), messages of a GELF bulk body. More is
/// refused whole (`413`), so a body cannot become millions of records.
const MAX_RECORDS: usize = 10_000;

async fn alertmanager_body(r: &Receiver, body: &[u8]) -> Reply {
    let payload: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}\n")),
    };
    if payload["version"] != "4" {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "unsupported payload version {}: expected \"4\"\n",
                payload["version"]
            ),
        );
    }
    let Some(alerts) = payload["alerts"].as_array() else {
        return (StatusCode::BAD_REQUEST, "no \"alerts\" array\n".into());
    };
    // All or nothing: a request is taken whole or refused whole, before anything of it is.
    if let Some(i) = alerts.iter().position(|a| !a["labels"].is_object()) {
        return (
            StatusCode::BAD_REQUEST,
            format!("alert {i} is not an alert (an object with \"labels\"): nothing was taken\n"),
        );
    }
    if alerts.len() > MAX_RECORDS {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} alerts in one request, at most {MAX_RECORDS}: nothing was taken\n",
                alerts.len()
            ),
        );
    }
    let receiver = payload["receiver"].as_str();
    let mut ingest = r.ingest.lock().await;
    let stats = ingest.stats_handle();
    stats
        .bytes
        .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    for alert in alerts {
        stats
            .received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ingest.push_message(alert_message(alert, receiver), Timestamp::now());
        if ingest.is_full() && ingest.flush().await.is_err() {
            return shutting_down();
        }
    }
    match ingest.flush().await {
        Ok(()) => (StatusCode::ACCEPTED, String::new()),
        Err(_) => shutting_down(),
    }
}
