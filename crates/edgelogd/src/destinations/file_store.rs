//! `file_store`: the local archive — the embedded default's destination, and EVE's on-disk
//! log keeping.
//!
//! ```text
//! <path>/current.log                          being written (current.jsonl for JSON lines)
//! <path>/20261122T081500.123456789Z_n4096.log.gz   closed: start time, record count, gzip
//! ```
//!
//! One line per record. The current file is closed when it reaches `max_file_size` or
//! `max_file_age`: it is synced, renamed to its start time and record count, and (with
//! `compress`) gzipped into place, the uncompressed copy removed only once the compressed one
//! is synced. Names sort by time, so the oldest closed file is the first by name; when the
//! store exceeds `max_bytes` the oldest closed files are deleted, and the records in them —
//! known from the name, without reading the file — are counted as quota drops. A restart
//! appends to `current.*`, counting the records it already holds, so nothing is lost or
//! renumbered.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use edgelog_core::Timestamp;
use flate2::Compression;
use flate2::write::GzEncoder;

use std::time::Duration;

use anyhow::Context as _;

use crate::component::{Built, DestinationSpec, DestinationStart, DestinationType, Sink};
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::event::{Device, Event};
use crate::output::{Encoder, OutputFormat};
use crate::stats::{DestinationDrop, DestinationStats};

pub(crate) const TYPE: DestinationType = DestinationType {
    name: "file_store",
    read,
};

/// `type = "file_store"`: the local archive.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FileStoreConfig {
    /// In the state directory when relative.
    pub path: PathBuf,
    pub format: OutputFormat,
    /// Rotate the current file when it reaches this size…
    pub max_file_size: u64,
    /// …or this age.
    pub max_file_age: Duration,
    /// Gzip closed files.
    pub compress: bool,
    /// The whole store's quota; the oldest closed files are deleted (and counted) beyond it.
    pub max_bytes: u64,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<Arc<dyn DestinationSpec>> {
    let path = s
        .value(d, "path", reader::string)
        .unwrap_or_else(|| "store".into());
    let format = OutputFormat::read(d, s, &[OutputFormat::Rfc5424, OutputFormat::Json]);
    let max_file_size = s
        .value(d, "max_file_size", reader::positive_size)
        .unwrap_or(16 << 20)
        .max(4096);
    let max_file_age = s
        .value(d, "max_file_age", reader::positive_duration)
        .unwrap_or(Duration::from_secs(3600));
    let compress = s.value(d, "compress", reader::boolean).unwrap_or(true);
    let max_bytes = s
        .value(d, "max_bytes", reader::positive_size)
        .unwrap_or(256 << 20);
    Some(Arc::new(FileStoreConfig {
        path: dirs.state_dir.join(path),
        format,
        max_file_size,
        max_file_age,
        compress,
        max_bytes,
    }))
}

impl DestinationSpec for FileStoreConfig {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn endpoint(&self) -> String {
        self.path.display().to_string()
    }

    fn how(&self) -> String {
        format!(
            "{}, rotate at {} bytes or {:?}, quota {} bytes{}",
            self.format.name(),
            self.max_file_size,
            self.max_file_age,
            self.max_bytes,
            if self.compress { ", gzip" } else { "" }
        )
    }

    fn breakable_framing(&self) -> Option<&'static str> {
        self.format.is_text().then_some("the store's lines")
    }

    fn local_store(&self) -> bool {
        true
    }

    fn build(&self, cx: DestinationStart<'_>) -> anyhow::Result<Built> {
        let (cfg, escape, stats) = (self.clone(), cx.escape, cx.stats);
        Ok(Built::local(Box::new(move || {
            let store = FileStore::open(&cfg, escape, stats)
                .with_context(|| format!("opening store {}", cfg.path.display()))?;
            Ok(Box::new(store) as Box<dyn Sink>)
        })))
    }
}

#[derive(Debug)]
pub(super) struct FileStore {
    cfg: FileStoreConfig,
    ext: &'static str,
    stats: Arc<DestinationStats>,
    out: BufWriter<File>,
    /// Bytes and records in the current file.
    size: u64,
    records: u64,
    started: Timestamp,
    opened: Instant,
    line: Vec<u8>,
    encoder: Encoder,
}

/// A closed file's record count, from its name (`…_n<count>.<ext>[.gz]`).
fn records_in(name: &str) -> u64 {
    name.rsplit_once("_n")
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl FileStore {
    pub(super) fn open(
        cfg: &FileStoreConfig,
        escape: edgelog_codec::escape::Escape,
        stats: Arc<DestinationStats>,
    ) -> io::Result<FileStore> {
        fs::create_dir_all(&cfg.path)?;
        let ext = match cfg.format {
            OutputFormat::Json => "jsonl",
            _ => "log",
        };
        let current = cfg.path.join(format!("current.{ext}"));
        let (size, records) = match File::open(&current) {
            Ok(f) => {
                let size = f.metadata()?.len();
                let records = BufReader::new(f).split(b'\n').count() as u64;
                (size, records)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&current)?;
        let mut store = FileStore {
            cfg: cfg.clone(),
            ext,
            encoder: Encoder::new(cfg.format, escape, stats.clone()),
            stats,
            out: BufWriter::with_capacity(128 * 1024, file),
            size,
            records,
            started: Timestamp::now(),
            opened: Instant::now(),
            line: Vec::with_capacity(1024),
        };
        store.enforce_quota()?;
        Ok(store)
    }

    fn current(&self) -> PathBuf {
        self.cfg.path.join(format!("current.{}", self.ext))
    }

    /// Closed files, oldest first, with their sizes.
    fn closed(&self) -> io::Result<Vec<(PathBuf, String, u64)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.cfg.path)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("current.") || name.ends_with(".tmp") || !name.contains("_n") {
                continue;
            }
            out.push((e.path(), name, e.metadata()?.len()));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Deletes the oldest closed files while the store is over its quota.
    fn enforce_quota(&mut self) -> io::Result<()> {
        let closed = self.closed()?;
        let mut total: u64 = self.size + closed.iter().map(|c| c.2).sum::<u64>();
        for (path, name, len) in closed {
            if total <= self.cfg.max_bytes {
                break;
            }
            fs::remove_file(&path)?;
            total -= len;
            let lost = records_in(&name);
            self.stats.add_drop(DestinationDrop::Quota, lost);
            self.stats.evicted_files.fetch_add(1, Relaxed);
            tracing::info!(
                "store {}: quota of {} bytes reached, deleted {name} ({lost} records)",
                self.cfg.path.display(),
                self.cfg.max_bytes
            );
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.records == 0 {
            self.opened = Instant::now();
            return Ok(());
        }
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        // Names must be unique (a rename onto an older file would lose it) and sort by time:
        // the start time to the nanosecond, moved on while a file of that name exists.
        let closed = loop {
            let utc = self.started.to_jiff().to_zoned(jiff::tz::TimeZone::UTC);
            let stamp = jiff::fmt::strtime::format("%Y%m%dT%H%M%S%.9fZ", &utc)
                .unwrap_or_else(|_| self.started.as_unix_nanos().to_string());
            let path = self
                .cfg
                .path
                .join(format!("{stamp}_n{}.{}", self.records, self.ext));
            if !path.exists() && !path.with_extension(format!("{}.gz", self.ext)).exists() {
                break path;
            }
            self.started = Timestamp::from_unix_nanos(self.started.as_unix_nanos() + 1);
        };
        fs::rename(self.current(), &closed)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.current())?;
        self.out = BufWriter::with_capacity(128 * 1024, file);
        self.size = 0;
        self.records = 0;
        self.started = Timestamp::now();
        self.opened = Instant::now();
        if self.cfg.compress {
            compress(&closed)?;
        }
        sync_dir(&self.cfg.path)?;
        self.enforce_quota()
    }
}

/// Gzips `path` into `path.gz` (via a temporary, synced before the rename) and removes it.
fn compress(path: &Path) -> io::Result<()> {
    let gz = path.with_extension(format!(
        "{}.gz",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let tmp = gz.with_extension("gz.tmp");
    let mut enc = GzEncoder::new(File::create(&tmp)?, Compression::default());
    io::copy(&mut File::open(path)?, &mut enc)?;
    enc.finish()?.sync_all()?;
    fs::rename(&tmp, &gz)?;
    fs::remove_file(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Sink for FileStore {
    fn write(&mut self, e: &Event, device: &Device) -> io::Result<usize> {
        self.line.clear();
        self.encoder.encode(&mut self.line, e, device);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.size += self.line.len() as u64;
        self.records += 1;
        Ok(self.line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.size >= self.cfg.max_file_size
            || (self.records > 0 && self.opened.elapsed() >= self.cfg.max_file_age)
        {
            self.rotate()?;
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgelog_codec::escape::Escape;
    use edgelog_codec::{Decoder, FormatHint, Mode, rfc3164::Context};
    use std::io::Read as _;
    use std::time::Duration;

    fn event(n: usize) -> Event {
        let d = Decoder::new(
            FormatHint::Auto,
            Mode::Lenient,
            Context::utc(Timestamp::now()),
        );
        let line =
            format!("<13>1 2026-11-22T08:00:00Z host app - - - record {n:06} padding padding");
        Event::new(
            d.decode(line.as_bytes()).into_owned(),
            "test".into(),
            Timestamp::now(),
        )
    }

    fn cfg(dir: &Path, max_file_size: u64, max_bytes: u64) -> FileStoreConfig {
        FileStoreConfig {
            path: dir.join("store"),
            format: OutputFormat::Rfc5424,
            max_file_size,
            max_file_age: Duration::from_secs(3600),
            compress: true,
            max_bytes,
        }
    }

    /// Every record number found in the store, in file order.
    fn stored(dir: &Path) -> Vec<usize> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        // Dated names sort by time, and `current.*` after every date: file order is time order.
        names.sort();
        let mut out = Vec::new();
        for p in names {
            let mut text = String::new();
            let f = File::open(&p).unwrap();
            if p.extension().is_some_and(|e| e == "gz") {
                flate2::read::GzDecoder::new(f)
                    .read_to_string(&mut text)
                    .unwrap();
            } else {
                BufReader::new(f).read_to_string(&mut text).unwrap();
            }
            for line in text.lines() {
                let n = line.split("record ").nth(1).unwrap()[..6].parse().unwrap();
                out.push(n);
            }
        }
        out
    }

    #[test]
    fn rotates_by_size_compresses_and_keeps_every_record_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(DestinationStats::default());
        let mut s = FileStore::open(
            &cfg(dir.path(), 4096, 1 << 30),
            Escape::Octal,
            stats.clone(),
        )
        .unwrap();
        let device = Device::default();
        for n in 0..500 {
            s.write(&event(n), &device).unwrap();
            s.tick().unwrap();
        }
        s.close().unwrap();
        let names: Vec<String> = fs::read_dir(dir.path().join("store"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().filter(|n| n.ends_with(".log.gz")).count() >= 5,
            "{names:?}"
        );
        assert!(names.iter().all(|n| !n.ends_with(".tmp")));
        assert_eq!(
            stored(&dir.path().join("store")),
            (0..500).collect::<Vec<_>>()
        );

        // A restart appends to the current file.
        drop(s);
        let mut s = FileStore::open(&cfg(dir.path(), 4096, 1 << 30), Escape::Octal, stats).unwrap();
        for n in 500..520 {
            s.write(&event(n), &device).unwrap();
        }
        s.close().unwrap();
        assert_eq!(
            stored(&dir.path().join("store")),
            (0..520).collect::<Vec<_>>()
        );
    }

    #[test]
    fn quota_evicts_oldest_files_and_counts_their_records() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(DestinationStats::default());
        let mut s =
            FileStore::open(&cfg(dir.path(), 4096, 3000), Escape::Octal, stats.clone()).unwrap();
        let device = Device::default();
        for n in 0..2000 {
            s.write(&event(n), &device).unwrap();
            s.tick().unwrap();
        }
        s.close().unwrap();
        let kept = stored(&dir.path().join("store"));
        let evicted = stats.dropped(DestinationDrop::Quota);
        assert!(evicted > 0);
        // What is left is exactly the newest records, and the count says what went.
        assert_eq!(kept, ((evicted as usize)..2000).collect::<Vec<_>>());
        assert!(stats.evicted_files.load(Relaxed) > 0);
    }

    #[test]
    fn rotates_by_age_and_not_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path(), 1 << 30, 1 << 30);
        c.max_file_age = Duration::from_millis(50);
        c.compress = false;
        let mut s =
            FileStore::open(&c, Escape::Octal, Arc::new(DestinationStats::default())).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        s.tick().unwrap(); // nothing written: nothing to close
        s.write(&event(0), &Device::default()).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        s.tick().unwrap();
        s.write(&event(1), &Device::default()).unwrap();
        s.close().unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path().join("store"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].ends_with("_n1.log"), "{names:?}");
        assert_eq!(names[1], "current.log");
        assert_eq!(stored(&dir.path().join("store")), [0, 1]);
    }
}
