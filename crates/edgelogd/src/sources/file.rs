//! `file`: follows log files that programs write themselves (the hypervisor, qemu), by glob.
//!
//! A file is known by its identity (device and inode), not its name, which is what makes
//! rotation work both ways:
//!
//! - **rename** (`app.log` → `app.log.1`, a new `app.log` created): the open descriptor still
//!   reads the old file, which is read to its end and then let go; the new file at the
//!   path is a new identity and is read from its beginning. A renamed file that still matches
//!   a glob keeps its identity and position, so it is never read twice.
//! - **copy-truncate** (the file is copied away and cut to zero): the size drops below our
//!   position; reading restarts at 0 and the event is counted (`file_truncated`), since lines
//!   written between our last read and the cut may have gone with the copy.
//!
//! Position per identity is checkpointed in the state directory once the records before it are
//! durable downstream, round by round (each round reads at most 256 KiB of each file, and a
//! file with more to read gets the next round at once), so a restart — also after `kill -9`
//! — resumes where it was: nothing is lost, and at most the last round is read again. `start_at` applies only to files seen
//! for the first time at start; a file that appears later is new and read from its beginning.
//!
//! Globs: `*`, `?` and `[…]` in the last path component (`/var/log/xen/*.log`). Lines are
//! LF-delimited frames (`max_frame` bounds one) decoded with the source's `format` — `raw` by
//! default, as most such files are plain text. The app name is the configured `app_name`, in
//! which `{file}` stands for the file's name without its extension (`qemu-dm-{file}`), or the
//! file's stem when none is configured.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use edgelog_codec::{Framer, Framing};
use serde_json::json;

use std::sync::Arc;

use crate::checkpoint::Checkpoints;
use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

pub(crate) const TYPE: SourceType = SourceType {
    name: "file",
    // Watched files are mostly plain text.
    format: edgelog_codec::FormatHint::Raw,
    read,
};

/// `type = "file"`.
#[derive(Debug, Clone, PartialEq)]
struct FileSource {
    /// Globs, relative to the config file's directory.
    paths: Vec<String>,
    start_at_beginning: bool,
    poll_interval: Duration,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<Arc<dyn SourceSpec>> {
    let paths = s.required(d, "paths", |v| {
        let paths = reader::strings(v)?;
        match paths.iter().find(|p| wildcard_in_directory(p)) {
            Some(p) => Err(format!(
                "{p:?}: wildcards are supported in the file name only, not in directories"
            )),
            None if paths.is_empty() => Err("no paths given".to_owned()),
            None => Ok(paths),
        }
    });
    let start = s
        .value(d, "start_at", reader::one_of(&["beginning", "end"]))
        .unwrap_or_else(|| "end".into());
    let poll_interval = s
        .value(d, "poll_interval", reader::positive_duration)
        .unwrap_or(Duration::from_millis(250));
    Some(Arc::new(FileSource {
        paths: paths?
            .into_iter()
            .map(|p| dirs.config_dir.join(p).to_string_lossy().into_owned())
            .collect(),
        start_at_beginning: start == "beginning",
        poll_interval,
    }))
}

/// Whether a path has glob characters in a directory component (unsupported).
fn wildcard_in_directory(pattern: &str) -> bool {
    let dir = Path::new(pattern)
        .parent()
        .map(|p| p.to_string_lossy().into_owned());
    dir.is_some_and(|d| d.contains(['*', '?', '[']))
}

impl SourceSpec for FileSource {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn describe(&self) -> String {
        format!("files {}", self.paths.join(", "))
    }

    /// Records are named per file (`{file}` in the configured `app_name`), by the watcher.
    fn app_name(&self, _configured: Option<&str>) -> Option<String> {
        None
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let watcher = Watcher::new(
            cx.name,
            self.paths.clone(),
            self.start_at_beginning,
            cx.max_frame,
            cx.app_name.map(str::to_owned),
            cx.state_dir,
        )?;
        Ok(tokio::spawn(run(
            watcher,
            self.poll_interval,
            cx.ingest,
            cx.stop,
        )))
    }
}

/// Bytes read from one file per round, so one fast writer cannot starve the others. A file
/// with more to read gets another round at once, not after the poll interval.
const READ_PER_POLL: usize = 256 * 1024;

/// A glob: a literal directory and a pattern for the names in it.
#[derive(Debug, Clone)]
struct Pattern {
    dir: PathBuf,
    name: String,
}

/// Shell-style match of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class(&pattern[p..], name[n]),
            Some(&c) if c == name[n] => Some(1),
            _ => None,
        };
        match step {
            Some(len) => {
                p += len;
                n += 1;
            }
            None => match star {
                // Let the last `*` take one more byte and retry.
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pattern`; returns the class's length.
fn class(pattern: &[u8], c: u8) -> Option<usize> {
    let end = pattern.iter().skip(2).position(|&b| b == b']')? + 2;
    let body = &pattern[1..end];
    let (negate, body) = match body.first() {
        Some(b'!' | b'^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == b'-' {
            hit |= (body[i]..=body[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    (hit != negate).then_some(end + 1)
}

/// The identity of a file: device and inode.
type Id = (u64, u64);

fn key(id: Id) -> String {
    format!("{}:{}", id.0, id.1)
}

#[derive(Debug)]
struct Tracked {
    path: PathBuf,
    file: File,
    /// Bytes handed on as frames: where a restart resumes.
    offset: u64,
    /// Read but not yet a whole line.
    buf: Vec<u8>,
    framer: Framer,
    /// The path no longer leads to this file: read it to its end, then let go.
    rotated: bool,
    app: String,
}

#[derive(Debug)]
struct Watcher {
    patterns: Vec<Pattern>,
    start_at_beginning: bool,
    max_frame: usize,
    app_template: Option<String>,
    checkpoints: Checkpoints,
    files: HashMap<Id, Tracked>,
    first_scan: bool,
}

impl Watcher {
    fn new(
        name: &str,
        paths: Vec<String>,
        start_at_beginning: bool,
        max_frame: usize,
        app_template: Option<String>,
        state_dir: &Path,
    ) -> anyhow::Result<Watcher> {
        let patterns = paths
            .iter()
            .map(|p| {
                let path = Path::new(p);
                Pattern {
                    dir: path
                        .parent()
                        .map_or_else(|| PathBuf::from("."), Path::to_owned),
                    name: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                }
            })
            .collect();
        let mut w = Watcher {
            patterns,
            start_at_beginning,
            max_frame,
            app_template,
            checkpoints: Checkpoints::load(state_dir, name)
                .with_context(|| format!("loading checkpoints of source {name:?}"))?,
            files: HashMap::new(),
            first_scan: true,
        };
        // The first scan belongs to the start: "the end" is where the files are when the
        // daemon says it is ready, not when the loop first runs.
        w.scan();
        Ok(w)
    }

    fn app_for(&self, path: &Path) -> String {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &self.app_template {
            Some(t) => t.replace("{file}", &stem),
            None => stem,
        }
    }

    /// Every path the globs match now, with its identity and size.
    fn matches(&self) -> Vec<(PathBuf, Id, u64)> {
        let mut out = Vec::new();
        for p in &self.patterns {
            let Ok(entries) = std::fs::read_dir(&p.dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if !glob_match(p.name.as_bytes(), name.as_encoded_bytes()) {
                    continue;
                }
                let path = e.path();
                if let Ok(m) = std::fs::metadata(&path)
                    && m.is_file()
                {
                    out.push((path, (m.dev(), m.ino()), m.size()));
                }
            }
        }
        out
    }

    /// Picks up new files, notices renames and rotations.
    fn scan(&mut self) {
        let found = self.matches();
        let live: HashMap<Id, &PathBuf> = found.iter().map(|(p, id, _)| (*id, p)).collect();
        for (id, t) in self.files.iter_mut() {
            match live.get(id) {
                Some(p) => t.path = (*p).clone(),
                None => t.rotated = true,
            }
        }
        for (path, id, size) in &found {
            if self.files.contains_key(id) {
                continue;
            }
            let Ok(mut file) = File::open(path) else {
                continue;
            };
            let saved = self
                .checkpoints
                .get(&key(*id))
                .and_then(|v| v["offset"].as_u64());
            let offset = match saved {
                Some(o) if o <= *size => o,
                Some(_) => 0,
                None if self.first_scan && !self.start_at_beginning => *size,
                None => 0,
            };
            if file.seek(SeekFrom::Start(offset)).is_err() {
                continue;
            }
            let app = self.app_for(path);
            tracing::debug!("following {} from byte {offset}", path.display());
            self.files.insert(
                *id,
                Tracked {
                    path: path.clone(),
                    file,
                    offset,
                    buf: Vec::new(),
                    framer: Framer::new(Framing::Lf, self.max_frame),
                    rotated: false,
                    app,
                },
            );
            self.checkpoints
                .set(key(*id), json!({"offset": offset, "path": path}));
        }
        self.first_scan = false;
    }
}

/// What one round of reading a file found.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Rotated away and read to its end.
    done: bool,
    /// Not read to its end: the round's share ran out first.
    more: bool,
}

/// Reads what `t` gained (at most a round's share) and hands its lines to `ingest`.
async fn follow(t: &mut Tracked, ingest: &mut Ingest) -> Result<Round, crate::ingest::Closed> {
    ingest.set_app_name(Some(&t.app));
    let read_pos = t.offset + t.buf.len() as u64;
    if let Ok(m) = t.file.metadata()
        && m.size() < read_pos
    {
        // Copy-truncate: what was cut before we read it went with the copy.
        ingest.stats().add_drop(SourceDrop::FileTruncated, 1);
        tracing::info!(
            "{} was truncated; reading it from the start",
            t.path.display()
        );
        ingest.stream(&mut t.framer, &mut t.buf, true, None).await?;
        t.buf.clear();
        t.offset = 0;
        t.framer = Framer::new(Framing::Lf, t.framer.max_frame());
        let _ = t.file.seek(SeekFrom::Start(0));
    }
    let mut chunk = [0u8; 64 * 1024];
    let mut total = 0;
    let mut at_end = false;
    while total < READ_PER_POLL {
        match t.file.read(&mut chunk) {
            Ok(0) => {
                at_end = true;
                break;
            }
            Ok(n) => {
                t.buf.extend_from_slice(&chunk[..n]);
                total += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("reading {}: {e}", t.path.display());
                at_end = true;
                break;
            }
        }
        let before = t.buf.len();
        ingest
            .stream(&mut t.framer, &mut t.buf, false, None)
            .await?;
        t.offset += (before - t.buf.len()) as u64;
    }
    // A rotated file gets no more lines: its unterminated tail is its last line.
    let done = t.rotated && at_end;
    if done && !t.buf.is_empty() {
        let before = t.buf.len();
        ingest.stream(&mut t.framer, &mut t.buf, true, None).await?;
        t.offset += (before - t.buf.len()) as u64;
    }
    Ok(Round {
        done,
        more: !at_end,
    })
}

async fn run(mut w: Watcher, interval: Duration, mut ingest: Ingest, mut stop: Stop) {
    let mut busy = false;
    loop {
        if !busy {
            w.scan();
        }
        busy = false;
        let ids: Vec<Id> = w.files.keys().copied().collect();
        for id in ids {
            let Some(t) = w.files.get_mut(&id) else {
                continue;
            };
            let Ok(Round { done, more }) = follow(t, &mut ingest).await else {
                return;
            };
            busy |= more;
            if ingest.flush().await.is_err() {
                return;
            }
            let (offset, path) = (t.offset, t.path.clone());
            if done {
                tracing::debug!("{} rotated away and read to its end", path.display());
                w.files.remove(&id);
                w.checkpoints.remove(&key(id));
            } else {
                w.checkpoints
                    .set(key(id), json!({"offset": offset, "path": path}));
            }
        }
        match super::end_round(&mut w.checkpoints, &mut ingest, interval, busy, &mut stop).await {
            super::Round::Next => {}
            super::Round::Stop => break,
            super::Round::Gone => return,
        }
    }
    super::settle_checkpoints(&mut w.checkpoints, &ingest).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_wildcards_are_detected() {
        assert!(wildcard_in_directory("/var/log/*/x.log"));
        assert!(!wildcard_in_directory("/var/log/xen/*.log"));
    }

    #[test]
    fn globs_match_like_the_shell() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert!(m("*.log", "xen.log"));
        assert!(m("*.log", ".log"));
        assert!(!m("*.log", "xen.log.1"));
        assert!(m("*.log*", "xen.log.1"));
        assert!(m("qemu-dm-*.log", "qemu-dm-vm1.log"));
        assert!(!m("qemu-dm-*.log", "qemu-vm1.log"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("log.[0-9]", "log.7"));
        assert!(!m("log.[!0-9]", "log.7"));
        assert!(m("log.[!0-9]", "log.x"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxbxxa"));
        assert!(m("plain", "plain"));
        assert!(!m("plain", "plainer"));
    }
}
