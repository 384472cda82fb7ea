//! Checkpoints: where a source with positions (files, tables) is, kept in the state
//! directory so a restart — also after `kill -9` — resumes there.
//!
//! One small JSON object per source at `<state_dir>/checkpoints/<source>.json`, mapping a key
//! (a file's device and inode, a table's path) to the source's position. It is replaced whole
//! with write-to-temporary, fsync and rename, so a crash leaves the old or the new file, never
//! a mix, and the rename is made durable by syncing the directory.
//!
//! A position is saved only once the records before it are durable in every destination: the
//! source [`track`](Checkpoints::track)s its positions with the [`Ticket`] of the burst that
//! carried the records, and [`save`](Checkpoints::save) writes the newest positions whose
//! ticket is done. A `kill -9` at any moment therefore re-reads what was not yet durable
//! downstream, and skips nothing.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::event::Ticket;

#[derive(Debug)]
pub(crate) struct Checkpoints {
    path: PathBuf,
    saved: BTreeMap<String, Value>,
    /// Where the source has read to (not yet durable downstream).
    pub(crate) current: BTreeMap<String, Value>,
    /// Positions waiting for their ticket, oldest first.
    pending: VecDeque<(Arc<Ticket>, BTreeMap<String, Value>)>,
    /// The newest positions whose records are durable everywhere.
    committed: BTreeMap<String, Value>,
}

impl Checkpoints {
    /// Loads the checkpoints of `source` (none if there are none yet; a damaged file is
    /// reported and ignored, which means starting as for new files).
    pub(crate) fn load(state_dir: &Path, source: &str) -> io::Result<Checkpoints> {
        let dir = state_dir.join("checkpoints");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{source}.json"));
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{}: damaged checkpoint file ignored: {e}", path.display());
                BTreeMap::new()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Checkpoints {
            path,
            current: saved.clone(),
            committed: saved.clone(),
            saved,
            pending: VecDeque::new(),
        })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.current.get(key)
    }

    pub(crate) fn set(&mut self, key: String, value: Value) {
        self.current.insert(key, value);
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.current.remove(key);
    }

    /// Whether the positions moved since they were last tracked (or committed).
    pub(crate) fn moved(&self) -> bool {
        let last = self.pending.back().map_or(&self.committed, |(_, p)| p);
        *last != self.current
    }

    /// The positions as they are now will be committed once `ticket` is done.
    pub(crate) fn track(&mut self, ticket: Arc<Ticket>) {
        if self.pending.back().is_some_and(|(_, p)| *p == self.current) {
            // Nothing moved since: the earlier ticket covers it.
            return;
        }
        self.pending.push_back((ticket, self.current.clone()));
    }

    /// Saves the newest positions as soon as their records are durable, waiting for that
    /// until `deadline` at most: a checkpoint that trails the queue by a poll interval would
    /// make a `kill -9` resend that interval's records twice.
    pub(crate) async fn save_by(&mut self, deadline: tokio::time::Instant) -> io::Result<()> {
        if let Some((t, _)) = self.pending.back() {
            let _ = tokio::time::timeout_at(deadline, t.clone().done()).await;
        }
        self.save()
    }

    /// Waits (bounded) for the outstanding tickets, at a stop.
    pub(crate) async fn settle(&mut self, limit: std::time::Duration) -> io::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.back().is_some_and(|(t, _)| !t.is_done())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.save()
    }

    /// Writes the newest committed positions if they changed since the last save.
    pub(crate) fn save(&mut self) -> io::Result<()> {
        while self.pending.front().is_some_and(|(t, _)| t.is_done()) {
            if let Some((_, positions)) = self.pending.pop_front() {
                self.committed = positions;
            }
        }
        if self.committed == self.saved {
            return Ok(());
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, &self.committed)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        self.saved = self.committed.clone();
        Ok(())
    }
}
