//! The control API's types: what `edgelogd` serves on its control socket and what the
//! `edgelog` CLI and `/metrics` read from it.
//!
//! One typed snapshot per source and destination, built by the daemon from its counters and
//! serialized as the JSON of `GET /v1/counters`; the CLI deserializes the same types, and the
//! Prometheus rendering walks them — nobody reads a counter back by a string key or parses
//! display text. The JSON field names are the contract scripts depend on: a field is added,
//! never renamed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /v1/counters`: every source's and destination's counters, and the daemon's tables'.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub sources: BTreeMap<String, SourceCounters>,
    pub destinations: BTreeMap<String, DestinationCounters>,
    pub tables: TableCounters,
}

/// One source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceCounters {
    /// Frames received (each becomes one record).
    pub received: u64,
    /// Records that parsed by their format's grammar (`received - malformed`).
    pub decoded: u64,
    pub bytes: u64,
    /// Records whose frame broke its grammar (kept raw, with diagnostics).
    pub malformed: u64,
    /// Frames longer than `max_frame`, cut (the record is kept and flagged).
    pub truncated: u64,
    /// Bytes skipped while resynchronising a stream.
    pub discarded_bytes: u64,
    /// Connections open now.
    pub connections: u64,
    /// Records (or connections, requests) lost, by reason; only reasons that happened.
    pub dropped: BTreeMap<String, u64>,
}

/// One destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DestinationCounters {
    /// Records the destination took (encoded into its queue, or written).
    pub written: u64,
    pub bytes: u64,
    /// Network destinations: the queue and the receiver.
    pub network: Option<NetworkCounters>,
    pub dropped: DestinationDrops,
    /// Closed store files deleted by the quota.
    pub evicted_files: u64,
    /// Records whose text had control characters escaped.
    pub escaped: u64,
    /// The destination's disk is full (or failing): it holds its records until there is room.
    pub disk_full: bool,
    /// Records whose header fields had a space or control character replaced by `_`.
    pub header_replaced: u64,
    pub last_error: Option<String>,
    pub last_error_time: Option<String>,
}

/// A network destination's queue and receiver.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkCounters {
    /// Records waiting (memory and disk), and of those, on disk in a spill queue.
    pub queued: Level,
    pub spilled: Level,
    /// Records handed to the transport (resends included).
    pub sent: u64,
    /// Records the receiver took (out of the queue).
    pub acknowledged: u64,
    /// The queue's sequence number up to which the receiver has everything.
    pub acknowledged_through: u64,
    /// Records put back to be sent again.
    pub retried: u64,
    /// Whether the receiver takes records (`None` before the first attempt).
    pub up: Option<bool>,
    /// `up`, `spilling`, `down` or `stalled` (`None` before the first attempt).
    pub state: Option<String>,
}

/// Records and bytes held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub records: u64,
    pub bytes: u64,
}

/// Why a destination did not deliver records it took, each a count of records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DestinationDrops {
    pub write_error: u64,
    /// The store's quota (records in deleted files) or a spill queue's disk quota.
    pub quota: u64,
    /// The destination had stopped when the router offered a batch.
    pub down: u64,
    /// Still waiting for room when the daemon stopped.
    pub shutdown: u64,
    /// Refused for good by the receiver: in the dead-letter file.
    pub dead_letter: u64,
    /// Neither part of a spill queue could take them: the disk was full.
    pub disk_full: u64,
    /// A full queue with `drop_newest`.
    pub queue_full: u64,
    /// Evicted by a full memory or disk queue with `drop_oldest`.
    pub evicted: u64,
    /// Lost to corruption on disk.
    pub corrupt: u64,
}

impl DestinationDrops {
    /// Every reason with its count, in a fixed order.
    pub fn by_reason(&self) -> [(&'static str, u64); 9] {
        [
            ("write_error", self.write_error),
            ("quota", self.quota),
            ("down", self.down),
            ("shutdown", self.shutdown),
            ("dead_letter", self.dead_letter),
            ("disk_full", self.disk_full),
            ("queue_full", self.queue_full),
            ("evicted", self.evicted),
            ("corrupt", self.corrupt),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }
}

/// The daemon's own tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableCounters {
    /// Records appended to a daemon table.
    pub written: u64,
    pub dropped: TableDrops,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableDrops {
    /// The run directory was full.
    pub no_space: u64,
    /// Another table error.
    pub error: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_keeps_its_field_names() {
        let mut c = Counters::default();
        c.destinations.insert(
            "central".into(),
            DestinationCounters {
                network: Some(NetworkCounters {
                    state: Some("up".into()),
                    ..NetworkCounters::default()
                }),
                ..DestinationCounters::default()
            },
        );
        let v = serde_json::to_value(&c).unwrap();
        let d = &v["destinations"]["central"];
        for key in ["written", "dropped", "network", "disk_full", "last_error"] {
            assert!(d.get(key).is_some(), "{key}: {v}");
        }
        assert_eq!(d["network"]["queued"]["records"], 0);
        assert_eq!(d["dropped"]["quota"], 0);
        assert_eq!(v["tables"]["dropped"]["no_space"], 0);
        let back: Counters = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
