//! `memlogd`: container and service stdout capture, compatible with linuxkit's memlogd.
//!
//! Two sockets, as memlogd has them:
//!
//! - **logwrite** (datagram): a writer sends a datagram whose bytes name the source (a
//!   trailing NUL is allowed) and whose `SCM_RIGHTS` carry a file descriptor — the read end
//!   of a pipe or socket pair its program writes to. Every line read from that descriptor,
//!   until it closes, is a record with the source as its app name. linuxkit's `logwrite` and
//!   `edgelog run` are such writers.
//! - **query** (stream): a reader sends one byte — `0` dump the ring, `1` follow new lines,
//!   `2` dump then follow — and gets JSON lines `{"time","source","msg"}`, which is what
//!   linuxkit's `logread` reads.
//!
//! The ring keeps the newest `max_lines` lines (each at most `max_frame` bytes) for dumps. A
//! follower that cannot keep up misses lines (as with memlogd); the records themselves go to
//! the router with back-pressure like any source's, so the export path loses nothing.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use edgelog_codec::{Framer, Framing};
use edgelog_core::Timestamp;
use nix::sys::socket::{ControlMessageOwned, MsgFlags};
use serde_json::json;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, Interest};
use tokio::net::{UnixDatagram, UnixListener, UnixStream};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use super::claim_socket_path;
use super::recv::recv;
use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::Ingest;
use crate::stats::SourceStats;

pub(crate) const TYPE: SourceType = SourceType {
    name: "memlogd",
    format: edgelog_codec::FormatHint::Raw,
    read,
};

/// `type = "memlogd"`.
#[derive(Debug, Clone, PartialEq)]
struct MemlogdSource {
    /// The logwrite socket (descriptors passed over it).
    path: PathBuf,
    /// The query socket (`logread`).
    query_path: PathBuf,
    max_lines: usize,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<Arc<dyn SourceSpec>> {
    let mut socket = |key, default: &str| {
        let p = s.value(d, key, reader::string);
        dirs.run_dir.join(p.as_deref().unwrap_or(default))
    };
    let path = socket("path", "linuxkit-external-logging.sock");
    let query_path = socket("query_path", "memlogdq.sock");
    let max_lines = s
        .value(d, "max_lines", reader::count(1..=1_000_000))
        .map_or(5000, |n| n as usize);
    Some(Arc::new(MemlogdSource {
        path,
        query_path,
        max_lines,
    }))
}

impl SourceSpec for MemlogdSource {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn endpoints(&self) -> Vec<String> {
        [&self.path, &self.query_path]
            .map(|p| format!("unix socket {}", p.display()))
            .to_vec()
    }

    fn describe(&self) -> String {
        format!(
            "memlogd fds {}, queries {}",
            self.path.display(),
            self.query_path.display()
        )
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let sockets = bind(&self.path, &self.query_path)?;
        let (max_lines, max_frame) = (self.max_lines, cx.max_frame);
        Ok(tokio::spawn(run(
            sockets, max_lines, max_frame, cx.ingest, cx.stop,
        )))
    }
}

/// Descriptors accepted in one datagram.
const MAX_FDS: usize = 8;

/// One captured line, as the query socket shows it.
#[derive(Debug, Clone)]
struct Line {
    time: Timestamp,
    source: Arc<str>,
    msg: String,
}

impl Line {
    fn json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&json!({
            "time": self.time.to_string(), "source": &*self.source, "msg": self.msg,
        }))
        .unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// The newest lines, and the feed of new ones for followers.
#[derive(Debug)]
struct Ring {
    lines: Mutex<VecDeque<Arc<Line>>>,
    max: usize,
    feed: broadcast::Sender<Arc<Line>>,
}

impl Ring {
    /// Adds a line and feeds it to followers, under one lock with
    /// [`snapshot_and_follow`](Self::snapshot_and_follow), so a dump-and-follow query sees
    /// every line exactly once.
    fn push(&self, line: Line) {
        let line = Arc::new(line);
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.max {
            lines.pop_front();
        }
        lines.push_back(line.clone());
        // No follower is not an error.
        let _ = self.feed.send(line);
    }

    fn snapshot_and_follow(&self) -> (Vec<Arc<Line>>, broadcast::Receiver<Arc<Line>>) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        (lines.iter().cloned().collect(), self.feed.subscribe())
    }
}

/// The bound sockets.
#[derive(Debug)]
struct Sockets {
    logwrite: UnixDatagram,
    query: UnixListener,
    paths: [PathBuf; 2],
}

fn bind(logwrite: &Path, query: &Path) -> anyhow::Result<Sockets> {
    claim_socket_path(logwrite)?;
    claim_socket_path(query)?;
    let lw =
        UnixDatagram::bind(logwrite).with_context(|| format!("binding {}", logwrite.display()))?;
    let q = UnixListener::bind(query).with_context(|| format!("binding {}", query.display()))?;
    Ok(Sockets {
        logwrite: lw,
        query: q,
        paths: [logwrite.to_owned(), query.to_owned()],
    })
}

/// One datagram: the source name and the descriptors it carried.
#[allow(clippy::ptr_arg)]
fn receive(
    sock: &UnixDatagram,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut fds = Vec::new();
    let got = recv::<()>(
        sock.as_raw_fd(),
        buf,
        cmsg,
        MsgFlags::MSG_CMSG_CLOEXEC,
        |c| {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS descriptors are new in this process and owned by no one
                // else; each is wrapped exactly once.
                fds.extend(
                    raw.into_iter()
                        .map(|fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        },
    )?;
    let n = got.len;
    let name = String::from_utf8_lossy(&buf[..n])
        .trim_end_matches('\0')
        .to_owned();
    Ok((name, fds))
}

async fn run(s: Sockets, max_lines: usize, max_frame: usize, ingest: Ingest, mut stop: Stop) {
    let (feed, _) = broadcast::channel(1024);
    let ring = Arc::new(Ring {
        lines: Mutex::new(VecDeque::with_capacity(max_lines.min(1 << 16))),
        max: max_lines,
        feed,
    });
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            r = s.logwrite.readable() => {
                if r.is_err() {
                    break;
                }
                while let Ok((name, fds)) = s
                    .logwrite
                    .try_io(Interest::READABLE, || receive(&s.logwrite, &mut buf, &mut cmsg))
                {
                    let name = if name.is_empty() { "unknown".to_owned() } else { name };
                    for fd in fds {
                        let mut reader = ingest.fork();
                        reader.set_app_name(Some(&name));
                        let (ring, stop, source) = (ring.clone(), stop.clone(), Arc::from(name.as_str()));
                        tasks.spawn(follow_fd(fd, source, max_frame, reader, ring, stop));
                    }
                }
            }
            a = s.query.accept() => {
                if let Ok((conn, _)) = a {
                    tasks.spawn(query(conn, ring.clone(), ingest.stats_handle(), stop.clone()));
                }
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    for p in &s.paths {
        let _ = std::fs::remove_file(p);
    }
}

/// Reads lines from a passed descriptor until it closes (or the source stops).
async fn follow_fd(
    fd: OwnedFd,
    source: Arc<str>,
    max_frame: usize,
    mut ingest: Ingest,
    ring: Arc<Ring>,
    mut stop: Stop,
) {
    let file = std::fs::File::from(fd);
    if let Err(e) = nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    ) {
        tracing::warn!(%source, "passed descriptor: {e}");
        return;
    }
    // SAFETY: the `File` moves into the `AsyncFd`, which owns it until dropped.
    let afd = match unsafe { AsyncFd::register(file) } {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(%source, "passed descriptor cannot be polled: {}", e.into_parts().1);
            return;
        }
    };
    let mut framer = Framer::new(Framing::Lf, max_frame);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut eof = false;
    while !eof {
        let n = tokio::select! {
            _ = stop.wait() => 0,
            g = afd.readable() => {
                let Ok(mut g) = g else { break };
                match g.try_io(|f| io::Read::read(&mut f.get_ref(), &mut chunk)) {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) => 0,
                    Err(_would_block) => continue,
                }
            }
        };
        eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        // Each line goes to the ring for queries and to the router as a record.
        let seen = |f: &edgelog_codec::Frame<'_>| {
            ring.push(Line {
                time: Timestamp::now(),
                source: source.clone(),
                msg: String::from_utf8_lossy(f.data).into_owned(),
            });
        };
        if ingest
            .stream_with(&mut framer, &mut buf, eof, None, seen)
            .await
            .is_err()
        {
            return;
        }
        if ingest.flush().await.is_err() {
            return;
        }
    }
}

/// Serves one query connection. It counts among the source's open `connections` from when
/// its mode is read and its view of the ring taken, so whoever sees the count knows the
/// follower gets every line from then on.
async fn query(mut conn: UnixStream, ring: Arc<Ring>, stats: Arc<SourceStats>, mut stop: Stop) {
    let mut mode = [0u8; 1];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_exact(&mut mode),
    );
    if !matches!(read.await, Ok(Ok(_))) {
        return;
    }
    let (dump, follow) = match mode[0] {
        0 => (true, false),
        1 => (false, true),
        2 => (true, true),
        _ => return,
    };
    let (lines, mut feed) = ring.snapshot_and_follow();
    let _open = stats.open_connection();
    if dump {
        for line in lines {
            if conn.write_all(&line.json()).await.is_err() {
                return;
            }
        }
    }
    if !follow {
        return;
    }
    loop {
        let line = tokio::select! {
            _ = stop.wait() => return,
            l = feed.recv() => l,
        };
        match line {
            Ok(line) => {
                if conn.write_all(&line.json()).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
