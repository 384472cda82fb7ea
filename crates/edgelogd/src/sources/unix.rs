//! `unix_datagram`: the `/dev/log` socket local programs (glibc `syslog(3)`, `logger`) write to.
//!
//! One datagram is one record. The socket has `SO_PASSCRED` on, so the kernel attaches the
//! sender's pid and uid to every datagram: a record without a PROCID gets the pid, and every
//! record gets a `uid` field — facts the sender cannot forge. A datagram longer than the
//! buffer (`max_frame`) arrives cut (`MSG_TRUNC`) and is kept, flagged and counted. On stop the
//! datagrams already queued in the socket are read before it is closed and its file removed.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use edgelog_core::Value;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixCredentials, setsockopt, sockopt};
use tokio::io::Interest;
use tokio::net::UnixDatagram;

use std::sync::Arc;

use super::recv::recv;
use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::{BATCH_MAX, DATAGRAM_BACKLOG, Ingest};

pub(crate) const TYPE: SourceType = SourceType {
    name: "unix_datagram",
    format: edgelog_codec::FormatHint::Auto,
    read,
};

/// `type = "unix_datagram"`.
#[derive(Debug, Clone, PartialEq)]
struct UnixDatagramSource {
    /// In the run directory when relative.
    path: PathBuf,
    mode: u32,
    receive_buffer: usize,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<Arc<dyn SourceSpec>> {
    let path = s.required(d, "path", reader::string);
    let mode = s.value(d, "mode", reader::mode).unwrap_or(0o666);
    let receive_buffer = super::receive_buffer(d, s);
    Some(Arc::new(UnixDatagramSource {
        path: dirs.run_dir.join(path?),
        mode,
        receive_buffer,
    }))
}

/// A source on `path` with every default (a socket systemd passed).
pub(super) fn at(path: &Path) -> Arc<dyn SourceSpec> {
    Arc::new(UnixDatagramSource {
        path: path.to_owned(),
        mode: 0o666,
        receive_buffer: super::DEFAULT_RECEIVE_BUFFER,
    })
}

impl SourceSpec for UnixDatagramSource {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn endpoints(&self) -> Vec<String> {
        vec![format!("unix socket {}", self.path.display())]
    }

    fn describe(&self) -> String {
        format!(
            "unix datagram {} (mode {:o})",
            self.path.display(),
            self.mode
        )
    }

    /// The socket systemd passed for this source when it did (its path is systemd's, kept at
    /// stop); else one bound here (removed at stop).
    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let endpoint = crate::systemd::Endpoint::UnixDatagram(self.path.clone());
        let (sock, owned) = match cx.activated.take(cx.name, &endpoint) {
            Some(fd) => {
                let passed = std::os::unix::net::UnixDatagram::from(fd);
                (prepare(passed, &self.path, self.receive_buffer)?, None)
            }
            None => {
                let sock = bind(&self.path, self.mode)?;
                let sock = prepare(sock, &self.path, self.receive_buffer)?;
                (sock, Some(self.path.clone()))
            }
        };
        Ok(tokio::spawn(run(
            sock,
            owned,
            cx.max_frame,
            cx.ingest,
            cx.stop,
        )))
    }
}

fn bind(path: &Path, mode: u32) -> anyhow::Result<std::os::unix::net::UnixDatagram> {
    super::claim_socket_path(path)?;
    let sock = std::os::unix::net::UnixDatagram::bind(path)
        .with_context(|| format!("binding unix datagram socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on {}", path.display()))?;
    Ok(sock)
}

/// Non-blocking, with the receive buffer asked for and the senders' credentials on.
fn prepare(
    sock: std::os::unix::net::UnixDatagram,
    path: &Path,
    receive_buffer: usize,
) -> anyhow::Result<UnixDatagram> {
    sock.set_nonblocking(true)?;
    if let Err(e) = setsockopt(&sock, sockopt::RcvBuf, &receive_buffer) {
        tracing::warn!(
            "{}: receive buffer of {receive_buffer} bytes refused: {e}",
            path.display()
        );
    }
    setsockopt(&sock, sockopt::PassCred, &true).context("enabling SO_PASSCRED")?;
    Ok(UnixDatagram::from_std(sock)?)
}

/// One datagram as received.
struct Datagram {
    len: usize,
    /// Longer than the buffer: cut by the kernel.
    truncated: bool,
    /// The sender's pid and uid.
    creds: Option<(i32, u32)>,
}

#[allow(clippy::ptr_arg)]
fn receive(sock: &UnixDatagram, buf: &mut [u8], cmsg: &mut Vec<u8>) -> io::Result<Datagram> {
    let mut creds = None;
    let got = recv::<()>(sock.as_raw_fd(), buf, cmsg, MsgFlags::MSG_DONTWAIT, |m| {
        if let ControlMessageOwned::ScmCredentials(c) = m {
            creds = Some((c.pid(), c.uid()));
        }
    })?;
    Ok(Datagram {
        len: got.len,
        truncated: got.flags.contains(MsgFlags::MSG_TRUNC),
        creds,
    })
}

/// Reads the datagrams queued now (up to a batch more, within the backlog); `false` when the
/// socket failed.
#[allow(clippy::ptr_arg)]
fn drain(sock: &UnixDatagram, buf: &mut [u8], cmsg: &mut Vec<u8>, ingest: &mut Ingest) -> bool {
    let limit = (ingest.len() + BATCH_MAX).min(DATAGRAM_BACKLOG);
    while ingest.len() < limit {
        match sock.try_io(Interest::READABLE, || receive(sock, buf, cmsg)) {
            Ok(d) => {
                let mut pid = itoa::Buffer::new();
                let frame = edgelog_codec::Frame {
                    data: &buf[..d.len],
                    octet_counted: false,
                    truncated: d.truncated,
                    incomplete: false,
                };
                let proc_id = d.creds.map(|(p, _)| pid.format(p));
                let e = ingest.frame_filled(frame, None, proc_id);
                if let Some((_, uid)) = d.creds {
                    e.push_field("uid".into(), Value::U64(u64::from(uid)));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                tracing::error!(source = %ingest.name(), "receiving: {e}");
                return false;
            }
        }
    }
    true
}

/// Reads datagrams until stopped; then removes `owned`, the path this source bound.
async fn run(
    sock: UnixDatagram,
    owned: Option<PathBuf>,
    max_frame: usize,
    mut ingest: Ingest,
    mut stop: Stop,
) {
    let mut buf = vec![0u8; max_frame];
    let mut cmsg = nix::cmsg_space!(UnixCredentials);
    // Never blocked by the router: see `Ingest::offer`.
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            r = sock.readable() => {
                let ok = r.is_ok() && drain(&sock, &mut buf, &mut cmsg, &mut ingest);
                if ingest.offer().is_err() || !ok {
                    break;
                }
            }
            r = ingest.flush(), if !ingest.is_empty() => if r.is_err() { break },
        }
    }
    // What senders already handed to the kernel is ours: read it before closing.
    while drain(&sock, &mut buf, &mut cmsg, &mut ingest) && !ingest.is_empty() {
        if ingest.flush().await.is_err() {
            break;
        }
    }
    let _ = ingest.flush().await;
    if let Some(path) = owned {
        let _ = std::fs::remove_file(&path);
    }
}
