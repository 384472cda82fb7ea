//! Destinations: each named (the plugin alias), each on its own thread behind a bounded
//! channel.
//!
//! The router hands every destination the same `Arc<Batch>`; the destination keeps what its
//! [`Selector`] wants and writes it with its sink. Local sinks (a store, stdout) do blocking
//! file I/O, so each runs on an OS thread of its own rather than on the async workers, where a
//! slow disk would stall every source. The channel is bounded: when a sink falls behind the
//! router waits, and so, in turn, do the sources — memory stays bounded, nothing is dropped
//! in between. A sink flushes whenever its channel runs empty, so records reach the file
//! within one batch of arriving even at a trickle; it is told the time once a second with no
//! traffic, for age-based rotation. When the router lets go of the channel the destination
//! writes what is left, flushes, syncs and ends.
//!
//! **A full disk is back-pressure, not loss.** A write or sync that fails with ENOSPC,
//! EDQUOT or EIO (store, disk queue) is tried again, every 100 ms, until there is room: the
//! destination holds its records, the router waits for it, and so the sources that can wait
//! pause (datagram sources drop and count instead). A batch's ticket — what lets a file or
//! table source move its checkpoint — is completed only once its records are durable, so a
//! checkpoint never passes a record the store or queue does not hold. The episode is said once
//! in the log and in LAST ERROR, and `disk_full` shows in the counters until it clears. Only a
//! stopping daemon gives up, after the grace period, counting what it drops as `shutdown`.

mod file_store;
mod http;
mod network;
mod relp;
mod stdout;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::config::{DestinationConfig, DestinationKind, Transport};
use crate::event::{Batch, Device, Event, Selector};
use crate::stats::{DestinationDrop, DestinationStats};

/// Batches a destination may have waiting before the router waits for it; its queue, not
/// this channel, is where records wait for a slow receiver.
const CHANNEL_BATCHES: usize = 2;

/// How long a stopping daemon waits for room (a full disk, a full queue) and for a receiver to take
/// the rest, before it counts what is left as `shutdown`.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Whether an I/O error means the disk cannot take writes for now: full, over quota, or
/// failing. Such a write is tried again rather than dropped.
pub(crate) fn disk_full(e: &std::io::Error) -> bool {
    edgelog_core::is_no_space(e) || e.raw_os_error() == Some(nix::errno::Errno::EIO as i32)
}

/// A destination's disk-full episode: said once when it starts and once when it ends. Used
/// by the thread's writes and syncs (store, stdout) and by the disk queue's appends alike.
#[derive(Debug, Default)]
pub(crate) struct DiskFull {
    since: Option<std::time::Instant>,
}

impl DiskFull {
    /// Whether to write again after `e`: a full disk is waited out (a moment at a time),
    /// unless the daemon is stopping and its grace period (`stop_at`) is over.
    pub(crate) fn retry(
        &mut self,
        name: &str,
        stats: &DestinationStats,
        e: &std::io::Error,
        stop_at: Option<std::time::Instant>,
    ) -> bool {
        if !disk_full(e) || stop_at.is_some_and(|t| std::time::Instant::now() > t) {
            return false;
        }
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            stats.disk_full.store(true, Relaxed);
            let why = format!("disk full: {e}; holding records until there is room");
            tracing::warn!(destination = name, "{why}");
            stats.set_error(why);
        }
        std::thread::sleep(Duration::from_millis(100));
        true
    }

    /// A write went through: the episode, if any, is over.
    pub(crate) fn cleared(&mut self, name: &str, stats: &DestinationStats) {
        if let Some(since) = self.since.take() {
            stats.disk_full.store(false, Relaxed);
            tracing::info!(
                destination = name,
                "disk has room again after {:?}; writing on",
                since.elapsed()
            );
        }
    }
}

/// What a destination writes records with.
pub(crate) trait Sink: Send {
    /// Writes one record; returns the bytes written.
    fn write(&mut self, e: &Event, device: &Device) -> std::io::Result<usize>;
    /// Makes what was written visible (to readers of the file, to the pipe).
    fn flush(&mut self) -> std::io::Result<()>;
    /// Called at least once a second: time-based work such as rotation by age.
    fn tick(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// Makes everything written so far survive a crash of the daemon (for a batch that
    /// carries a ticket): flushed to the file, synced into the disk queue.
    fn durable(&mut self) -> std::io::Result<()> {
        self.flush()
    }
    /// Called once at the end: flush and make durable.
    fn close(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}

/// A running destination: the channel into it, its thread, and for network destinations the
/// sender task.
#[derive(Debug)]
pub struct Running {
    pub tx: mpsc::Sender<Arc<Batch>>,
    pub thread: std::thread::JoinHandle<()>,
    pub sender: Option<tokio::task::JoinHandle<()>>,
    network: Option<Arc<network::Shared>>,
    /// Set when the daemon begins to stop: until then a full disk is waited out.
    stop_at: Arc<std::sync::OnceLock<std::time::Instant>>,
}

impl Running {
    /// Tells the destination the daemon is stopping: from now on a full queue holds it up
    /// only briefly, so the router can drain.
    pub fn begin_stop(&self) {
        let _ = self.stop_at.set(std::time::Instant::now() + STOP_GRACE);
        if let Some(n) = &self.network {
            n.begin_stop();
        }
    }

    /// Lets go of the channel and waits for the thread, then the sender, to finish.
    pub async fn stop(self) {
        drop(self.tx);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        if let Some(s) = self.sender {
            let _ = s.await;
        }
    }
}

/// A human-readable line of where a destination writes, for the startup summary.
pub fn describe(cfg: &DestinationConfig) -> String {
    match &cfg.kind {
        DestinationKind::FileStore(f) => format!(
            "{} ({}, rotate at {} bytes or {:?}, quota {} bytes{})",
            f.path.display(),
            f.format.name(),
            f.max_file_size,
            f.max_file_age,
            f.max_bytes,
            if f.compress { ", gzip" } else { "" }
        ),
        DestinationKind::Stdout { format } => format!("standard output ({})", format.name()),
        DestinationKind::Network(s) => format!(
            "{} {} ({}{}, {} queue, when full {})",
            match (s.transport, s.tls.is_some()) {
                (Transport::GelfHttp, _) => "GELF http",
                (Transport::GelfUdp, _) => "GELF udp",
                (Transport::GelfTcp, true) => "GELF tls",
                (Transport::GelfTcp, false) => "GELF tcp",
                (Transport::Udp, _) => "udp",
                (Transport::Relp, false) => "relp",
                (Transport::Relp, true) => "relp+tls",
                (Transport::Tcp, true) => "tls",
                (Transport::Tcp, false) => "tcp",
            },
            s.address,
            s.format.name(),
            if s.transport != Transport::Tcp {
                ""
            } else if s.octet_counting {
                ", octet-counting"
            } else {
                ", lf"
            },
            if s.queue.disk { "disk" } else { "memory" },
            match s.queue.when_full {
                edgelog_queue::WhenFull::Block => "block",
                edgelog_queue::WhenFull::DropNewest => "drop_newest",
                edgelog_queue::WhenFull::DropOldest => "drop_oldest",
            }
        ),
    }
}

/// Opens the destination's sink and starts its thread.
pub fn start(
    name: &str,
    cfg: &DestinationConfig,
    stats: Arc<DestinationStats>,
    state_dir: &std::path::Path,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<Running> {
    let mut sender = None;
    let mut network = None;
    let sink: Box<dyn Sink> = match &cfg.kind {
        DestinationKind::FileStore(f) => Box::new(
            file_store::FileStore::open(f, cfg.escape, stats.clone())
                .with_context(|| format!("opening store {}", f.path.display()))?,
        ),
        DestinationKind::Stdout { format } => Box::new(stdout::Stdout::new(
            crate::output::Encoder::new(*format, cfg.escape, stats.clone()),
        )),
        DestinationKind::Network(s) => {
            let target = network::Target::new(s)?;
            let queue = open_queue(name, &s.queue, state_dir)?;
            let shared = network::Shared::new(queue, s.queue.when_full, stats.clone());
            let dead_letters = state_dir.join("dead-letter");
            sender = Some(runtime.spawn(network::send(
                shared.clone(),
                target,
                name.to_owned(),
                dead_letters,
            )));
            network = Some(shared.clone());
            let encoder = crate::output::Encoder::new(s.format, cfg.escape, stats.clone());
            Box::new(network::QueueSink::new(shared, encoder, name))
        }
    };
    let selector = Selector {
        level: cfg.level,
        filter: cfg.filter.clone(),
        overrides: cfg.overrides.clone(),
    };
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let stop_at = Arc::new(std::sync::OnceLock::new());
    let thread = std::thread::Builder::new()
        .name(format!("dest-{name}"))
        .spawn({
            let stop_at = stop_at.clone();
            let name = name.to_owned();
            move || run(&name, rx, sink, selector, &stats, &stop_at, runtime)
        })
        .context("starting a destination thread")?;
    Ok(Running {
        tx,
        thread,
        sender,
        network,
        stop_at,
    })
}

/// The destination's queue: in memory, or on disk under `<state_dir>/queues/<name>`.
fn open_queue(
    name: &str,
    cfg: &crate::config::QueueConfig,
    state_dir: &std::path::Path,
) -> anyhow::Result<Box<dyn edgelog_queue::Queue>> {
    use edgelog_queue::{DiskQueue, MemoryQueue, Queue as _, disk::DiskOptions};
    if !cfg.disk {
        return Ok(Box::new(MemoryQueue::new(
            cfg.max_records,
            cfg.max_bytes as usize,
            cfg.when_full,
            &["send"],
        )));
    }
    let dir = state_dir.join("queues").join(name);
    let opts = DiskOptions {
        max_bytes: cfg.max_bytes,
        segment_bytes: (cfg.max_bytes / 8).clamp(64 << 10, 16 << 20),
        fsync: cfg.fsync,
        when_full: cfg.when_full,
        ..DiskOptions::default()
    };
    let (q, recovery) = DiskQueue::open(&dir, opts, &["send"])
        .with_context(|| format!("opening the disk queue {}", dir.display()))?;
    for p in &recovery.problems {
        tracing::warn!(destination = name, "queue recovery: {p}");
    }
    if recovery.records > 0 {
        tracing::info!(
            destination = name,
            "disk queue holds {} records from before; they are sent first",
            q.stats().consumers[0].pending
        );
    }
    Ok(Box::new(q))
}

fn run(
    name: &str,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    mut sink: Box<dyn Sink>,
    selector: Selector,
    stats: &DestinationStats,
    stop_at: &std::sync::OnceLock<std::time::Instant>,
    runtime: tokio::runtime::Handle,
) {
    let fail = |stats: &DestinationStats, e: std::io::Error, n: u64| {
        stats.add_drop(DestinationDrop::WriteError, n);
        stats.set_error(e.to_string());
    };
    let mut full = DiskFull::default();
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if let Err(e) = sink.flush() {
                    fail(stats, e, 0);
                }
                let next = runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
                });
                match next {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(_idle) => {
                        if let Err(e) = sink.tick() {
                            fail(stats, e, 0);
                        }
                        continue;
                    }
                }
            }
        };
        let (mut written, mut bytes) = (0, 0);
        for e in batch.events.iter().filter(|e| selector.wants(e)) {
            loop {
                match sink.write(e, &batch.device) {
                    Ok(n) => {
                        written += 1;
                        bytes += n as u64;
                        break;
                    }
                    Err(err) if full.retry(name, stats, &err, stop_at.get().copied()) => {}
                    Err(err) if disk_full(&err) => {
                        stats.add_drop(DestinationDrop::Shutdown, 1);
                        break;
                    }
                    Err(err) => {
                        fail(stats, err, 1);
                        break;
                    }
                }
            }
        }
        stats.written.fetch_add(written, Relaxed);
        stats.bytes.fetch_add(bytes, Relaxed);
        if let Some(t) = &batch.ticket {
            // The ticket lets a source move its checkpoint: only once the records are durable.
            let durable = loop {
                match sink.durable() {
                    Ok(()) => break true,
                    Err(err) if full.retry(name, stats, &err, stop_at.get().copied()) => {}
                    Err(err) => {
                        fail(stats, err, 0);
                        break false;
                    }
                }
            };
            if durable {
                t.complete_one();
            }
        }
        if written > 0 {
            full.cleared(name, stats);
        }
        if let Err(e) = sink.tick() {
            fail(stats, e, 0);
        }
    }
    if let Err(e) = sink.close() {
        fail(stats, e, 0);
    }
}
