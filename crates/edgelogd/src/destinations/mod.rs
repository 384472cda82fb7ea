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
}

impl Running {
    /// Tells the destination the daemon is stopping: from now on a full queue holds it up
    /// only briefly, so the router can drain.
    pub fn begin_stop(&self) {
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
            Box::new(network::QueueSink::new(shared, encoder))
        }
    };
    let selector = Selector {
        level: cfg.level,
        filter: cfg.filter.clone(),
        overrides: cfg.overrides.clone(),
    };
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let thread = std::thread::Builder::new()
        .name(format!("dest-{name}"))
        .spawn(move || run(rx, sink, selector, stats, runtime))
        .context("starting a destination thread")?;
    Ok(Running {
        tx,
        thread,
        sender,
        network,
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
    mut rx: mpsc::Receiver<Arc<Batch>>,
    mut sink: Box<dyn Sink>,
    selector: Selector,
    stats: Arc<DestinationStats>,
    runtime: tokio::runtime::Handle,
) {
    let fail = |stats: &DestinationStats, e: std::io::Error, n: u64| {
        stats.add_drop(DestinationDrop::WriteError, n);
        stats.set_error(e.to_string());
    };
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if let Err(e) = sink.flush() {
                    fail(&stats, e, 0);
                }
                let next = runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
                });
                match next {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(_idle) => {
                        if let Err(e) = sink.tick() {
                            fail(&stats, e, 0);
                        }
                        continue;
                    }
                }
            }
        };
        let (mut written, mut bytes) = (0, 0);
        for e in batch.events.iter().filter(|e| selector.wants(e)) {
            match sink.write(e, &batch.device) {
                Ok(n) => {
                    written += 1;
                    bytes += n as u64;
                }
                Err(err) => fail(&stats, err, 1),
            }
        }
        stats.written.fetch_add(written, Relaxed);
        stats.bytes.fetch_add(bytes, Relaxed);
        if let Some(t) = &batch.ticket {
            // A failure here is counted (write error); the source may move on, as it would
            // past any other counted loss.
            if let Err(e) = sink.durable() {
                fail(&stats, e, 0);
            }
            t.complete_one();
        }
        if let Err(e) = sink.tick() {
            fail(&stats, e, 0);
        }
    }
    if let Err(e) = sink.close() {
        fail(&stats, e, 0);
    }
}
