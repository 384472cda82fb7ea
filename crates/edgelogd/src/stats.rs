//! Counters: what each source received and each destination wrote or dropped, by reason.
//!
//! Every drop anywhere is counted by reason (an invariant): sources count frames, malformed
//! frames, cut frames and lost records; destinations count records written, filtered out and
//! dropped. Counters are relaxed atomics bumped once per batch where possible, kept per
//! component name in a [`Registry`] that outlives reloads, so a source that is reconfigured
//! keeps counting from where it was. The registry takes a typed snapshot of itself
//! ([`edgelog_api::Counters`]) for the control plane, `/metrics` and the shutdown summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use edgelog_api::{
    Counters, DestinationCounters, DestinationDrops, Level, NetworkCounters, SourceCounters,
    TableCounters, TableDrops,
};

/// Why records were lost before they became events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDrop {
    /// The kernel ring overwrote records before we read them (kmsg sequence gap).
    KernelGap,
    /// A library table's writers lapped the daemon's cursor.
    Lapped,
    /// A table slot was torn by a writer that died mid-write.
    Torn,
    /// A watched file shrank or vanished before it was read to the end.
    FileTruncated,
    /// A connection was refused because `max_connections` were open.
    ConnectionLimit,
    /// A chunked GELF message did not complete within 5 s.
    GelfIncomplete,
    /// A partial GELF message was dropped to stay within the reassembly limits.
    GelfEvicted,
    /// A GELF chunk with an impossible header.
    GelfInvalidChunk,
    /// Datagrams the kernel dropped because the socket's receive buffer was full.
    SocketOverflow,
    /// A TLS connection whose handshake failed (no or a wrong client certificate, not TLS).
    TlsHandshake,
    /// An HTTP request refused with a 4xx (bad body, bad token, too large): the sender was
    /// told, nothing of it was taken.
    Rejected,
    /// A datagram source's records the pipeline could not take at once (a destination blocks
    /// it): dropped rather than blocking the senders.
    QueueFull,
    /// An HTTP request answered 503 (Retry-After) because the daemon's budget for bodies in
    /// flight was spent: the sender keeps it and retries.
    Busy,
    /// Like `QueueFull`, while a destination waited for room on a full disk.
    DiskFull,
}

/// Destinations in a disk-full episode now (see [`disk_full_now`]).
static DISK_FULL_EPISODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A destination's disk-full episode begins (`true`) or ends.
pub(crate) fn disk_full_episode(begins: bool) {
    if begins {
        DISK_FULL_EPISODES.fetch_add(1, Relaxed);
    } else {
        DISK_FULL_EPISODES.fetch_sub(1, Relaxed);
    }
}

/// Whether some destination waits for room on a full disk: what a datagram source cannot
/// pass on now is then dropped for that reason.
pub(crate) fn disk_full_now() -> bool {
    DISK_FULL_EPISODES.load(Relaxed) > 0
}

impl SourceDrop {
    const ALL: [SourceDrop; 14] = [
        SourceDrop::KernelGap,
        SourceDrop::Lapped,
        SourceDrop::Torn,
        SourceDrop::FileTruncated,
        SourceDrop::ConnectionLimit,
        SourceDrop::GelfIncomplete,
        SourceDrop::GelfEvicted,
        SourceDrop::GelfInvalidChunk,
        SourceDrop::SocketOverflow,
        SourceDrop::TlsHandshake,
        SourceDrop::Rejected,
        SourceDrop::QueueFull,
        SourceDrop::Busy,
        SourceDrop::DiskFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceDrop::KernelGap => "kernel_gap",
            SourceDrop::Lapped => "lapped",
            SourceDrop::Torn => "torn",
            SourceDrop::FileTruncated => "file_truncated",
            SourceDrop::ConnectionLimit => "connection_limit",
            SourceDrop::GelfIncomplete => "gelf_incomplete",
            SourceDrop::GelfEvicted => "gelf_evicted",
            SourceDrop::GelfInvalidChunk => "gelf_invalid_chunk",
            SourceDrop::SocketOverflow => "socket_overflow",
            SourceDrop::TlsHandshake => "tls_handshake",
            SourceDrop::Rejected => "rejected",
            SourceDrop::QueueFull => "queue_full",
            SourceDrop::Busy => "busy",
            SourceDrop::DiskFull => "disk_full",
        }
    }
}

/// One source's counters.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Frames received (each becomes one record).
    pub received: AtomicU64,
    pub bytes: AtomicU64,
    /// Records whose frame broke its format's grammar (kept raw, with diagnostics).
    pub malformed: AtomicU64,
    /// Frames longer than `max_frame`, cut (the record is kept and flagged).
    pub truncated: AtomicU64,
    /// Stream bytes thrown away after a cut frame.
    pub discarded_bytes: AtomicU64,
    /// Connections open now (a gauge; see [`open_connection`](Self::open_connection)).
    pub connections: AtomicU64,
    dropped: [AtomicU64; SourceDrop::ALL.len()],
}

impl SourceStats {
    /// Counts one open connection until the guard is dropped.
    pub fn open_connection(self: Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Relaxed);
        OpenConnection(self)
    }

    pub fn add_drop(&self, reason: SourceDrop, n: u64) {
        self.dropped[reason as usize].fetch_add(n, Relaxed);
    }

    pub fn dropped(&self, reason: SourceDrop) -> u64 {
        self.dropped[reason as usize].load(Relaxed)
    }

    fn snapshot(&self) -> SourceCounters {
        let received = self.received.load(Relaxed);
        let malformed = self.malformed.load(Relaxed);
        SourceCounters {
            received,
            decoded: received.saturating_sub(malformed),
            bytes: self.bytes.load(Relaxed),
            malformed,
            truncated: self.truncated.load(Relaxed),
            discarded_bytes: self.discarded_bytes.load(Relaxed),
            connections: self.connections.load(Relaxed),
            dropped: SourceDrop::ALL
                .iter()
                .filter(|r| self.dropped(**r) > 0)
                .map(|r| (r.name().to_owned(), self.dropped(*r)))
                .collect(),
        }
    }
}

/// Why a destination did not deliver a record it wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationDrop {
    /// Writing failed (disk full, closed pipe); the error is kept as `last_error`.
    WriteError,
    /// The store's quota evicted a closed file; counted in records.
    Quota,
    /// The destination had stopped (its thread failed) when the router offered a batch.
    Down,
    /// Still waiting for queue room when the daemon stopped.
    Shutdown,
    /// Refused for good by the receiver (an HTTP 4xx other than 429): in the dead-letter file.
    DeadLetter,
    /// Neither the memory nor the disk part of a `spill` queue could take it: the disk was
    /// full (a spill never holds the destination up).
    DiskFull,
}

/// One destination's counters.
#[derive(Debug, Default)]
pub struct DestinationStats {
    pub written: AtomicU64,
    pub bytes: AtomicU64,
    dropped_write_error: AtomicU64,
    dropped_quota: AtomicU64,
    dropped_down: AtomicU64,
    dropped_shutdown: AtomicU64,
    dropped_dead_letter: AtomicU64,
    dropped_disk_full: AtomicU64,
    /// Network destinations: records handed to the transport (resends included), records the
    /// receiver took (out of the queue), records sent again, the receiver's state, and the
    /// queue's level and drops as its last stats said.
    sent: AtomicU64,
    acknowledged: AtomicU64,
    retried: AtomicU64,
    /// The receiver's [`ReceiverState`]; 0 not known yet.
    up: AtomicU8,
    queue: Mutex<Option<edgelog_queue::QueueStats>>,
    /// The disk part of a `spill` queue, once it was opened.
    spill: Mutex<Option<edgelog_queue::QueueStats>>,
    /// The spill part holds records.
    spilling: std::sync::atomic::AtomicBool,
    /// Closed files deleted by the quota.
    pub evicted_files: AtomicU64,
    /// Records whose text had control characters escaped (one record stays one frame).
    pub escaped: AtomicU64,
    /// Records whose header fields had a space or control character replaced by `_`.
    pub header_replaced: AtomicU64,
    /// The destination's disk is full (or failing): it holds its records until there is room.
    pub disk_full: std::sync::atomic::AtomicBool,
    last_error: Mutex<Option<(String, edgelog_core::Timestamp)>>,
}

impl DestinationStats {
    fn counter(&self, reason: DestinationDrop) -> &AtomicU64 {
        match reason {
            DestinationDrop::WriteError => &self.dropped_write_error,
            DestinationDrop::Quota => &self.dropped_quota,
            DestinationDrop::Down => &self.dropped_down,
            DestinationDrop::Shutdown => &self.dropped_shutdown,
            DestinationDrop::DeadLetter => &self.dropped_dead_letter,
            DestinationDrop::DiskFull => &self.dropped_disk_full,
        }
    }

    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Relaxed);
    }

    pub fn add_acknowledged(&self, n: u64) {
        self.acknowledged.fetch_add(n, Relaxed);
    }

    pub fn add_retried(&self, n: u64) {
        self.retried.fetch_add(n, Relaxed);
    }

    /// Sets the receiver's state; returns whether it changed (the first report always does).
    pub fn set_state(&self, state: ReceiverState) -> bool {
        let v = state as u8;
        self.up.swap(v, Relaxed) != v
    }

    /// The destination's state, once known: the receiver's, except that a receiver up while
    /// records wait on disk in the spill part shows `spilling`.
    pub fn state(&self) -> Option<ReceiverState> {
        match self.up.load(Relaxed) {
            1 if self.spilling.load(Relaxed) => Some(ReceiverState::Spilling),
            1 => Some(ReceiverState::Up),
            2 => Some(ReceiverState::Down),
            3 => Some(ReceiverState::Stalled),
            _ => None,
        }
    }

    pub fn set_spilling(&self, spilling: bool) {
        self.spilling.store(spilling, Relaxed);
    }

    /// The queue's stats: its primary (memory or disk) part, and a spill queue's disk part.
    pub fn set_queue(
        &self,
        q: &edgelog_queue::QueueStats,
        spill: Option<&edgelog_queue::QueueStats>,
    ) {
        *self.queue.lock().unwrap_or_else(|e| e.into_inner()) = Some(q.clone());
        if let Some(s) = spill {
            *self.spill.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
        }
    }

    pub fn add_drop(&self, reason: DestinationDrop, n: u64) {
        self.counter(reason).fetch_add(n, Relaxed);
    }

    pub fn dropped(&self, reason: DestinationDrop) -> u64 {
        self.counter(reason).load(Relaxed)
    }

    pub fn set_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((error, edgelog_core::Timestamp::now()));
    }

    fn snapshot(&self) -> DestinationCounters {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let spill = self.spill.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let drops = |q: &Option<edgelog_queue::QueueStats>| {
            q.as_ref().map_or((0, 0, 0), |q| {
                (
                    q.dropped_newest,
                    q.consumers.iter().map(|c| c.evicted).sum::<u64>(),
                    q.corrupt,
                )
            })
        };
        let (queue_full, evicted, corrupt) = drops(&queue);
        // The spill part's evictions are its quota at work.
        let (spill_full, quota, spill_corrupt) = drops(&spill);
        let spilled = spill.as_ref().map_or(Level::default(), |s| Level {
            records: s.records,
            bytes: s.bytes,
        });
        let network = queue.as_ref().map(|q| NetworkCounters {
            queued: Level {
                records: q.records + spilled.records,
                bytes: q.bytes + spilled.bytes,
            },
            spilled,
            sent: self.sent.load(Relaxed),
            acknowledged: self.acknowledged.load(Relaxed),
            acknowledged_through: q.consumers.first().map_or(0, |c| c.acked),
            retried: self.retried.load(Relaxed),
            up: self.state().map(ReceiverState::taking),
            state: self.state().map(|s| s.name().to_owned()),
        });
        DestinationCounters {
            written: self.written.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            network,
            dropped: DestinationDrops {
                write_error: self.dropped(DestinationDrop::WriteError),
                quota: self.dropped(DestinationDrop::Quota) + quota,
                down: self.dropped(DestinationDrop::Down),
                shutdown: self.dropped(DestinationDrop::Shutdown),
                dead_letter: self.dropped(DestinationDrop::DeadLetter),
                disk_full: self.dropped(DestinationDrop::DiskFull),
                queue_full: queue_full + spill_full,
                evicted,
                corrupt: corrupt + spill_corrupt,
            },
            evicted_files: self.evicted_files.load(Relaxed),
            escaped: self.escaped.load(Relaxed),
            disk_full: self.disk_full.load(Relaxed),
            header_replaced: self.header_replaced.load(Relaxed),
            last_error: last.as_ref().map(|(e, _)| e.clone()),
            last_error_time: last.map(|(_, t)| t.to_string()),
        }
    }
}

/// How a network destination's receiver is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverState {
    /// Connected and taking records.
    Up = 1,
    /// Not connected: refused, unreachable, or the connection failed.
    Down = 2,
    /// Connected, but it has taken nothing for `stall_after` while records wait.
    Stalled = 3,
    /// Up, working off a backlog that spilled to disk.
    Spilling = 4,
}

impl ReceiverState {
    pub const ALL: [ReceiverState; 4] = [
        ReceiverState::Up,
        ReceiverState::Down,
        ReceiverState::Stalled,
        ReceiverState::Spilling,
    ];

    /// Whether the receiver is taking records.
    pub fn taking(self) -> bool {
        matches!(self, ReceiverState::Up | ReceiverState::Spilling)
    }

    pub fn name(self) -> &'static str {
        match self {
            ReceiverState::Up => "up",
            ReceiverState::Down => "down",
            ReceiverState::Stalled => "stalled",
            ReceiverState::Spilling => "spilling",
        }
    }
}

/// One connection in its source's `connections` gauge, for as long as it lives.
#[derive(Debug)]
pub struct OpenConnection(Arc<SourceStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Relaxed);
    }
}

/// The daemon's own tables' counters.
#[derive(Debug, Default)]
pub struct TablesStats {
    /// Records appended to a daemon table.
    pub written: AtomicU64,
    /// Records a daemon table could not take because the run directory was full (no table
    /// could be created, or its table had no space reserved).
    pub no_space: AtomicU64,
    /// Records lost to another table error (a file in the way, a write that failed).
    pub error: AtomicU64,
}

impl TablesStats {
    fn snapshot(&self) -> TableCounters {
        TableCounters {
            written: self.written.load(Relaxed),
            dropped: TableDrops {
                no_space: self.no_space.load(Relaxed),
                error: self.error.load(Relaxed),
            },
        }
    }
}

/// Counters by component name; they survive reloads.
#[derive(Debug, Default)]
pub struct Registry {
    sources: Mutex<BTreeMap<String, Arc<SourceStats>>>,
    destinations: Mutex<BTreeMap<String, Arc<DestinationStats>>>,
    pub tables: Arc<TablesStats>,
}

impl Registry {
    pub fn source(&self, name: &str) -> Arc<SourceStats> {
        let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    pub fn destination(&self, name: &str) -> Arc<DestinationStats> {
        let mut map = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    /// What keeps the daemon from doing its whole job now, one reason per line: a full disk,
    /// a receiver that is down or stalled. Empty when all is well.
    pub fn degraded(&self) -> Vec<String> {
        let map = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (name, d) in map.iter() {
            if d.disk_full.load(Relaxed) {
                out.push(format!("destination {name}: disk full, holding records"));
            }
            match d.state() {
                Some(ReceiverState::Down) => out.push(format!("destination {name}: receiver down")),
                Some(ReceiverState::Stalled) => {
                    out.push(format!("destination {name}: receiver stalled"));
                }
                _ => {}
            }
        }
        out
    }

    /// Every counter now, typed (`GET /v1/counters`, `/metrics`, the last log line).
    pub fn snapshot(&self) -> Counters {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let destinations = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
        Counters {
            sources: sources
                .iter()
                .map(|(k, v)| (k.clone(), v.snapshot()))
                .collect(),
            destinations: destinations
                .iter()
                .map(|(k, v)| (k.clone(), v.snapshot()))
                .collect(),
            tables: self.tables.snapshot(),
        }
    }

    /// [`Registry::snapshot`] as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.snapshot()).unwrap_or_default()
    }
}
