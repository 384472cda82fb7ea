//! GELF UDP chunking and reassembly.
//!
//! ```text
//! chunk = 1e 0f | message id (8 bytes) | seq (1) | count (1) | data…
//!         magic                            0-based   1..=128
//! ```
//!
//! A payload larger than one datagram is split into at most 128 chunks sharing a message id.
//! The receiver keeps partial messages until every chunk has arrived, in any order, with
//! duplicates ignored. Partial messages are bounded three ways, all counted in
//! [`ReassemblyStats`]: a message not complete 5 s after its first chunk expires; when holding a
//! new message would exceed the cap on messages or bytes in flight, the oldest partial message
//! is evicted. Memory is therefore bounded by configuration, whatever arrives.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The two bytes that open a chunk.
pub const MAGIC: [u8; 2] = [0x1e, 0x0f];
/// Magic, id, sequence number and count.
pub const HEADER_LEN: usize = 12;
/// The most chunks one message may have.
pub const MAX_CHUNKS: usize = 128;

/// Whether a datagram is a GELF chunk.
pub fn is_chunk(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[..2] == MAGIC
}

/// A payload too large for 128 chunks of the given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub payload: usize,
    pub max: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GELF payload of {} bytes exceeds 128 chunks ({} bytes)",
            self.payload, self.max
        )
    }
}

impl std::error::Error for TooLarge {}

/// Splits `payload` into datagrams of at most `max_datagram` bytes (header included). A payload
/// that fits is returned as one unchunked datagram. Common sizes: 8192 on a LAN, 1420 across
/// a WAN (Graylog's clients use these).
pub fn split(payload: &[u8], max_datagram: usize, id: [u8; 8]) -> Result<Vec<Vec<u8>>, TooLarge> {
    if payload.len() <= max_datagram {
        return Ok(vec![payload.to_vec()]);
    }
    let room = max_datagram.saturating_sub(HEADER_LEN).max(1);
    let count = payload.len().div_ceil(room);
    if count > MAX_CHUNKS {
        return Err(TooLarge {
            payload: payload.len(),
            max: room * MAX_CHUNKS,
        });
    }
    Ok(payload
        .chunks(room)
        .enumerate()
        .map(|(seq, data)| {
            let mut d = Vec::with_capacity(HEADER_LEN + data.len());
            d.extend_from_slice(&MAGIC);
            d.extend_from_slice(&id);
            d.push(seq as u8);
            d.push(count as u8);
            d.extend_from_slice(data);
            d
        })
        .collect())
}

/// Makes message ids: a random per-process seed mixed with a counter, so ids do not repeat
/// within a process and are unlikely to collide across senders.
#[derive(Debug)]
pub struct IdGenerator {
    seed: u64,
    counter: u64,
}

impl Default for IdGenerator {
    fn default() -> IdGenerator {
        use std::hash::{BuildHasher, RandomState};
        IdGenerator {
            seed: RandomState::new().hash_one(std::process::id()),
            counter: 0,
        }
    }
}

impl IdGenerator {
    /// The next id.
    pub fn next_id(&mut self) -> [u8; 8] {
        self.counter = self.counter.wrapping_add(1);
        // splitmix64 of seed + counter: distinct for every counter value.
        let mut z = self
            .seed
            .wrapping_add(self.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_be_bytes()
    }
}

/// Bounds on partial messages.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A message not complete this long after its first chunk is dropped (spec: 5 s).
    pub timeout: Duration,
    /// Partial messages held at once.
    pub max_messages: usize,
    /// Chunk bytes held at once.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(5),
            max_messages: 1024,
            max_bytes: 32 << 20,
        }
    }
}

/// What happened to partial messages and bad chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Messages reassembled from chunks.
    pub completed: u64,
    /// Partial messages dropped after the timeout.
    pub expired: u64,
    /// Partial messages dropped to stay within the limits.
    pub evicted: u64,
    /// Chunks received twice (ignored).
    pub duplicates: u64,
    /// Chunks with an impossible header (count 0 or > 128, seq >= count, a count that
    /// disagrees with earlier chunks of the id, or larger than the byte limit).
    pub invalid: u64,
}

/// The outcome of [`Reassembler::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Push<'a> {
    /// A whole payload: the datagram itself if it was not chunked, or the reassembled chunks.
    Complete(Cow<'a, [u8]>),
    /// A chunk was stored; its message is not complete yet.
    Pending,
    /// A chunk seen before; ignored.
    Duplicate,
    /// A malformed chunk; ignored.
    Invalid,
}

#[derive(Debug)]
struct Partial {
    first_seen: Instant,
    parts: Vec<Option<Box<[u8]>>>,
    received: usize,
    bytes: usize,
}

/// Reassembles chunked GELF messages. See the module documentation.
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    pending: HashMap<[u8; 8], Partial>,
    /// Ids in order of first arrival; entries of finished messages are skipped lazily.
    order: VecDeque<([u8; 8], Instant)>,
    bytes: usize,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler with the given limits.
    pub fn new(limits: Limits) -> Reassembler {
        Reassembler {
            limits,
            pending: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Partial messages held now.
    pub fn pending_messages(&self) -> usize {
        self.pending.len()
    }

    /// Chunk bytes held now.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Takes one datagram received at `now`.
    pub fn push<'a>(&mut self, datagram: &'a [u8], now: Instant) -> Push<'a> {
        self.expire(now);
        if !is_chunk(datagram) {
            return Push::Complete(Cow::Borrowed(datagram));
        }
        let id: [u8; 8] = datagram[2..10].try_into().unwrap_or_default();
        let (seq, count) = (datagram[10] as usize, datagram[11] as usize);
        let data = &datagram[HEADER_LEN..];
        if count == 0 || count > MAX_CHUNKS || seq >= count || data.len() > self.limits.max_bytes {
            self.stats.invalid += 1;
            return Push::Invalid;
        }
        if count == 1 {
            self.stats.completed += 1;
            return Push::Complete(Cow::Borrowed(data));
        }
        if !self.pending.contains_key(&id) {
            while self.pending.len() >= self.limits.max_messages
                || self.bytes + data.len() > self.limits.max_bytes
            {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            self.pending.insert(
                id,
                Partial {
                    first_seen: now,
                    parts: vec![None; count],
                    received: 0,
                    bytes: 0,
                },
            );
            self.order.push_back((id, now));
        } else {
            while self.bytes + data.len() > self.limits.max_bytes {
                if !self.evict_oldest(Some(id)) {
                    break;
                }
            }
        }
        let Some(p) = self.pending.get_mut(&id) else {
            return Push::Invalid;
        };
        if p.parts.len() != count {
            self.stats.invalid += 1;
            return Push::Invalid;
        }
        if p.parts[seq].is_some() {
            self.stats.duplicates += 1;
            return Push::Duplicate;
        }
        p.parts[seq] = Some(data.into());
        p.received += 1;
        p.bytes += data.len();
        self.bytes += data.len();
        if p.received < count {
            return Push::Pending;
        }
        let Some(p) = self.pending.remove(&id) else {
            return Push::Invalid;
        };
        self.bytes -= p.bytes;
        self.stats.completed += 1;
        let mut out = Vec::with_capacity(p.bytes);
        for part in p.parts.into_iter().flatten() {
            out.extend_from_slice(&part);
        }
        Push::Complete(Cow::Owned(out))
    }

    /// Drops partial messages older than the timeout; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&(id, seen)) = self.order.front() {
            let live = self.pending.get(&id).is_some_and(|p| p.first_seen == seen);
            if live && now.saturating_duration_since(seen) < self.limits.timeout {
                break;
            }
            self.order.pop_front();
            if live {
                self.drop_partial(id);
                self.stats.expired += 1;
                n += 1;
            }
        }
        n
    }

    /// Evicts the oldest partial message other than `keep`; false when there is none.
    fn evict_oldest(&mut self, keep: Option<[u8; 8]>) -> bool {
        let pending = &self.pending;
        let victim = self.order.iter().position(|(id, seen)| {
            Some(*id) != keep && pending.get(id).is_some_and(|p| p.first_seen == *seen)
        });
        let Some((id, _)) = victim.and_then(|pos| self.order.remove(pos)) else {
            return false;
        };
        self.drop_partial(id);
        self.stats.evicted += 1;
        true
    }

    fn drop_partial(&mut self, id: [u8; 8]) {
        if let Some(p) = self.pending.remove(&id) {
            self.bytes -= p.bytes;
        }
    }
}
