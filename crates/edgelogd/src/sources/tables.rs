//! `tables`: follows every edgelog library table in the run directory.
//!
//! Each poll rescans the run directory (a new BD or module appears without a restart), reads
//! what every table gained since the last poll, formats the entries with their BD's log maps
//! and sends them on as records: app name = BD, MSGID = the event name, the message as the
//! operator sees it in `show log table`, and `module`, `group`, `log_id` and the named
//! arguments as fields. Entries the writers overwrote before we read them are counted as
//! `lapped`, slots torn by a writer that died as `torn`. Positions are checkpointed per table
//! (keyed by path, tagged with the table's creation time so a recreated table starts over).
//! The daemon's own BD is skipped: its tables are this daemon's output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use edgelog_codec::{Format, Message, Pri};
use edgelog_core::maps::{self, LogMap};
use edgelog_core::table::{Cursor, TableReader, find_tables};
use edgelog_core::{Facility, Value};
use serde_json::json;

use std::sync::Arc;

use crate::checkpoint::Checkpoints;
use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::reader::{self, Diagnostics, Section};
use crate::destinations::tables as dtables;
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

pub(crate) const TYPE: SourceType = SourceType {
    name: "tables",
    format: edgelog_codec::FormatHint::Auto,
    read: |d, s, _| read(d, s),
};

/// `type = "tables"`.
#[derive(Debug, Clone, PartialEq)]
struct TablesSource {
    poll_interval: Duration,
}

fn read(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> Option<Arc<dyn SourceSpec>> {
    let poll_interval = s.value(d, "poll_interval", reader::positive_duration);
    Some(Arc::new(TablesSource {
        poll_interval: poll_interval.unwrap_or(Duration::from_millis(100)),
    }))
}

impl SourceSpec for TablesSource {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn describe(&self) -> String {
        "library tables in the run directory".to_owned()
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let follower = Follower::new(cx.name, cx.run_dir, cx.state_dir)?;
        Ok(tokio::spawn(run(
            follower,
            self.poll_interval,
            cx.ingest,
            cx.stop,
        )))
    }
}

/// Entries read from one table per poll (one batch), so one busy table cannot starve the
/// others and a poll's memory is bounded.
const PER_POLL: usize = crate::ingest::BATCH_MAX;

struct Followed {
    bd: String,
    reader: TableReader,
    cursor: Cursor,
    created: i64,
}

struct Follower {
    run_dir: PathBuf,
    checkpoints: Checkpoints,
    followed: HashMap<PathBuf, Followed>,
    maps: HashMap<String, Vec<LogMap>>,
}

impl Follower {
    fn new(name: &str, run_dir: &Path, state_dir: &Path) -> anyhow::Result<Follower> {
        Ok(Follower {
            run_dir: run_dir.to_owned(),
            checkpoints: Checkpoints::load(state_dir, name)?,
            followed: HashMap::new(),
            maps: HashMap::new(),
        })
    }

    fn rescan(&mut self) {
        let Ok(found) = find_tables(&self.run_dir) else {
            return;
        };
        self.followed.retain(|p, _| p.exists());
        for t in found {
            if t.bd == dtables::BD || self.followed.contains_key(&t.path) {
                continue;
            }
            let Ok(reader) = TableReader::open(&t.path) else {
                continue;
            };
            let created = reader.info().created.as_unix_nanos();
            let key = t.path.to_string_lossy().into_owned();
            let cursor = match self.checkpoints.get(&key) {
                Some(v) if v["created"].as_i64() == Some(created) => {
                    // Per lane, as `Cursor::position` gives it.
                    let next: Vec<u64> = v["next"]
                        .as_array()
                        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
                        .unwrap_or_default();
                    Cursor::at(&reader, &next)
                }
                _ => Cursor::at_oldest(&reader),
            };
            tracing::debug!(
                "following table {} from entries {:?}",
                t.path.display(),
                cursor.position()
            );
            self.followed.insert(
                t.path,
                Followed {
                    bd: t.bd,
                    reader,
                    cursor,
                    created,
                },
            );
        }
    }

    fn maps_for(&mut self, bd: &str, id: u32) -> &[LogMap] {
        let known = self
            .maps
            .get(bd)
            .is_some_and(|m| m.iter().any(|m| m.id == id));
        if !known {
            // The BD may have published new events since we last read its maps.
            self.maps
                .insert(bd.to_owned(), maps::read_bd(&self.run_dir, bd));
        }
        &self.maps[bd]
    }

    /// Reads new entries of the table at `path` into `ingest` (at most a round's share);
    /// returns whether it has more.
    fn poll(&mut self, path: &Path, ingest: &mut Ingest) -> bool {
        {
            let Some(t) = self.followed.get_mut(path) else {
                return false;
            };
            let poll = t.cursor.poll(&t.reader, PER_POLL);
            let more = t.cursor.behind(&t.reader);
            let (bd, module) = (t.bd.clone(), t.reader.info().module.clone());
            let key = path.to_string_lossy().into_owned();
            let position = json!({"created": t.created, "next": t.cursor.position()});
            ingest.stats().add_drop(SourceDrop::Lapped, poll.lapped);
            ingest.stats().add_drop(SourceDrop::Torn, poll.torn);
            for entry in &poll.entries {
                let f = maps::format_entry(entry, self.maps_for(&bd, entry.log_id));
                let mut msg = Message::new(Format::Raw);
                msg.pri = Some(Pri {
                    facility: Facility::Daemon,
                    severity: entry.level,
                });
                msg.timestamp = Some(entry.time);
                msg.app_name = Some(bd.clone().into());
                msg.msg_id = f.map.as_ref().map(|m| m.name.clone().into());
                msg.fields
                    .push(("module".into(), Value::from(module.clone())));
                msg.fields
                    .push(("group".into(), Value::from(f.group().to_owned())));
                msg.fields
                    .push(("log_id".into(), Value::U64(u64::from(entry.log_id))));
                for (name, value) in f.args {
                    msg.fields.push((name.into(), value));
                }
                msg.message = Some(f.message.into());
                let stats = ingest.stats();
                stats.received.fetch_add(1, Relaxed);
                stats.bytes.fetch_add(entry.args.len() as u64, Relaxed);
                ingest.push_message(msg, edgelog_core::Timestamp::now());
            }
            self.checkpoints.set(key, position);
            more
        }
    }
}

async fn run(mut f: Follower, interval: Duration, mut ingest: Ingest, mut stop: Stop) {
    let mut busy = false;
    loop {
        if !busy {
            f.rescan();
        }
        busy = false;
        let paths: Vec<PathBuf> = f.followed.keys().cloned().collect();
        for path in paths {
            busy |= f.poll(&path, &mut ingest);
            if ingest.flush().await.is_err() {
                return;
            }
        }
        match super::end_round(&mut f.checkpoints, &mut ingest, interval, busy, &mut stop).await {
            super::Round::Next => {}
            super::Round::Stop => break,
            super::Round::Gone => return,
        }
    }
    super::settle_checkpoints(&mut f.checkpoints, &ingest).await;
}
