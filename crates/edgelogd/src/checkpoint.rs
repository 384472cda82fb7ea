//! Checkpoints: where a source with positions (files, tables) is, kept in the state
//! directory so a restart — also after `kill -9` — resumes there.
//!
//! One small JSON object per source at `<state_dir>/checkpoints/<source>.json`, mapping a key
//! (a file's device and inode, a table's path) to the source's position. It is replaced whole
//! with write-to-temporary, fsync and rename, so a crash leaves the old or the new file, never
//! a mix, and the rename is made durable by syncing the directory. A source saves after each
//! batch it handed on, and only when something moved.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    saved: BTreeMap<String, Value>,
    pub(crate) current: BTreeMap<String, Value>,
}

impl Checkpoints {
    /// Loads the checkpoints of `source` (none if there are none yet; a damaged file is
    /// reported and ignored, which means starting as for new files).
    pub fn load(state_dir: &Path, source: &str) -> io::Result<Checkpoints> {
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
            saved,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.current.get(key)
    }

    pub fn set(&mut self, key: String, value: Value) {
        self.current.insert(key, value);
    }

    pub fn remove(&mut self, key: &str) {
        self.current.remove(key);
    }

    /// Writes the checkpoints if they changed since the last save.
    pub fn save(&mut self) -> io::Result<()> {
        if self.current == self.saved {
            return Ok(());
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, &self.current)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        self.saved = self.current.clone();
        Ok(())
    }
}
