//! A network destination's queue and its one owner.
//!
//! ```text
//!  router ─Arc<Batch>─► owner thread: encode ─append─► Backlog ─┬─ primary (memory or disk)
//!                            ▲  │                              └─ spill (disk, when primary is full)
//!               Read / Done  │  │ records
//!                            │  ▼
//!                       sender task (async): connect, frame, send, retry
//! ```
//!
//! **One owner.** The destination's OS thread owns the queue outright — no lock, no sharing.
//! The sender, a task on the async runtime, never touches it: it asks the owner for records
//! (`Read`) and tells it what the receiver took (`Done`: acknowledge, dead-letter, rewind) over
//! a channel, and the owner answers as soon as it can. So every queue operation that blocks —
//! a disk queue's append, read, fsyncing acknowledgement, the dead-letter file — happens on
//! the owner's thread, never on an async worker; and nothing sleep-polls: a full queue under
//! `block` waits for the sender's next message (an acknowledgement frees room), an idle owner
//! waits for the router, the sender or the clock, whichever comes first.
//!
//! **Spill.** A `spill` queue is memory first and disk after ([`backlog`](super::backlog)).
//! Past the disk part's quota `when_full` applies (by default the oldest records go, counted
//! as `quota`). A full disk never holds the destination up in `spill`: what neither part can
//! take is dropped, counted as `disk_full`. Elsewhere a full disk is waited out, serving the
//! sender meanwhile.
//!
//! **Stop.** The owner appends what it still holds, then keeps serving the sender until the
//! queue is empty or the grace period ends — a queue that keeps its records on disk (`disk`,
//! `spill`) only while the receiver is taking them; then it tells the sender to stop (aborting
//! a send to a receiver that takes nothing), takes its last answer, and accounts for what is
//! left. Its disk queue's lock goes with it, and only then does a destination that replaces
//! it (a reload) open the queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use edgelog_queue::{Record, WhenFull};
use tokio::sync::{mpsc, oneshot, watch};

use super::DiskFull;
use super::STOP_GRACE;
use super::backlog::{Backlog, Tier};
use super::network::{QueueConfig, QueueKind};
use crate::component::Sink;
use crate::event::{Device, Event};
use crate::output::Encoder;
use crate::stats::{DestinationDrop, DestinationStats};

/// Records encoded before they are appended: one append per this many.
const APPEND_EVERY: usize = 256;

/// Appends records the receiver refused for good to the destination's dead-letter file
/// (`<state_dir>/dead-letter/<destination>.jsonl`), one JSON object per line, synced.
fn dead_letter(
    dir: &std::path::Path,
    name: &str,
    batch: &[Record],
    dead: &[(u64, String)],
) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.jsonl"));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let mut buf = Vec::new();
    for (seq, reason) in dead {
        let Some(r) = batch.iter().find(|r| r.seq == *seq) else {
            continue;
        };
        let line = serde_json::json!({
            "time": edgelog_core::Timestamp::now().to_string(),
            "destination": name,
            "reason": reason,
            "record": String::from_utf8_lossy(&r.payload),
        });
        serde_json::to_writer(&mut buf, &line)?;
        buf.push(b'\n');
    }
    f.write_all(&buf)?;
    f.sync_data()?;
    Ok(path)
}

/// Records for the sender.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) tier: Tier,
    pub(super) records: Vec<Record>,
}

/// What became of records the sender was given.
#[derive(Debug)]
pub(super) struct Done {
    pub(super) tier: Tier,
    /// Taken by the receiver: out of the queue.
    pub(super) accepted: Vec<u64>,
    /// Refused for good, with the reason: to the dead-letter file, then out of the queue.
    pub(super) dead: Vec<(Record, String)>,
    /// The rest was not taken: read it again.
    pub(super) rewind: bool,
}

/// What the sender asks of the owner.
#[derive(Debug)]
enum ToOwner {
    /// Up to `max` records (from `only`, if given); with `wait`, answered once there are
    /// some. `None` is the owner saying stop.
    Read {
        max: usize,
        wait: bool,
        only: Option<Tier>,
        reply: oneshot::Sender<Option<Taken>>,
    },
    Done(Done),
}

/// The sender's end of the queue.
#[derive(Debug)]
pub(super) struct Feed {
    tx: mpsc::Sender<ToOwner>,
    abort: watch::Receiver<bool>,
}

impl Feed {
    /// Records to send; `None` when the destination stops.
    pub(super) async fn read(&self, max: usize, wait: bool, only: Option<Tier>) -> Option<Taken> {
        let (reply, rx) = oneshot::channel();
        let msg = ToOwner::Read {
            max,
            wait,
            only,
            reply,
        };
        self.tx.send(msg).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Tells the owner what became of records; false if it is gone.
    pub(super) async fn done(&self, d: Done) -> bool {
        self.tx.send(ToOwner::Done(d)).await.is_ok()
    }

    /// Resolves when the owner gives up on the receiver (a stop's grace is over).
    pub(super) async fn aborted(&self) {
        let mut abort = self.abort.clone();
        let _ = abort.wait_for(|a| *a).await;
    }

    /// Sleeps `d`, or less if the destination stops meanwhile.
    pub(super) async fn pause(&self, d: Duration) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.aborted() => {}
        }
    }
}

/// The owner: the destination thread's sink. See the module documentation.
#[derive(Debug)]
pub(super) struct QueueSink {
    backlog: Backlog,
    encoder: Encoder,
    pending: Pending,
    requests: mpsc::Receiver<ToOwner>,
    /// A `Read` that waits for records.
    waiting: Option<(usize, Option<Tier>, oneshot::Sender<Option<Taken>>)>,
    abort: watch::Sender<bool>,
    /// When a stopping daemon's grace period ends (set by `begin_stop`).
    stop: watch::Receiver<Option<Instant>>,
    /// … or this destination's own, once it closes (a reload retires it).
    closing_at: Option<Instant>,
    when_full: WhenFull,
    spill: bool,
    name: String,
    stats: Arc<DestinationStats>,
    full: DiskFull,
    dead_letters: PathBuf,
    runtime: tokio::runtime::Handle,
    /// Whether records were on disk in the spill part when last looked (said on change).
    spilling: bool,
}

/// Encoded records not yet in the queue, in one buffer (no allocation per record): record
/// `i` ends at `ends[i]`; the first `taken` were appended.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    ends: Vec<usize>,
    taken: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.ends.len() - self.taken
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records not yet taken.
    fn records(&self) -> Vec<&[u8]> {
        let mut start = if self.taken == 0 {
            0
        } else {
            self.ends[self.taken - 1]
        };
        self.ends[self.taken..]
            .iter()
            .map(|&end| {
                let r = &self.buf[start..end];
                start = end;
                r
            })
            .collect()
    }

    /// The queue took the next `n`.
    fn take(&mut self, n: usize) {
        self.taken += n;
        if self.is_empty() {
            self.clear();
        }
    }

    /// Drops what is left; returns how many records that was.
    fn clear(&mut self) -> u64 {
        let n = self.len() as u64;
        self.buf.clear();
        self.ends.clear();
        self.taken = 0;
        n
    }
}

/// The owner's end of the link between a queue's owner and its sender.
#[derive(Debug)]
pub(super) struct Link {
    requests: mpsc::Receiver<ToOwner>,
    abort: watch::Sender<bool>,
}

/// A new link: the owner's end, and the sender's.
pub(super) fn link() -> (Link, Feed) {
    let (tx, requests) = mpsc::channel(4);
    let (abort, abort_rx) = watch::channel(false);
    (
        Link { requests, abort },
        Feed {
            tx,
            abort: abort_rx,
        },
    )
}

/// What [`QueueSink::new`] needs besides the backlog.
pub(super) struct Owner {
    pub(super) name: String,
    pub(super) queue: QueueConfig,
    pub(super) encoder: Encoder,
    pub(super) stats: Arc<DestinationStats>,
    pub(super) dead_letters: PathBuf,
    pub(super) stop: watch::Receiver<Option<Instant>>,
    pub(super) runtime: tokio::runtime::Handle,
}

impl QueueSink {
    /// The owner of `backlog`, serving the sender at the other end of `link`.
    pub(super) fn new(backlog: Backlog, o: Owner, link: Link) -> QueueSink {
        let sink = QueueSink {
            backlog,
            encoder: o.encoder,
            pending: Pending::default(),
            requests: link.requests,
            waiting: None,
            abort: link.abort,
            stop: o.stop,
            closing_at: None,
            when_full: o.queue.when_full,
            spill: o.queue.kind == QueueKind::Spill,
            name: o.name,
            stats: o.stats,
            full: DiskFull::default(),
            dead_letters: o.dead_letters,
            runtime: o.runtime,
            spilling: false,
        };
        sink.publish();
        sink
    }

    fn publish(&self) {
        let (primary, spill) = self.backlog.stats();
        self.stats.set_queue(&primary, spill.as_ref());
    }

    /// Says when the spill part starts and stops holding records.
    fn note_spilling(&mut self) {
        let spilling = self.backlog.spilled() > 0;
        if spilling != self.spilling {
            self.spilling = spilling;
            self.stats.set_spilling(spilling);
            if spilling {
                tracing::warn!(
                    destination = %self.name,
                    "memory queue full: spilling to disk"
                );
            } else {
                tracing::info!(destination = %self.name, "spilled records all sent");
            }
        }
    }

    fn stop_at(&self) -> Option<Instant> {
        self.closing_at.or(*self.stop.borrow())
    }

    fn past_grace(&self) -> bool {
        self.stop_at().is_some_and(|t| Instant::now() > t)
    }

    /// Does what the sender asked.
    fn serve(&mut self, msg: ToOwner) {
        match msg {
            ToOwner::Read {
                max,
                wait,
                only,
                reply,
            } => {
                if *self.abort.borrow() {
                    let _ = reply.send(None);
                    return;
                }
                match self.backlog.read(max, only) {
                    Ok((_, r)) if r.is_empty() && wait => self.waiting = Some((max, only, reply)),
                    Ok((tier, records)) => {
                        let _ = reply.send(Some(Taken { tier, records }));
                    }
                    Err(e) => {
                        self.stats.set_error(format!("reading the queue: {e}"));
                        tracing::error!(destination = %self.name, "reading the queue: {e}");
                        self.waiting = Some((max, only, reply));
                    }
                }
            }
            ToOwner::Done(d) => self.done(d),
        }
    }

    fn done(&mut self, d: Done) {
        let mut accepted = d.accepted;
        if !d.dead.is_empty() {
            let (records, reasons): (Vec<Record>, Vec<(u64, String)>) = d
                .dead
                .into_iter()
                .map(|(r, why)| {
                    let seq = r.seq;
                    (r, (seq, why))
                })
                .unzip();
            match dead_letter(&self.dead_letters, &self.name, &records, &reasons) {
                Ok(path) => {
                    tracing::warn!(
                        destination = %self.name,
                        "{} records refused by the receiver ({}), written to {}",
                        reasons.len(),
                        reasons[0].1,
                        path.display()
                    );
                    self.stats
                        .add_drop(DestinationDrop::DeadLetter, reasons.len() as u64);
                    self.stats.set_error(format!("refused: {}", reasons[0].1));
                    accepted.extend(reasons.iter().map(|(s, _)| *s));
                }
                Err(e) => self
                    .stats
                    .set_error(format!("writing the dead-letter file: {e}")),
            }
        }
        if !accepted.is_empty()
            && let Err(e) = self.backlog.ack(d.tier, &accepted)
        {
            self.stats
                .set_error(format!("acknowledging in the queue: {e}"));
        }
        if d.rewind {
            let _ = self.backlog.rewind();
        }
        self.publish();
        self.note_spilling();
    }

    /// Answers a waiting `Read` if there are records now.
    fn answer_waiting(&mut self) {
        let Some((max, only, reply)) = self.waiting.take() else {
            return;
        };
        if reply.is_closed() {
            return;
        }
        match self.backlog.read(max, only) {
            Ok((tier, records)) if !records.is_empty() => {
                let _ = reply.send(Some(Taken { tier, records }));
            }
            _ => self.waiting = Some((max, only, reply)),
        }
    }

    /// Serves what the sender has asked, without waiting.
    fn serve_ready(&mut self) {
        while let Ok(msg) = self.requests.try_recv() {
            self.serve(msg);
        }
        self.answer_waiting();
    }

    /// Waits for the sender's next message (and serves it), a stop, or `until`.
    fn wait(&mut self, until: Instant) {
        let mut stop = self.stop.clone();
        let requests = &mut self.requests;
        let msg = self.runtime.block_on(async {
            tokio::select! {
                m = requests.recv() => m,
                _ = stop.changed() => None,
                () = tokio::time::sleep_until(until.into()) => None,
            }
        });
        if let Some(m) = msg {
            self.serve(m);
        }
        self.answer_waiting();
    }

    /// Appends what is pending. A full queue under `block` waits (serving the sender, whose
    /// acknowledgements make room) — forever while running, until the grace period ends when
    /// stopping, then what is left counts as `shutdown`. A full disk is waited out the same
    /// way, except in `spill`, where it must not hold the destination up: dropped, counted.
    fn enqueue(&mut self) -> std::io::Result<()> {
        while !self.pending.is_empty() {
            let a = self.backlog.append(&self.pending.records());
            self.pending.take(a.taken);
            if a.to_disk > 0 {
                self.full.cleared(&self.name, &self.stats);
            }
            if a.taken > 0 {
                self.answer_waiting();
            }
            self.publish();
            self.note_spilling();
            if let Some(e) = a.error {
                let stop_at = self.stop_at();
                let io = e.io_error();
                if io.is_some_and(super::disk_full)
                    && self.spill
                    && self.when_full != WhenFull::Block
                {
                    if let Some(io) = io {
                        self.full.note(&self.name, &self.stats, io);
                    }
                    let n = self.pending.clear();
                    self.stats.add_drop(DestinationDrop::DiskFull, n);
                    break;
                }
                if io.is_some_and(|io| self.full.holds(&self.name, &self.stats, io, stop_at)) {
                    self.wait(Instant::now() + super::DISK_FULL_RETRY);
                    continue;
                }
                let n = self.pending.clear();
                let dropped = if io.is_some_and(super::disk_full) {
                    DestinationDrop::Shutdown
                } else {
                    DestinationDrop::WriteError
                };
                self.stats.add_drop(dropped, n);
                if dropped == DestinationDrop::WriteError {
                    return Err(std::io::Error::other(e.to_string()));
                }
                break;
            }
            if self.pending.is_empty() {
                break;
            }
            if self.when_full == WhenFull::DropNewest {
                // Counted by the queue.
                self.pending.clear();
                break;
            }
            if self.past_grace() {
                let n = self.pending.clear();
                self.stats.add_drop(DestinationDrop::Shutdown, n);
                break;
            }
            // `block`: room comes when the sender's receiver takes records.
            self.wait(
                self.stop_at()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1)),
            );
        }
        self.serve_ready();
        Ok(())
    }

    /// The end: serve the sender until the queue is empty or the grace period is over, stop
    /// it, and account for what is left.
    fn finish(&mut self) {
        let grace = self.stop_at().unwrap_or_else(Instant::now);
        // A queue that keeps its records on disk waits only for a receiver that is taking
        // them (or is being reached for the first time); one that would lose them gives the
        // receiver the whole grace period.
        let keeps = self.spill || !self.backlog.memory_primary;
        while self.backlog.held() > 0
            && Instant::now() < grace
            && !self.requests.is_closed()
            && (!keeps || self.stats.state().is_none_or(|s| s.taking()))
        {
            self.wait(grace);
        }
        let _ = self.abort.send(true);
        if let Some((_, _, reply)) = self.waiting.take() {
            let _ = reply.send(None);
        }
        // The sender's last word (what its last send came to), then it ends.
        let until = Instant::now() + Duration::from_secs(2);
        while !self.requests.is_closed() && Instant::now() < until {
            let requests = &mut self.requests;
            let msg = self.runtime.block_on(async {
                tokio::time::timeout_at(until.into(), requests.recv())
                    .await
                    .ok()
                    .flatten()
            });
            match msg {
                Some(m) => self.serve(m),
                None => break,
            }
        }
        // What memory still holds goes to the spill part, or is lost with the process.
        let (moved, lost) = self.backlog.keep_memory();
        if moved > 0 {
            tracing::info!(
                destination = %self.name,
                "{moved} records still queued in memory at stop are kept on disk, sent after the next start"
            );
        }
        if lost > 0 {
            self.stats.add_drop(DestinationDrop::Shutdown, lost);
            tracing::warn!(
                destination = %self.name,
                "{lost} records still queued in memory at stop are dropped"
            );
        }
        self.publish();
    }
}

impl Sink for QueueSink {
    fn write(&mut self, e: &Event, device: &Device) -> std::io::Result<usize> {
        let start = self.pending.buf.len();
        self.encoder.encode(&mut self.pending.buf, e, device);
        self.pending.ends.push(self.pending.buf.len());
        let n = self.pending.buf.len() - start;
        if self.pending.len() >= APPEND_EVERY {
            self.enqueue()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.enqueue()
    }

    fn durable(&mut self) -> std::io::Result<()> {
        self.enqueue()?;
        // The OS error is kept, so a full disk is told apart (and waited out) by the caller.
        self.backlog.sync().map_err(
            |e| match e.io_error().and_then(std::io::Error::raw_os_error) {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::other(e.to_string()),
            },
        )
    }

    fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.requests.poll_recv(cx) {
            Poll::Ready(Some(m)) => {
                self.serve(m);
                self.answer_waiting();
                Poll::Ready(())
            }
            // The sender has ended: nothing more to serve.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn close(&mut self) -> std::io::Result<()> {
        self.closing_at = Some(
            self.stop_at()
                .unwrap_or_else(|| Instant::now() + STOP_GRACE),
        );
        let r = self.enqueue();
        let _ = self.backlog.sync();
        self.finish();
        r
    }
}
