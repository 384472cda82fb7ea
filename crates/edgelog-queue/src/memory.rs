//! The memory queue: [`Queue`] semantics in a bounded `VecDeque`, for destinations that
//! trade durability for speed. An appended batch is copied once into one buffer whose slices
//! are the records, so appending costs one allocation per batch and reading none. Everything is "durable" as soon as it is appended, since
//! nothing survives a restart anyway.

use std::collections::VecDeque;

use crate::{Acks, Appended, Queue, QueueError, QueueStats, Record, WhenFull};

/// See the module documentation.
#[derive(Debug)]
pub struct MemoryQueue {
    records: VecDeque<Record>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    when_full: WhenFull,
    next_seq: u64,
    consumers: Vec<Acks>,
    dropped_newest: u64,
}

impl MemoryQueue {
    /// A queue holding at most `max_records` records and `max_bytes` payload bytes, read by
    /// `consumers`.
    pub fn new(
        max_records: usize,
        max_bytes: usize,
        when_full: WhenFull,
        consumers: &[&str],
    ) -> MemoryQueue {
        MemoryQueue {
            records: VecDeque::new(),
            bytes: 0,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            when_full,
            next_seq: 1,
            consumers: consumers.iter().map(|n| Acks::new(n, 0)).collect(),
            dropped_newest: 0,
        }
    }

    fn consumer(&mut self, c: usize) -> Result<&mut Acks, QueueError> {
        crate::acks_mut(&mut self.consumers, c)
    }

    /// Drops records every consumer has acknowledged.
    fn trim(&mut self) {
        let done = self
            .consumers
            .iter()
            .map(|c| c.acked)
            .min()
            .unwrap_or(u64::MAX);
        while self.records.front().is_some_and(|r| r.seq <= done) {
            if let Some(r) = self.records.pop_front() {
                self.bytes -= r.payload.len();
            }
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.records.len() < self.max_records && self.bytes + len <= self.max_bytes
    }
}

impl Queue for MemoryQueue {
    fn append(&mut self, records: &[&[u8]]) -> Result<Appended, QueueError> {
        let mut out = Appended {
            first_seq: self.next_seq,
            ..Appended::default()
        };
        let payloads = crate::shared_slices(records);
        for (i, (r, payload)) in records.iter().zip(payloads).enumerate() {
            if r.len() > self.max_bytes {
                return Err(QueueError::TooLarge(r.len(), self.max_bytes));
            }
            while !self.fits(r.len()) && self.when_full == WhenFull::DropOldest {
                let Some(old) = self.records.pop_front() else {
                    break;
                };
                self.bytes -= old.payload.len();
                for c in &mut self.consumers {
                    c.evict_through(old.seq);
                }
            }
            if !self.fits(r.len()) {
                out.refused = records.len() - i;
                if self.when_full == WhenFull::DropNewest {
                    self.dropped_newest += out.refused as u64;
                }
                break;
            }
            self.bytes += r.len();
            self.records.push_back(Record {
                seq: self.next_seq,
                payload,
            });
            self.next_seq += 1;
            out.taken += 1;
        }
        Ok(out)
    }

    fn read(
        &mut self,
        consumer: usize,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError> {
        // Records acknowledged out of order may since have joined the prefix.
        let c = self.consumer(consumer)?;
        let from = c.read_next.max(c.acked + 1);
        let start = self
            .records
            .front()
            .map_or(0, |f| from.saturating_sub(f.seq) as usize);
        let mut out = Vec::new();
        let mut bytes = 0;
        let c = &self.consumers[consumer];
        // Records acknowledged out of order are not read again after a rewind.
        for r in self
            .records
            .iter()
            .skip(start)
            .filter(|r| !c.beyond.contains(&r.seq))
        {
            if out.len() >= max_records || (!out.is_empty() && bytes + r.payload.len() > max_bytes)
            {
                break;
            }
            bytes += r.payload.len();
            out.push(r.clone());
        }
        if let Some(last) = out.last() {
            self.consumers[consumer].read_next = last.seq + 1;
        }
        Ok(out)
    }

    fn ack(&mut self, consumer: usize, seqs: &[u64]) -> Result<(), QueueError> {
        let next = self.next_seq;
        if self.consumer(consumer)?.ack(seqs, next) {
            self.trim();
        }
        Ok(())
    }

    fn rewind(&mut self, consumer: usize) -> Result<(), QueueError> {
        self.consumer(consumer)?.rewind();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), QueueError> {
        Ok(())
    }

    fn durable_seq(&self) -> u64 {
        self.next_seq - 1
    }

    fn held(&self) -> u64 {
        self.records.len() as u64
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            records: self.records.len() as u64,
            bytes: self.bytes as u64,
            next_seq: self.next_seq,
            dropped_newest: self.dropped_newest,
            corrupt: 0,
            consumers: self
                .consumers
                .iter()
                .map(|c| c.stats(self.next_seq))
                .collect(),
        }
    }
}
