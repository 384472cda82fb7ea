//! Per-group rate limits: at most N events per second per group; the excess is counted and
//! summarised in one entry ("suppressed K events of group G") when the window ends.
//!
//! A window is a wall-clock second. The first event of a new second rolls the window (one
//! compare-and-swap decides who) and writes the previous window's summary if it suppressed
//! anything. A burst followed by silence is summarised at the group's next event, or by
//! [`crate::flush_rate_limits`]. Counting is approximate at the window edge (an event racing
//! the roll may count in either window) and exact otherwise.

use std::sync::atomic::{AtomicU64, Ordering};

use edgelog_core::Level;
use edgelog_core::maps;
use edgelog_core::table::args::ArgWriter;
use edgelog_core::table::{TableWriter, flags};

/// The limiter of one group.
#[derive(Debug)]
pub(crate) struct GroupLimiter {
    group: String,
    per_second: u64,
    summary_id: u32,
    window: AtomicU64,
    count: AtomicU64,
    suppressed: AtomicU64,
    table: &'static TableWriter,
}

impl GroupLimiter {
    pub(crate) fn new(
        module: &str,
        group: &str,
        per_second: u64,
        table: &'static TableWriter,
    ) -> GroupLimiter {
        GroupLimiter {
            group: group.to_owned(),
            per_second,
            summary_id: summary_id(module, group),
            window: AtomicU64::new(0),
            count: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            table,
        }
    }

    /// In the child of a `fork`: the window's counts are the parent's (it summarises them);
    /// the child starts its own.
    pub(crate) fn after_fork(&self) {
        self.window.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.suppressed.store(0, Ordering::Relaxed);
    }

    /// Whether an event at `now_ns` may be written; rolls the window when a second passed.
    #[inline]
    pub(crate) fn admit(&self, now_ns: i64) -> bool {
        let second = (now_ns / 1_000_000_000) as u64;
        let window = self.window.load(Ordering::Relaxed);
        if second != window
            && self
                .window
                .compare_exchange(window, second, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
            self.summarise(now_ns);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < self.per_second {
            return true;
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Writes the summary entry for what was suppressed so far, if anything.
    pub(crate) fn summarise(&self, now_ns: i64) {
        let n = self.suppressed.swap(0, Ordering::AcqRel);
        if n == 0 {
            return;
        }
        let mut buf = [0u8; 96];
        let room = self.table.payload_capacity().min(buf.len());
        let mut w = ArgWriter::new(&mut buf[..room]);
        w.u64(n);
        w.str(&self.group);
        let _ = self.table.append(
            now_ns,
            self.summary_id,
            Level::Notice,
            flags::SUMMARY,
            w.as_bytes(),
        );
    }
}

/// The log ID of a group's summary entries.
pub(crate) fn summary_id(module: &str, group: &str) -> u32 {
    maps::log_id(module, &format!("SUPPRESSED.{group}"))
}

/// The summary's log map.
pub(crate) fn summary_map(module: &str, group: &str) -> maps::LogMap {
    maps::LogMap {
        id: summary_id(module, group),
        level: Level::Notice,
        module: module.to_owned(),
        group: group.to_owned(),
        name: "RATE_LIMIT_SUPPRESSED".into(),
        template: "suppressed {count} events of group {group}".into(),
    }
}
