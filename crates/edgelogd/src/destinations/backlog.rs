//! Where a network destination's records wait: a primary queue (memory or disk) and, for
//! `spill`, a disk part that takes over when the memory part is full.
//!
//! While the memory part has room and the disk part is empty, records go to memory; once
//! memory is full they go to the disk part (`<state_dir>/queues/<name>`, opened at the first
//! spill) and keep going there until it has drained, so they are always read in the order
//! they came: the memory part first, then the disk part, and a batch never mixes the two. The
//! disk part has its own quota and `when_full`. At a stop what memory still holds is written to
//! the disk part ([`Backlog::keep_memory`]), so an orderly restart loses nothing.

use std::path::PathBuf;

use edgelog_queue::disk::DiskOptions;
use edgelog_queue::{Appended, DiskQueue, Queue, QueueError, QueueStats, Record, WhenFull};

use super::network::{QueueConfig, QueueKind};

/// The most a batch for the sender holds, in payload bytes.
pub(super) const READ_BYTES: usize = 4 << 20;

/// Which part of a [`Backlog`] records came from (a batch never mixes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tier {
    Primary,
    Spill,
}

/// Where a destination's records wait: the primary queue, and for `spill` a disk queue that
/// takes over when the primary is full.
#[derive(Debug)]
pub(super) struct Backlog {
    primary: Box<dyn Queue>,
    /// The primary is in memory: what it holds at a stop is kept in the spill part, or lost.
    pub(super) memory_primary: bool,
    spill: Option<Spill>,
}

#[derive(Debug)]
struct Spill {
    dir: PathBuf,
    opts: DiskOptions,
    /// Opened at the first spill (or at start, when an earlier run left records).
    queue: Option<DiskQueue>,
}

/// What [`Backlog::append`] did: the records taken, those refused for want of room, and an
/// error that stopped it (after `taken` records went in).
#[derive(Debug, Default)]
pub(super) struct Appending {
    pub(super) taken: usize,
    /// Of those, the records a disk queue took (a sign the disk has room).
    pub(super) to_disk: usize,
    pub(super) refused: usize,
    pub(super) error: Option<QueueError>,
}

impl Backlog {
    /// Opens the queue `cfg` describes for destination `name`.
    pub(super) fn open(
        name: &str,
        cfg: &QueueConfig,
        state_dir: &std::path::Path,
    ) -> anyhow::Result<Backlog> {
        let dir = state_dir.join("queues").join(name);
        let disk_opts = |max_bytes: u64| DiskOptions {
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(64 << 10, 16 << 20),
            fsync: cfg.fsync,
            when_full: cfg.when_full,
            ..DiskOptions::default()
        };
        let memory = |when_full| {
            Box::new(edgelog_queue::MemoryQueue::new(
                cfg.max_records,
                cfg.max_bytes as usize,
                when_full,
                &["send"],
            ))
        };
        Ok(match cfg.kind {
            QueueKind::Memory => Backlog {
                primary: memory(cfg.when_full),
                memory_primary: true,
                spill: None,
            },
            QueueKind::Disk => Backlog {
                primary: Box::new(open_disk(name, &dir, disk_opts(cfg.max_bytes))?),
                memory_primary: false,
                spill: None,
            },
            QueueKind::Spill => {
                // A full memory part refuses, and the rest goes to disk.
                let mut spill = Spill {
                    queue: None,
                    opts: disk_opts(cfg.spill_max_bytes),
                    dir,
                };
                if spill.dir.exists() {
                    spill.queue = Some(open_disk(name, &spill.dir, spill.opts.clone())?);
                }
                Backlog {
                    primary: memory(WhenFull::Block),
                    memory_primary: true,
                    spill: Some(spill),
                }
            }
        })
    }

    /// Records held on disk by the spill part.
    pub(super) fn spilled(&self) -> u64 {
        self.spill
            .as_ref()
            .and_then(|s| s.queue.as_ref())
            .map_or(0, Queue::held)
    }

    pub(super) fn held(&self) -> u64 {
        self.primary.held() + self.spilled()
    }

    /// Appends in order: to the primary while the spill part is empty, then to the spill part.
    pub(super) fn append(&mut self, records: &[&[u8]]) -> Appending {
        let mut out = Appending::default();
        if self.spilled() == 0 {
            match self.primary.append(records) {
                Ok(Appended { taken, refused, .. }) => {
                    out.taken = taken;
                    out.refused = refused;
                    if !self.memory_primary {
                        out.to_disk = taken;
                    }
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
            if out.refused == 0 || self.spill.is_none() {
                return out;
            }
        }
        let a = self.append_spill(&records[out.taken..]);
        Appending {
            taken: out.taken + a.taken,
            to_disk: a.taken,
            refused: a.refused,
            error: a.error,
        }
    }

    /// Up to `max` records for the sender: the primary's first, then the spill part's; only
    /// from `only` when given (to extend a batch without mixing parts).
    pub(super) fn read(
        &mut self,
        max: usize,
        only: Option<Tier>,
    ) -> Result<(Tier, Vec<Record>), QueueError> {
        if only != Some(Tier::Spill) {
            let r = self.primary.read(0, max, READ_BYTES)?;
            if !r.is_empty() || only == Some(Tier::Primary) {
                return Ok((Tier::Primary, r));
            }
        }
        match self.spill.as_mut().and_then(|s| s.queue.as_mut()) {
            Some(q) => Ok((Tier::Spill, q.read(0, max, READ_BYTES)?)),
            None => Ok((Tier::Primary, Vec::new())),
        }
    }

    fn part(&mut self, tier: Tier) -> Option<&mut dyn Queue> {
        match tier {
            Tier::Primary => Some(self.primary.as_mut()),
            Tier::Spill => self
                .spill
                .as_mut()
                .and_then(|s| s.queue.as_mut())
                .map(|q| q as &mut dyn Queue),
        }
    }

    pub(super) fn ack(&mut self, tier: Tier, seqs: &[u64]) -> Result<(), QueueError> {
        self.part(tier).map_or(Ok(()), |q| q.ack(0, seqs))
    }

    /// What was read and not acknowledged is read again, in order.
    pub(super) fn rewind(&mut self) -> Result<(), QueueError> {
        self.primary.rewind(0)?;
        self.part(Tier::Spill).map_or(Ok(()), |q| q.rewind(0))
    }

    pub(super) fn sync(&mut self) -> Result<(), QueueError> {
        self.primary.sync()?;
        self.part(Tier::Spill).map_or(Ok(()), Queue::sync)
    }

    /// The primary's stats, and the spill part's when it is open.
    pub(super) fn stats(&self) -> (QueueStats, Option<QueueStats>) {
        let spill = self
            .spill
            .as_ref()
            .and_then(|s| s.queue.as_ref())
            .map(Queue::stats);
        (self.primary.stats(), spill)
    }

    /// At a stop: what a memory primary still holds (read or not) goes to the spill part,
    /// synced. Returns the records kept that way and the records lost with the process. A disk
    /// primary keeps its records itself.
    pub(super) fn keep_memory(&mut self) -> (u64, u64) {
        if !self.memory_primary {
            return (0, 0);
        }
        let mut left = Vec::new();
        let _ = self.primary.rewind(0);
        while let Ok(batch) = self.primary.read(0, 4096, usize::MAX) {
            if batch.is_empty() {
                break;
            }
            let seqs: Vec<u64> = batch.iter().map(|r| r.seq).collect();
            let _ = self.primary.ack(0, &seqs);
            left.extend(batch);
        }
        let payloads: Vec<&[u8]> = left.iter().map(|r| &r.payload[..]).collect();
        let mut kept = 0;
        while kept < payloads.len() && self.spill.is_some() {
            let a = self.append_spill(&payloads[kept..]);
            kept += a.taken;
            if a.taken == 0 {
                break;
            }
        }
        let _ = self.sync();
        (kept as u64, (payloads.len() - kept) as u64)
    }

    /// Appends to the spill part (opening it at the first spill).
    fn append_spill(&mut self, records: &[&[u8]]) -> Appending {
        let mut out = Appending {
            refused: records.len(),
            ..Appending::default()
        };
        let Some(spill) = &mut self.spill else {
            return out;
        };
        let queue = match &mut spill.queue {
            Some(q) => q,
            None => match DiskQueue::open(&spill.dir, spill.opts.clone(), &["send"]) {
                Ok((q, _)) => spill.queue.insert(q),
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            },
        };
        match queue.append(records) {
            Ok(a) => {
                out.taken = a.taken;
                out.to_disk = a.taken;
                out.refused = a.refused;
            }
            Err(e) => out.error = Some(e),
        }
        out
    }
}

/// Opens a disk queue and says what its recovery found.
fn open_disk(name: &str, dir: &std::path::Path, opts: DiskOptions) -> anyhow::Result<DiskQueue> {
    use anyhow::Context as _;
    let (q, recovery) = DiskQueue::open(dir, opts, &["send"])
        .with_context(|| format!("opening the disk queue {}", dir.display()))?;
    for p in &recovery.problems {
        tracing::warn!(destination = name, "queue recovery: {p}");
    }
    if q.held() > 0 {
        tracing::info!(
            destination = name,
            "disk queue holds {} records from before; they are sent first",
            q.held()
        );
    }
    Ok(q)
}
