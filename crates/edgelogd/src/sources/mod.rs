//! Sources: each reads one kind of input and feeds its [`Ingest`].
//!
//! Each module is one or more source types, in the shape [`component`](crate::component)
//! describes; [`TYPES`] lists them for the registry. Starting a source is two steps on
//! purpose: [`start`] binds its socket or opens its file right away, so an address in use or a
//! missing permission fails the daemon's start (or a reload) with the source's name and the
//! reason; only then is its loop spawned. A running source stops when its [`Stop`] fires: it
//! stops reading, flushes what it decoded and ends, which closes its sender; the router drains
//! after the last sender is gone.

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

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::component::{SourceStart, SourceType, Stop};
use crate::config::SourceConfig;
use crate::config::reader::{self, Diagnostics, Section};
use crate::event::Burst;
use crate::ingest::Ingest;
use crate::stats::SourceStats;

/// Every source type, in the order `--help` and errors list them.
pub(crate) const TYPES: &[SourceType] = &[
    unix::TYPE,
    udp::SYSLOG,
    tcp::SYSLOG,
    kmsg::TYPE,
    file::TYPE,
    tables::TYPE,
    stdin::TYPE,
    udp::GELF,
    tcp::GELF,
    http::GELF,
    http::ALERTMANAGER,
    memlogd::TYPE,
];

/// Source types planned but not in this build: refused with that reason, not as unknown.
pub(crate) const LATER: &[&str] = &["relp"];

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

/// A datagram source's `receive_buffer` when none is given.
const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

/// `receive_buffer` of a datagram source: 4 MiB by default, at most 1 GiB.
fn receive_buffer(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> usize {
    s.value(d, "receive_buffer", reader::size)
        .map_or(DEFAULT_RECEIVE_BUFFER, |n| n.min(1 << 30) as usize)
}

/// What every source gets besides its config.
#[derive(Debug, Clone)]
pub(crate) struct SourceContext {
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    pub tx: mpsc::Sender<Burst>,
    /// The box's hostname, for records that name no host.
    pub local_host: tokio::sync::watch::Receiver<Option<Arc<str>>>,
    /// The sockets systemd passed.
    pub activated: Arc<crate::systemd::Activated>,
}

/// A source for a socket systemd passed that no configured source took: the syslog source of
/// its kind, with every default.
pub(crate) fn for_endpoint(e: &crate::systemd::Endpoint) -> Option<SourceConfig> {
    use crate::systemd::Endpoint;
    let spec = match e {
        Endpoint::UnixDatagram(path) => unix::at(path),
        Endpoint::Udp(address) => udp::at(*address),
        Endpoint::Tcp(address) => tcp::at(*address),
        Endpoint::Other => return None,
    };
    Some(SourceConfig {
        spec,
        format: edgelog_codec::FormatHint::Auto,
        app_name: None,
        max_frame: edgelog_codec::Framer::DEFAULT_MAX_FRAME,
        optional: false,
    })
}

/// Opens the source's input and spawns its loop.
pub(crate) fn start(
    name: &str,
    cfg: &SourceConfig,
    cx: &SourceContext,
    stats: Arc<SourceStats>,
    stop: Stop,
) -> anyhow::Result<JoinHandle<()>> {
    let app_name = cfg.spec.app_name(cfg.app_name.as_deref());
    let host = cx.local_host.clone();
    let ingest = Ingest::new(name, cfg.format, app_name, host, stats, cx.tx.clone())
        .with_max_message(cfg.max_frame);
    let task = cfg.spec.start(SourceStart {
        name,
        ingest,
        stop,
        max_frame: cfg.max_frame,
        app_name: cfg.app_name.as_deref(),
        run_dir: &cx.run_dir,
        state_dir: &cx.state_dir,
        activated: &cx.activated,
    })?;
    tracing::debug!(source = name, "started: {}", cfg.spec.describe());
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
