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
//! writes what is left, flushes, syncs and ends. A network destination's thread is also the
//! one owner of its queue ([`queue`]), serving its sender ([`sender`], [`transport`]) while it
//! waits for the router.
//!
//! **A full disk is back-pressure, not loss.** A write or sync that fails with ENOSPC,
//! EDQUOT or EIO (store, disk queue) is tried again, every 100 ms, until there is room: the
//! destination holds its records, the router waits for it, and so the sources that can wait
//! pause (datagram sources drop and count instead). A batch's ticket — what lets a file or
//! table source move its checkpoint — is completed only once its records are durable, so a
//! checkpoint never passes a record the store or queue does not hold. The episode is said once
//! in the log and in LAST ERROR, and `disk_full` shows in the counters until it clears. Only a
//! stopping daemon gives up, after the grace period, counting what it drops as `shutdown`.
//! A `spill` queue (the default for network destinations) is the exception: it must never
//! hold the box up, so what neither its memory nor its disk part can take is dropped and
//! counted as `disk_full`.

mod backlog;
mod file;
mod file_store;
pub(crate) mod network;
mod queue;
mod sender;
mod stdout;
pub(crate) mod tables;
mod transport;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use crate::component::{Built, DestinationStart, DestinationType, Opener, Sink};
use crate::config::DestinationConfig;
use crate::event::Batch;
use crate::select::Selector;
use crate::stats::{DestinationDrop, DestinationStats};

/// Every destination type, in the order errors list them.
pub(crate) static TYPES: [DestinationType; 9] = [
    file_store::TYPE,
    file::TYPE,
    stdout::TYPE,
    transport::TYPES[0],
    transport::TYPES[1],
    transport::TYPES[2],
    transport::TYPES[3],
    transport::TYPES[4],
    transport::TYPES[5],
];

/// Batches a destination may have waiting before the router waits for it; its queue, not
/// this channel, is where records wait for a slow receiver.
const CHANNEL_BATCHES: usize = 2;

/// How long a stopping daemon waits for room (a full disk, a full queue) and for a receiver to take
/// the rest, before it counts what is left as `shutdown`.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// How often a write to a full disk is tried again.
const DISK_FULL_RETRY: Duration = Duration::from_millis(100);

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
    /// A write failed for want of room: the episode starts (said once) if it had not.
    pub(crate) fn note(&mut self, name: &str, stats: &DestinationStats, e: &std::io::Error) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            stats.disk_full.store(true, Relaxed);
            crate::stats::disk_full_episode(true);
            let why = format!("disk full: {e}; holding records until there is room");
            tracing::warn!(destination = name, "{why}");
            stats.set_error(why);
        }
    }

    /// Whether to hold records after `e` and write again: a full disk is waited out, unless
    /// the daemon is stopping and its grace period (`stop_at`) is over.
    pub(crate) fn holds(
        &mut self,
        name: &str,
        stats: &DestinationStats,
        e: &std::io::Error,
        stop_at: Option<Instant>,
    ) -> bool {
        if !disk_full(e) || stop_at.is_some_and(|t| Instant::now() > t) {
            return false;
        }
        self.note(name, stats, e);
        true
    }

    /// [`DiskFull::holds`], waiting a moment before the caller writes again.
    fn retry(
        &mut self,
        name: &str,
        stats: &DestinationStats,
        e: &std::io::Error,
        stop_at: Option<Instant>,
    ) -> bool {
        let holds = self.holds(name, stats, e, stop_at);
        if holds {
            std::thread::sleep(DISK_FULL_RETRY);
        }
        holds
    }

    /// A write went through: the episode, if any, is over.
    pub(crate) fn cleared(&mut self, name: &str, stats: &DestinationStats) {
        if let Some(since) = self.since.take() {
            stats.disk_full.store(false, Relaxed);
            crate::stats::disk_full_episode(false);
            tracing::info!(
                destination = name,
                "disk has room again after {:?}; writing on",
                since.elapsed()
            );
        }
    }
}

impl Drop for DiskFull {
    fn drop(&mut self) {
        if self.since.is_some() {
            crate::stats::disk_full_episode(false);
        }
    }
}

/// A running destination: the channel into it, its thread, and for network destinations the
/// sender task.
#[derive(Debug)]
pub(crate) struct Running {
    pub tx: mpsc::Sender<Arc<Batch>>,
    pub thread: std::thread::JoinHandle<()>,
    pub sender: Option<tokio::task::JoinHandle<()>>,
    /// Set when the daemon begins to stop: until then a full disk or queue is waited out.
    stop_at: watch::Sender<Option<Instant>>,
    /// Set when the thread has ended (its sink closed, its queue's lock released).
    ended: Handover,
    /// The plugin-alias export levels the CLI set, read by the thread at its next batch.
    overrides: watch::Sender<Vec<edgelog_core::control::Rule>>,
}

/// What a destination replacing another waits for before it opens its sink: the old one's
/// end, so that two never write one queue or one store.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handover(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Handover {
    /// Blocks until the old destination's thread has ended.
    fn wait(&self) {
        let (ended, cv) = &*self.0;
        let mut ended = ended.lock().unwrap_or_else(|e| e.into_inner());
        while !*ended {
            ended = cv.wait(ended).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Marks the thread's end when dropped (a panic included).
struct Ending(Handover);

impl Drop for Ending {
    fn drop(&mut self) {
        let (ended, cv) = &*(self.0).0;
        *ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

impl Running {
    /// Tells the destination the daemon is stopping: from now on a full queue or disk holds it
    /// up only briefly, so the router can drain.
    pub(crate) fn begin_stop(&self) {
        self.stop_at.send_if_modified(|t| {
            t.get_or_insert(Instant::now() + STOP_GRACE);
            true
        });
    }

    /// New plugin-alias export levels: they apply from the next batch, without a restart.
    pub(crate) fn set_overrides(&self, rules: Vec<edgelog_core::control::Rule>) {
        self.overrides.send_if_modified(|current| {
            let changed = *current != rules;
            *current = rules;
            changed
        });
    }

    /// The plugin-alias export levels in force.
    pub(crate) fn overrides(&self) -> Vec<edgelog_core::control::Rule> {
        self.overrides.borrow().clone()
    }

    /// What a destination that replaces this one waits for.
    pub(crate) fn handover(&self) -> Handover {
        self.ended.clone()
    }

    /// Lets go of the channel and waits for the thread, then the sender, to finish.
    pub(crate) async fn stop(self) {
        drop(self.tx);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        if let Some(s) = self.sender {
            let _ = s.await;
        }
    }
}

/// A human-readable line of where a destination writes and how, for the startup summary.
pub(crate) fn describe(cfg: &DestinationConfig) -> String {
    format!("{} ({})", cfg.spec.endpoint(), cfg.spec.how())
}

/// Opens the destination's sink and starts its thread. A destination that replaces another
/// (`after`, a reload) opens its sink in its thread once the old one has ended: the router
/// may already hand it batches, which wait in its channel; what cannot be opened then is said
/// in the log and LAST ERROR, and what the router offers it is counted as `down`.
pub(crate) fn start(
    name: &str,
    cfg: &DestinationConfig,
    overrides: Vec<edgelog_core::control::Rule>,
    stats: Arc<DestinationStats>,
    state_dir: &std::path::Path,
    runtime: tokio::runtime::Handle,
    after: Option<Handover>,
) -> anyhow::Result<Running> {
    let (stop_at, stop) = watch::channel(None);
    let Built { open, sender } = cfg.spec.build(DestinationStart {
        name,
        escape: cfg.escape,
        stats: stats.clone(),
        state_dir,
        runtime: &runtime,
        stop_at: stop.clone(),
    })?;
    // A first start opens here, so that what cannot be opened fails the start.
    let start = match after {
        None => Start::Opened(open()?),
        Some(after) => Start::After(after, open),
    };
    let selector = Selector {
        level: cfg.level,
        filter: cfg.filter.clone(),
        overrides: overrides.clone(),
    };
    let (overrides, overrides_rx) = watch::channel(overrides);
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let ended = Handover::default();
    let ending = Ending(ended.clone());
    let thread = std::thread::Builder::new()
        .name(format!("dest-{name}"))
        .spawn({
            let name = name.to_owned();
            move || {
                let _ending = ending;
                let sink = match start {
                    Start::Opened(sink) => sink,
                    Start::After(after, open) => {
                        after.wait();
                        match open() {
                            Ok(sink) => sink,
                            Err(e) => {
                                let why = format!("opening after a reload: {e:#}");
                                tracing::error!(destination = %name, "{why}");
                                stats.set_error(why);
                                return;
                            }
                        }
                    }
                };
                let selector = Selection {
                    selector,
                    overrides: overrides_rx,
                };
                run(&name, rx, sink, selector, &stats, &stop, runtime);
            }
        })
        .context("starting a destination thread")?;
    Ok(Running {
        tx,
        thread,
        sender,
        stop_at,
        ended,
        overrides,
    })
}

/// What a destination takes of a batch: its selector, with the plugin-alias levels as they
/// change.
struct Selection {
    selector: Selector,
    overrides: watch::Receiver<Vec<edgelog_core::control::Rule>>,
}

impl Selection {
    /// The selector, with the latest plugin-alias levels.
    fn current(&mut self) -> &Selector {
        if self.overrides.has_changed().unwrap_or(false) {
            self.selector.overrides = self.overrides.borrow_and_update().clone();
        }
        &self.selector
    }
}

/// A destination's sink: open, or to be opened after the one it replaces has ended.
enum Start {
    Opened(Box<dyn Sink>),
    After(Handover, Opener),
}

/// What wakes an idle destination thread.
enum Wake {
    Batch(Arc<Batch>),
    Closed,
    /// The sink did its own work.
    Work,
    /// A second passed.
    Tick,
}

/// A destination thread's state: its sink, what it selects, its counters, and a disk-full
/// episode in progress.
struct Writer<'a> {
    name: &'a str,
    sink: Box<dyn Sink>,
    selection: Selection,
    stats: &'a DestinationStats,
    stop_at: &'a watch::Receiver<Option<Instant>>,
    full: DiskFull,
    /// A flush failed: records written since sit in the sink's buffer, which says nothing of
    /// the disk — only a flush that succeeds ends the episode.
    unflushed: bool,
}

impl Writer<'_> {
    fn fail(&mut self, e: std::io::Error, n: u64) {
        fail(&mut self.full, self.name, self.stats, e, n);
    }

    /// Whether to try a write again after `e` (a full disk, waited out a moment).
    fn retry(&mut self, e: &std::io::Error) -> bool {
        let stop_at = *self.stop_at.borrow();
        self.full.retry(self.name, self.stats, e, stop_at)
    }

    /// Makes what was written visible; the channel ran empty.
    fn flush(&mut self) {
        match self.sink.flush() {
            Ok(()) => {
                self.unflushed = false;
                self.full.cleared(self.name, self.stats);
            }
            Err(e) => {
                self.unflushed = true;
                self.fail(e, 0);
            }
        }
    }

    fn tick(&mut self) {
        if let Err(e) = self.sink.tick() {
            self.fail(e, 0);
        }
    }

    /// Waits for the next batch, the sink's own work, or a second to pass.
    fn wait(
        &mut self,
        rx: &mut mpsc::Receiver<Arc<Batch>>,
        runtime: &tokio::runtime::Handle,
    ) -> Wake {
        let tick = tokio::time::Instant::now() + Duration::from_secs(1);
        let sink = &mut self.sink;
        runtime.block_on(async {
            let mut tick = std::pin::pin!(tokio::time::sleep_until(tick));
            std::future::poll_fn(|cx| {
                if sink.poll_work(cx).is_ready() {
                    return Poll::Ready(Wake::Work);
                }
                if let Poll::Ready(b) = rx.poll_recv(cx) {
                    return Poll::Ready(b.map_or(Wake::Closed, Wake::Batch));
                }
                tick.as_mut().poll(cx).map(|()| Wake::Tick)
            })
            .await
        })
    }

    /// Writes what the selector wants of a batch; completes its ticket once it is durable.
    fn write(&mut self, batch: &Batch) {
        let (mut written, mut bytes) = (0, 0);
        let Writer {
            name,
            sink,
            selection,
            stats,
            stop_at,
            full,
            ..
        } = self;
        let selector = selection.current();
        for e in batch.events.iter().filter(|e| selector.wants(e)) {
            loop {
                match sink.write(e, &batch.device) {
                    Ok(n) => {
                        written += 1;
                        bytes += n as u64;
                        break;
                    }
                    Err(err) if full.retry(name, stats, &err, *stop_at.borrow()) => {}
                    Err(err) if disk_full(&err) => {
                        stats.add_drop(DestinationDrop::Shutdown, 1);
                        break;
                    }
                    Err(err) => {
                        fail(full, name, stats, err, 1);
                        break;
                    }
                }
            }
        }
        self.stats.written.fetch_add(written, Relaxed);
        self.stats.bytes.fetch_add(bytes, Relaxed);
        if let Some(t) = &batch.ticket
            && self.durable()
        {
            // The ticket lets a source move its checkpoint: only once the records are durable.
            t.complete_one();
        }
        if written > 0 && !self.unflushed {
            self.full.cleared(self.name, self.stats);
        }
        self.tick();
    }

    /// Makes everything written durable, waiting out a full disk; false if it failed.
    fn durable(&mut self) -> bool {
        loop {
            match self.sink.durable() {
                Ok(()) => {
                    self.unflushed = false;
                    return true;
                }
                Err(err) if self.retry(&err) => {}
                Err(err) => {
                    self.fail(err, 0);
                    return false;
                }
            }
        }
    }
}

/// A write, flush or tick failed: `n` records are lost, counted. A flush or tick that fails
/// for a full disk loses nothing (the sink keeps what it could not write and tries again): it
/// is shown as the disk-full episode it is.
fn fail(full: &mut DiskFull, name: &str, stats: &DestinationStats, e: std::io::Error, n: u64) {
    if n == 0 && disk_full(&e) {
        full.note(name, stats, &e);
        return;
    }
    stats.add_drop(DestinationDrop::WriteError, n);
    stats.set_error(e.to_string());
}

fn run(
    name: &str,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    sink: Box<dyn Sink>,
    selection: Selection,
    stats: &DestinationStats,
    stop_at: &watch::Receiver<Option<Instant>>,
    runtime: tokio::runtime::Handle,
) {
    let mut w = Writer {
        name,
        sink,
        selection,
        stats,
        stop_at,
        full: DiskFull::default(),
        unflushed: false,
    };
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                w.flush();
                match w.wait(&mut rx, &runtime) {
                    Wake::Batch(b) => b,
                    Wake::Closed => break,
                    Wake::Work => continue,
                    Wake::Tick => {
                        w.tick();
                        continue;
                    }
                }
            }
        };
        w.write(&batch);
    }
    if let Err(e) = w.sink.close() {
        w.fail(e, 0);
    }
}
