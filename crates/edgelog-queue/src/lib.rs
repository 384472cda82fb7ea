//! edgelog's queues: where records wait between the daemon's router and a destination's
//! receiver, so that nothing is lost while a receiver is slow, down, or the device restarts.
//!
//! Two implementations of one interface, [`Queue`]:
//!
//! - [`DiskQueue`] — a segmented append-only log on disk, each record framed with its length,
//!   a CRC-32 and its sequence number ([`disk`] draws the layout and gives the recovery
//!   rules). It survives `kill -9`, and power loss up to its fsync policy.
//! - [`MemoryQueue`] — the same semantics in memory, bounded, for destinations that trade
//!   durability for speed.
//!
//! Both number records with a sequence number (1, 2, …, never reused) and keep one cursor per
//! consumer (destination). A consumer reads forward from its read position; it acknowledges
//! what its receiver accepted, in any order — the cursor is the acknowledged *prefix*, so a
//! record is gone from a consumer's view only when it and everything before it is
//! acknowledged, and what was read but not acknowledged is read again after [`Queue::rewind`]
//! (a reconnect) or a restart. A record leaves the queue when every consumer has acknowledged
//! it. A full queue does what its [`WhenFull`] says: refuse (the caller blocks its input),
//! drop the newest, or evict the oldest — and every record it drops or evicts is counted,
//! per consumer.

pub mod disk;
mod memory;

use std::fmt;

pub use disk::{DiskOptions, DiskQueue, Recovery};
pub use memory::MemoryQueue;

/// What a full queue does with records that do not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Take nothing; the caller waits and retries (back-pressure to the sources).
    #[default]
    Block,
    /// Drop the records that do not fit (counted).
    DropNewest,
    /// Make room by evicting the oldest records, acknowledged or not (counted per consumer).
    DropOldest,
}

impl std::str::FromStr for WhenFull {
    type Err = String;

    fn from_str(s: &str) -> Result<WhenFull, String> {
        match s {
            "block" => Ok(WhenFull::Block),
            "drop_newest" => Ok(WhenFull::DropNewest),
            "drop_oldest" => Ok(WhenFull::DropOldest),
            _ => Err(format!(
                "unknown when_full {s:?}: expected block, drop_newest or drop_oldest"
            )),
        }
    }
}

/// One queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    /// Shared, not copied: reading a record from the memory queue costs a reference count.
    pub payload: bytes::Bytes,
}

/// What [`Queue::append`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    /// Records taken, numbered `first_seq ..first_seq + taken`.
    pub taken: usize,
    pub first_seq: u64,
    /// Records not taken: with [`WhenFull::Block`] the caller still has them and should retry;
    /// with [`WhenFull::DropNewest`] they are dropped (and counted).
    pub refused: usize,
}

/// Counters and levels of a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Records held (not yet acknowledged by every consumer) and their bytes.
    pub records: u64,
    pub bytes: u64,
    /// The next sequence number to be given.
    pub next_seq: u64,
    /// Records dropped because the queue was full (`drop_newest`).
    pub dropped_newest: u64,
    /// Records lost to corruption on disk (never replayed; the cursors pass them).
    pub corrupt: u64,
    pub consumers: Vec<ConsumerStats>,
}

/// One consumer's view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerStats {
    pub name: String,
    /// Every record up to this one is acknowledged.
    pub acked: u64,
    /// Records not yet acknowledged.
    pub pending: u64,
    /// Records evicted (`drop_oldest`) before this consumer acknowledged them.
    pub evicted: u64,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Corrupt { path: String, what: String },
    #[error("a record of {0} bytes is larger than the queue allows ({1} bytes)")]
    TooLarge(usize, usize),
    #[error("{0}: the queue is open elsewhere (another destination or process holds its lock)")]
    InUse(String),
    #[error("unknown consumer {0}")]
    UnknownConsumer(usize),
}

impl QueueError {
    /// The I/O error beneath, if this is one (a full disk is back-pressure to the caller).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            QueueError::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> QueueError {
        QueueError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The queue interface both implementations offer. See the crate documentation.
pub trait Queue: Send + fmt::Debug {
    /// Appends a batch; records are numbered in order. With a full queue, what does not fit is
    /// refused, dropped or makes room, per [`WhenFull`].
    fn append(&mut self, records: &[&[u8]]) -> Result<Appended, QueueError>;

    /// Up to `max_records` (and about `max_bytes`, at least one record) from `consumer`'s read
    /// position, which moves past them.
    fn read(
        &mut self,
        consumer: usize,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError>;

    /// Acknowledges records for `consumer`, in any order. Sequence numbers already
    /// acknowledged or never given are ignored.
    fn ack(&mut self, consumer: usize, seqs: &[u64]) -> Result<(), QueueError>;

    /// Moves `consumer`'s read position back to its first unacknowledged record, so what was
    /// read and not acknowledged is read again (after a reconnect).
    fn rewind(&mut self, consumer: usize) -> Result<(), QueueError>;

    /// Makes everything appended so far durable (a no-op in memory).
    fn sync(&mut self) -> Result<(), QueueError>;

    /// The highest sequence number that is durable: up to it, a crash loses nothing.
    fn durable_seq(&self) -> u64;

    /// Records held: not yet acknowledged by every consumer (cheap, unlike [`Queue::stats`]).
    fn held(&self) -> u64;

    fn stats(&self) -> QueueStats;
}

/// The records of a batch copied into one allocation, each a shared slice of it: a batch
/// costs one allocation, and reading a record back a reference count.
pub(crate) fn shared_slices<'r>(records: &'r [&[u8]]) -> impl Iterator<Item = bytes::Bytes> + 'r {
    let mut all = bytes::BytesMut::with_capacity(records.iter().map(|r| r.len()).sum());
    for r in records {
        all.extend_from_slice(r);
    }
    let all = all.freeze();
    let mut at = 0;
    records.iter().map(move |r| {
        let slice = all.slice(at..at + r.len());
        at += r.len();
        slice
    })
}

/// Per-consumer acknowledgement state: the acknowledged prefix and what was acknowledged
/// beyond it, out of order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Acks {
    pub(crate) name: String,
    /// Everything up to and including this sequence number is acknowledged.
    pub(crate) acked: u64,
    pub(crate) beyond: std::collections::BTreeSet<u64>,
    /// The next sequence number `read` returns.
    pub(crate) read_next: u64,
    pub(crate) evicted: u64,
    /// Records evicted while they were read and not yet acknowledged (in flight to the
    /// receiver): counted as evicted, unless the receiver acknowledges them after all — then
    /// they were delivered, and the count is taken back, so that delivered + evicted is exact.
    in_flight_evicted: std::collections::BTreeSet<u64>,
}

/// Consumer `c` of `consumers`, or the error naming it.
pub(crate) fn acks_mut(consumers: &mut [Acks], c: usize) -> Result<&mut Acks, QueueError> {
    consumers.get_mut(c).ok_or(QueueError::UnknownConsumer(c))
}

impl Acks {
    pub(crate) fn new(name: &str, acked: u64) -> Acks {
        Acks {
            name: name.to_owned(),
            acked,
            beyond: Default::default(),
            read_next: acked + 1,
            evicted: 0,
            in_flight_evicted: Default::default(),
        }
    }

    /// Records `seqs` (those below `next_seq`); returns whether the prefix moved.
    pub(crate) fn ack(&mut self, seqs: &[u64], next_seq: u64) -> bool {
        let before = self.acked;
        for &s in seqs {
            if s == self.acked + 1 && s < next_seq {
                // In order, the common case: no set to keep.
                self.acked = s;
            } else if s > self.acked && s < next_seq {
                self.beyond.insert(s);
            } else if self.in_flight_evicted.remove(&s) {
                // Evicted while on its way, and the receiver has it: delivered, not lost.
                self.evicted -= 1;
            }
        }
        while self.beyond.remove(&(self.acked + 1)) {
            self.acked += 1;
        }
        self.acked != before
    }

    /// Everything up to `seq` is gone (evicted): counts what this consumer had not
    /// acknowledged and moves past it.
    pub(crate) fn evict_through(&mut self, seq: u64) {
        if seq <= self.acked {
            return;
        }
        let acked_beyond = self.beyond.range(..=seq).count() as u64;
        self.evicted += seq - self.acked - acked_beyond;
        let read_through = seq.min(self.read_next.saturating_sub(1));
        for s in self.acked + 1..=read_through {
            if !self.beyond.contains(&s) {
                self.in_flight_evicted.insert(s);
            }
        }
        self.beyond = self.beyond.split_off(&(seq + 1));
        self.acked = seq;
        while self.beyond.remove(&(self.acked + 1)) {
            self.acked += 1;
        }
        self.read_next = self.read_next.max(self.acked + 1);
    }

    /// The consumer reads again from its first unacknowledged record: what was in flight will
    /// not be acknowledged any more, so what of it was evicted stays counted.
    pub(crate) fn rewind(&mut self) {
        self.read_next = self.acked + 1;
        self.in_flight_evicted.clear();
    }

    pub(crate) fn stats(&self, next_seq: u64) -> ConsumerStats {
        ConsumerStats {
            name: self.name.clone(),
            acked: self.acked,
            pending: next_seq
                .saturating_sub(self.acked + 1)
                .saturating_sub(self.beyond.len() as u64),
            evicted: self.evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_advance_over_the_acknowledged_prefix_only() {
        let mut a = Acks::new("d", 0);
        assert!(!a.ack(&[2, 3], 10));
        assert_eq!(a.acked, 0);
        assert!(a.ack(&[1], 10));
        assert_eq!(a.acked, 3);
        assert!(
            !a.ack(&[3, 2, 99], 10),
            "old and unknown sequence numbers are ignored"
        );
        assert_eq!(a.stats(10).pending, 6);
        a.ack(&[6], 10);
        a.evict_through(5);
        // 4 and 5 were never acknowledged: evicted; 6 was, so the prefix moves over it.
        assert_eq!((a.acked, a.evicted), (6, 2));
    }

    #[test]
    fn a_record_evicted_in_flight_and_then_acknowledged_was_delivered_not_evicted() {
        let mut a = Acks::new("d", 0);
        a.read_next = 6; // 1..=5 read, on their way
        a.evict_through(8);
        assert_eq!(a.evicted, 8);
        a.ack(&[1, 2, 3], 20);
        assert_eq!(a.evicted, 5, "three of the evicted reached the receiver");
        a.ack(&[3], 20);
        assert_eq!(a.evicted, 5, "an acknowledgement counts once");
        a.rewind();
        a.ack(&[4], 20);
        assert_eq!(
            a.evicted, 5,
            "after a rewind nothing in flight is taken back"
        );
    }
}
