//! `kmsg`: the kernel's log, read from `/dev/kmsg` (or a file of records, for tests).
//!
//! `/dev/kmsg` hands out one record per `read` and supports `poll`, so it is read
//! non-blocking through the reactor. A regular file (a captured ring, a test) is read as a
//! stream of records — a line not starting with a space begins a record, continuation lines
//! (the `KEY=VALUE` dictionary) belong to it — and followed for appended records. Record
//! sequence numbers are tracked: a gap means the ring overwrote records before we read them,
//! counted as `kernel_gap` drops (a read may also fail with `EPIPE` for the same reason; the
//! gap count covers it). Times come from the record's microseconds since boot plus the boot
//! time (realtime minus monotonic clock, read at start).

use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use edgelog_codec::kmsg::SequenceTracker;
use edgelog_core::Timestamp;
use tokio::io::unix::AsyncFd;

use std::path::PathBuf;
use std::sync::Arc;

use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

pub(crate) const TYPE: SourceType = SourceType {
    name: "kmsg",
    format: edgelog_codec::FormatHint::Auto,
    read: |d, s, _| read(d, s),
};

/// `type = "kmsg"`.
#[derive(Debug, Clone, PartialEq)]
struct KmsgSource {
    path: PathBuf,
}

fn read(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> Option<Arc<dyn SourceSpec>> {
    let path = s.value(d, "path", reader::string);
    Some(Arc::new(KmsgSource {
        path: path.map_or_else(|| PathBuf::from("/dev/kmsg"), PathBuf::from),
    }))
}

impl SourceSpec for KmsgSource {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn describe(&self) -> String {
        format!("kernel log {}", self.path.display())
    }

    /// The kernel's records are the kernel's.
    fn app_name(&self, configured: Option<&str>) -> Option<String> {
        Some(configured.unwrap_or("kernel").to_owned())
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let input = open(&self.path)?;
        Ok(tokio::spawn(run(input, cx.ingest, cx.stop)))
    }
}

enum Input {
    Device(AsyncFd<File>),
    File(File),
}

fn open(path: &Path) -> anyhow::Result<Input> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.metadata()?.file_type().is_char_device() {
        // SAFETY: the `File` moves into the `AsyncFd`, which owns it until dropped: its
        // descriptor stays open and is the same one for the `AsyncFd`'s whole life.
        let fd = unsafe { AsyncFd::register(file) }.map_err(|e| e.into_parts().1)?;
        Ok(Input::Device(fd))
    } else {
        Ok(Input::File(file))
    }
}

/// When the machine booted: realtime now minus time since boot.
pub(super) fn boot_time() -> Option<Timestamp> {
    use nix::time::{ClockId, clock_gettime};
    let mono = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
    let now = Timestamp::now().as_unix_nanos();
    let since_boot = mono.tv_sec() as i64 * 1_000_000_000 + mono.tv_nsec() as i64;
    Some(Timestamp::from_unix_nanos(now - since_boot))
}

fn record(ingest: &mut Ingest, seqs: &mut SequenceTracker, data: &[u8]) {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    if data.is_empty() {
        return;
    }
    let e = ingest.bytes(data, false, None);
    if let Some(seq) = e.msg().sequence {
        let gap = seqs.observe(seq);
        if gap > 0 {
            ingest.stats().add_drop(SourceDrop::KernelGap, gap);
        }
    }
}

async fn run(input: Input, ingest: Ingest, stop: Stop) {
    let ingest = ingest.with_boot_time(boot_time());
    match input {
        Input::Device(fd) => device(fd, ingest, stop).await,
        Input::File(f) => file(f, ingest, stop).await,
    }
}

async fn device(fd: AsyncFd<File>, mut ingest: Ingest, mut stop: Stop) {
    let mut seqs = SequenceTracker::default();
    // A record is at most about 8 KiB (the kernel's limit for one read of /dev/kmsg).
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut guard = tokio::select! {
            _ = stop.wait() => break,
            g = fd.readable() => match g { Ok(g) => g, Err(_) => break },
        };
        while !ingest.is_full() {
            match guard.try_io(|f| f.get_ref().read(&mut buf)) {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => record(&mut ingest, &mut seqs, &buf[..n]),
                // The ring overwrote records we had not read; the next record's sequence
                // number shows how many.
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Ok(Err(e)) => {
                    tracing::error!(source = %ingest.name(), "reading: {e}");
                    let _ = ingest.flush().await;
                    return;
                }
                Err(_would_block) => break,
            }
        }
        if ingest.flush().await.is_err() {
            return;
        }
    }
    let _ = ingest.flush().await;
}

/// Records in a regular file, followed for appends.
async fn file(mut f: File, mut ingest: Ingest, mut stop: Stop) {
    let mut seqs = SequenceTracker::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(source = %ingest.name(), "reading: {e}");
                break;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        // Complete records: up to a newline followed by the start of the next record.
        let mut start = 0;
        let mut i = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[i..]).map(|k| i + k) {
            match buf.get(nl + 1) {
                Some(b' ') => i = nl + 1,
                Some(_) => {
                    record(&mut ingest, &mut seqs, &buf[start..=nl]);
                    start = nl + 1;
                    i = start;
                }
                // A record is complete at the end of what was written only once the writer
                // has stopped: at end of file.
                None if n == 0 => {
                    record(&mut ingest, &mut seqs, &buf[start..=nl]);
                    start = nl + 1;
                    break;
                }
                None => break,
            }
            if ingest.is_full() && ingest.flush().await.is_err() {
                return;
            }
        }
        buf.drain(..start);
        if ingest.flush().await.is_err() {
            return;
        }
        if n == 0 {
            tokio::select! {
                _ = stop.wait() => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
    let _ = ingest.flush().await;
}
