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
//! **Bounded.** At most `max_connections` connections (more are closed at once, counted as
//! `connection_limit`); a client has `header_timeout` to send a request's headers (an idle
//! keep-alive connection too) and `body_timeout` for its body (`408`). Bodies in flight share
//! one budget for the whole daemon ([`BODY_BUDGET`]): a request that would exceed it is
//! answered `503` with `Retry-After`, counted as `busy`, before its body is read — so a
//! hundred slow 10 MB bodies cost the budget, not a gigabyte.
//!
//! GELF bodies may be gzip or zlib (detected by their magic, whatever `Content-Encoding`
//! says) and hold one message or newline-delimited messages (bulk). Alertmanager's version 4
//! payload becomes one record per alert: severity from the `severity` label, the alert name
//! as MSGID, `[FIRING]`/`[RESOLVED]` and the summary as the message, labels and annotations
//! as `label_*` and `annotation_*` fields.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
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

use super::Stop;
pub(super) use super::tcp::bind;
use crate::config::HttpConfig;
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

/// What the receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gelf,
    Alertmanager,
}

#[derive(Debug, Clone)]
struct Receiver {
    kind: Kind,
    cfg: Arc<HttpConfig>,
    ingest: Arc<Mutex<Ingest>>,
}

type Reply = (StatusCode, String);

/// The bytes of request bodies all HTTP sources of the daemon may hold at once.
pub(crate) const BODY_BUDGET: usize = 64 << 20;

/// [`BODY_BUDGET`] in KiB permits (a semaphore counts in `u32`-sized chunks comfortably).
fn budget() -> &'static Semaphore {
    static BUDGET: Semaphore = Semaphore::const_new(BODY_BUDGET >> 10);
    &BUDGET
}

pub(super) async fn run(
    listener: TcpListener,
    cfg: HttpConfig,
    kind: Kind,
    ingest: Ingest,
    mut stop: Stop,
) {
    let (max_connections, cfg_header_timeout) = (cfg.max_connections, cfg.header_timeout);
    let ingest = Arc::new(Mutex::new(ingest));
    let app = Router::new()
        .route(&cfg.path, post(receive).fallback(wrong_method))
        .fallback(wrong_path)
        .with_state(Receiver {
            kind,
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
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.wait() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
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
        if conns.len() >= max_connections {
            ingest
                .lock()
                .await
                .stats()
                .add_drop(SourceDrop::ConnectionLimit, 1);
            drop(stream);
            continue;
        }
        let service = TowerToHyperService::new(app.clone().layer(Extension(peer)));
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop.clone();
        conns.spawn(async move {
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
    }
    while conns.join_next().await.is_some() {}
    let _ = ingest.lock().await.flush().await;
}

async fn receive(
    State(r): State<Receiver>,
    Extension(peer): Extension<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
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
    let body = match tokio::time::timeout(r.cfg.body_timeout, to_bytes(body, r.cfg.max_body)).await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes\n", r.cfg.max_body),
            );
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {:?}\n", r.cfg.body_timeout),
            );
        }
    };
    // A body received whole is taken whole, even if the client hangs up before the reply
    // (fire-and-forget clients such as graypy do): the work runs in its own task, which a
    // dropped request does not cancel.
    let host = peer.ip().to_string();
    let r = r.clone();
    let work = tokio::spawn(async move {
        match r.kind {
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

/// The most alerts one Alertmanager request may carry (it sends a group's alerts, rarely more
/// than a few hundred); more is refused whole, so a body cannot become millions of records.
const MAX_ALERTS: usize = 10_000;

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
    if alerts.len() > MAX_ALERTS {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} alerts in one request, at most {MAX_ALERTS}: nothing was taken\n",
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
