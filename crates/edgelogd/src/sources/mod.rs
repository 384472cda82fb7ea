//! Sources: each reads one kind of input and feeds its [`Ingest`].
//!
//! Starting a source is two steps on purpose: [`start`] binds its socket or opens its file
//! right away, so an address in use or a missing permission fails the daemon's start (or a
//! reload) with the source's name and the reason; only then is its loop spawned. A running
//! source stops when its [`Stop`] fires: it stops reading, flushes what it decoded and ends,
//! which closes its sender; the router drains after the last sender is gone.

mod file;
mod http;
pub(crate) use http::set_budget as set_http_body_budget;
mod kmsg;
mod memlogd;
mod recv;
mod stdin;
mod tables;
mod tcp;
mod udp;
mod unix;

use std::path::PathBuf;
use std::sync::Arc;

use edgelog_codec::Framing;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{SourceConfig, SourceKind};
use crate::event::Burst;
use crate::ingest::Ingest;
use crate::stats::SourceStats;

/// The signal that tells a source to stop.
#[derive(Debug, Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A stop signal and the switch that fires it.
    pub(crate) fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Resolves once stopping was asked for (at once if it already was).
    pub(crate) async fn wait(&mut self) {
        // An error means the switch is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Makes `path` free for a new unix socket: creates its directory, removes a socket file a
/// dead process left behind, and refuses a path that is another file or a socket someone
/// still listens on.
pub(crate) fn claim_socket_path(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::{Context as _, bail};
    use std::os::unix::fs::FileTypeExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            let in_use = std::os::unix::net::UnixDatagram::unbound()?
                .connect(path)
                .is_ok()
                || std::os::unix::net::UnixStream::connect(path).is_ok();
            if in_use {
                bail!("{} is in use by another process", path.display());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))
        }
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

/// What every source gets besides its config.
#[derive(Debug, Clone)]
pub(crate) struct SourceContext {
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    pub tx: mpsc::Sender<Burst>,
}

/// A human-readable line of what a source listens on, for the startup summary.
pub(crate) fn describe(cfg: &SourceConfig) -> String {
    match &cfg.kind {
        SourceKind::UnixDatagram { path, mode, .. } => {
            format!("unix datagram {} (mode {mode:o})", path.display())
        }
        SourceKind::SyslogUdp { address, .. } => format!("udp {address}"),
        SourceKind::SyslogTcp {
            address, tls: None, ..
        } => format!("tcp {address}"),
        SourceKind::SyslogTcp {
            address,
            tls: Some(t),
            ..
        } => format!(
            "tls {address}{}",
            if t.client_ca.is_some() {
                " (client certificates required)"
            } else {
                ""
            }
        ),
        SourceKind::Kmsg { path } => format!("kernel log {}", path.display()),
        SourceKind::File { paths, .. } => format!("files {}", paths.join(", ")),
        SourceKind::Tables { .. } => "library tables in the run directory".to_owned(),
        SourceKind::Stdin => "standard input".to_owned(),
        SourceKind::GelfUdp { address, .. } => format!("GELF udp {address}"),
        SourceKind::GelfTcp { address, .. } => format!("GELF tcp {address}"),
        SourceKind::GelfHttp(h) => format!("GELF http://{}{}", h.address, h.path),
        SourceKind::Alertmanager(h) => {
            format!("Alertmanager webhook http://{}{}", h.address, h.path)
        }
        SourceKind::Memlogd {
            path, query_path, ..
        } => format!(
            "memlogd fds {}, queries {}",
            path.display(),
            query_path.display()
        ),
    }
}

/// Opens the source's input and spawns its loop.
pub(crate) async fn start(
    name: &str,
    cfg: &SourceConfig,
    cx: &SourceContext,
    stats: Arc<SourceStats>,
    stop: Stop,
) -> anyhow::Result<JoinHandle<()>> {
    // A file source names its records per file (`{file}` in `app_name`); kmsg records are
    // the kernel's.
    let app_name = match &cfg.kind {
        SourceKind::File { .. } => None,
        SourceKind::Kmsg { .. } => cfg.app_name.clone().or(Some("kernel".to_owned())),
        _ => cfg.app_name.clone(),
    };
    let ingest = Ingest::new(name, cfg.format, app_name, stats, cx.tx.clone())
        .with_max_message(cfg.max_frame);
    let what = describe(cfg);
    let task = match &cfg.kind {
        SourceKind::UnixDatagram {
            path,
            mode,
            receive_buffer,
        } => {
            let sock = unix::bind(path, *mode, *receive_buffer)?;
            tokio::spawn(unix::run(sock, path.clone(), cfg.max_frame, ingest, stop))
        }
        SourceKind::SyslogUdp {
            address,
            receive_buffer,
        } => {
            let sock = udp::bind(*address, *receive_buffer)?;
            tokio::spawn(udp::run(sock, cfg.max_frame, None, ingest, stop))
        }
        SourceKind::GelfUdp {
            address,
            receive_buffer,
        } => {
            let sock = udp::bind(*address, *receive_buffer)?;
            let gelf = Some(udp::Gelf::new());
            tokio::spawn(udp::run(sock, cfg.max_frame, gelf, ingest, stop))
        }
        SourceKind::GelfHttp(h) => {
            let listener = http::bind(h.address).await?;
            tokio::spawn(http::run(
                listener,
                h.clone(),
                http::Kind::Gelf,
                ingest,
                stop,
            ))
        }
        SourceKind::Alertmanager(h) => {
            let listener = http::bind(h.address).await?;
            let kind = http::Kind::Alertmanager;
            tokio::spawn(http::run(listener, h.clone(), kind, ingest, stop))
        }
        SourceKind::SyslogTcp {
            address,
            framing,
            max_connections,
            idle_timeout,
            tls,
        } => {
            let tls = match tls {
                Some(t) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
                    t,
                )?)),
                None => None,
            };
            let conn = tcp::Settings {
                framing: *framing,
                max_frame: cfg.max_frame,
                max_connections: *max_connections,
                idle_timeout: *idle_timeout,
                tls,
            };
            tokio::spawn(tcp::run(tcp::bind(*address).await?, conn, ingest, stop))
        }
        SourceKind::GelfTcp {
            address,
            max_connections,
            idle_timeout,
        } => {
            let conn = tcp::Settings {
                framing: Framing::Nul,
                max_frame: cfg.max_frame,
                max_connections: *max_connections,
                idle_timeout: *idle_timeout,
                tls: None,
            };
            tokio::spawn(tcp::run(tcp::bind(*address).await?, conn, ingest, stop))
        }
        SourceKind::Kmsg { path } => {
            let reader = kmsg::open(path)?;
            tokio::spawn(kmsg::run(reader, ingest, stop))
        }
        SourceKind::File {
            paths,
            start_at_beginning,
            poll_interval,
        } => {
            let watcher = file::Watcher::new(
                name,
                paths.clone(),
                *start_at_beginning,
                cfg.max_frame,
                cfg.app_name.clone(),
                &cx.state_dir,
            )?;
            tokio::spawn(file::run(watcher, *poll_interval, ingest, stop))
        }
        SourceKind::Tables { poll_interval } => {
            let follower = tables::Follower::new(name, &cx.run_dir, &cx.state_dir)?;
            tokio::spawn(tables::run(follower, *poll_interval, ingest, stop))
        }
        SourceKind::Stdin => tokio::spawn(stdin::run(cfg.max_frame, ingest, stop)),
        SourceKind::Memlogd {
            path,
            query_path,
            max_lines,
        } => {
            let sockets = memlogd::bind(path, query_path)?;
            let max_frame = cfg.max_frame;
            tokio::spawn(memlogd::run(sockets, *max_lines, max_frame, ingest, stop))
        }
    };
    tracing::debug!(source = name, "started: {what}");
    Ok(task)
}

/// Ends a polling source's round (files, tables): the round's positions travel with a ticket
/// and are saved once durable downstream, before the next round reads on (a `kill -9` then
/// re-reads at most one round); then the source waits for the next round — at once when it
/// was `busy`, a source with more to read.
async fn end_round(
    checkpoints: &mut crate::checkpoint::Checkpoints,
    ingest: &mut Ingest,
    interval: std::time::Duration,
    busy: bool,
    stop: &mut Stop,
) -> Round {
    if checkpoints.moved() {
        match ingest.flush_tracked().await {
            Ok(t) => checkpoints.track(t),
            Err(_) => return Round::Gone,
        }
    }
    let next = tokio::time::Instant::now() + interval;
    if let Err(e) = checkpoints.save_by(next).await {
        tracing::warn!(source = %ingest.name(), "saving checkpoints: {e}");
    }
    let wake = if busy {
        tokio::time::Instant::now()
    } else {
        next
    };
    tokio::select! {
        biased;
        _ = stop.wait() => Round::Stop,
        _ = tokio::time::sleep_until(wake) => Round::Next,
    }
}

/// What follows a polling source's round.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    Next,
    /// Stopped: settle the last positions, then end.
    Stop,
    /// The router is gone: end at once.
    Gone,
}

/// A stopping polling source's last positions, saved once what it read is durable downstream.
async fn settle_checkpoints(checkpoints: &mut crate::checkpoint::Checkpoints, ingest: &Ingest) {
    if let Err(e) = checkpoints.settle(std::time::Duration::from_secs(10)).await {
        tracing::warn!(source = %ingest.name(), "saving checkpoints: {e}");
    }
}
