//! `syslog_udp` and `gelf_udp`: one datagram is one record (RFC 5426), from any host.
//!
//! The receive buffer is set large (`receive_buffer`, forced past the system maximum when
//! privileged) because UDP has no back-pressure: what does not fit in it is lost in the
//! kernel — and counted: `SO_RXQ_OVFL` makes the kernel attach its drop count to every
//! datagram, and the difference is counted as `socket_overflow`, so UDP loss is never silent. A frame without a HOSTNAME gets the peer's
//! address. Datagrams longer than `max_frame` are cut, kept and counted.
//!
//! For GELF, chunked datagrams go through the codec's bounded [`Reassembler`] first: a message
//! becomes a record when its last chunk arrives; partial messages that time out (5 s) or are
//! evicted to stay within the memory bounds, and impossible chunks, are counted as drops.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgelog_codec::gelf::chunk::{Limits, Push, Reassembler, ReassemblyStats};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, setsockopt, sockopt};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use std::sync::Arc;

use edgelog_codec::FormatHint;

use super::recv::recv;
use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::{BATCH_MAX, DATAGRAM_BACKLOG, Ingest};
use crate::stats::SourceDrop;

pub(crate) const SYSLOG: SourceType = SourceType {
    name: "syslog_udp",
    format: FormatHint::Auto,
    read: |d, s, _| read(d, s, false),
};

pub(crate) const GELF: SourceType = SourceType {
    name: "gelf_udp",
    format: FormatHint::Gelf,
    read: |d, s, _| read(d, s, true),
};

/// `type = "syslog_udp"` or `"gelf_udp"` (chunked, maybe compressed GELF datagrams).
#[derive(Debug, Clone, PartialEq)]
struct UdpSource {
    gelf: bool,
    address: SocketAddr,
    receive_buffer: usize,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    gelf: bool,
) -> Option<Arc<dyn SourceSpec>> {
    let address = s.required(d, "address", reader::address);
    let receive_buffer = super::receive_buffer(d, s);
    Some(Arc::new(UdpSource {
        gelf,
        address: address?,
        receive_buffer,
    }))
}

/// A syslog source on `address` with every default (a socket systemd passed).
pub(super) fn at(address: SocketAddr) -> Arc<dyn SourceSpec> {
    Arc::new(UdpSource {
        gelf: false,
        address,
        receive_buffer: super::DEFAULT_RECEIVE_BUFFER,
    })
}

impl SourceSpec for UdpSource {
    fn type_name(&self) -> &'static str {
        if self.gelf { GELF.name } else { SYSLOG.name }
    }

    fn endpoints(&self) -> Vec<String> {
        vec![format!("udp {}", self.address)]
    }

    fn describe(&self) -> String {
        let gelf = if self.gelf { "GELF " } else { "" };
        format!("{gelf}udp {}", self.address)
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let passed = cx
            .activated
            .take(cx.name, &crate::systemd::Endpoint::Udp(self.address));
        let sock = match passed {
            Some(fd) => prepare(
                std::net::UdpSocket::from(fd),
                self.address,
                self.receive_buffer,
            )?,
            None => bind(self.address, self.receive_buffer)?,
        };
        let gelf = self.gelf.then(Gelf::new);
        Ok(tokio::spawn(run(
            sock,
            cx.max_frame,
            gelf,
            cx.ingest,
            cx.stop,
        )))
    }
}

fn bind(address: SocketAddr, receive_buffer: usize) -> anyhow::Result<UdpSocket> {
    let sock = std::net::UdpSocket::bind(address)
        .with_context(|| format!("listening on udp {address}"))?;
    prepare(sock, address, receive_buffer)
}

/// Non-blocking, with a large receive buffer and the kernel's drop counts on.
fn prepare(
    sock: std::net::UdpSocket,
    address: SocketAddr,
    receive_buffer: usize,
) -> anyhow::Result<UdpSocket> {
    sock.set_nonblocking(true)?;
    // Past the system's rmem_max when allowed (root, CAP_NET_ADMIN), as rsyslog does; else as
    // large as the system lets an unprivileged socket be.
    if setsockopt(&sock, sockopt::RcvBufForce, &receive_buffer).is_err()
        && let Err(e) = setsockopt(&sock, sockopt::RcvBuf, &receive_buffer)
    {
        tracing::warn!("udp {address}: receive buffer of {receive_buffer} bytes refused: {e}");
    }
    // The kernel's count of datagrams it dropped for want of buffer, on every datagram.
    if let Err(e) = setsockopt(&sock, sockopt::RxqOvfl, &1) {
        tracing::debug!("udp {address}: no drop counts from the kernel: {e}");
    }
    Ok(UdpSocket::from_std(sock)?)
}

/// One datagram as received.
struct Datagram {
    len: usize,
    peer: Option<IpAddr>,
    /// The kernel's running count of drops on this socket, when it says.
    dropped: Option<u32>,
}

#[allow(clippy::ptr_arg)]
fn receive(sock: &UdpSocket, buf: &mut [u8], cmsg: &mut Vec<u8>) -> io::Result<Datagram> {
    let mut dropped = None;
    let got = recv::<SockaddrStorage>(sock.as_raw_fd(), buf, cmsg, MsgFlags::MSG_DONTWAIT, |m| {
        if let ControlMessageOwned::RxqOvfl(n) = m {
            dropped = Some(n);
        }
    })?;
    let peer = got.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|a| IpAddr::V4(a.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
    });
    Ok(Datagram {
        len: got.len,
        peer,
        dropped,
    })
}

/// GELF chunk reassembly and the counts already reported.
#[derive(Debug)]
struct Gelf {
    chunks: Reassembler,
    reported: ReassemblyStats,
}

impl Gelf {
    pub(super) fn new() -> Gelf {
        Gelf {
            chunks: Reassembler::new(Limits::default()),
            reported: ReassemblyStats::default(),
        }
    }

    /// Expires old partial messages and counts what the reassembler dropped since last time.
    fn account(&mut self, ingest: &Ingest) {
        self.chunks.expire(Instant::now());
        let now = self.chunks.stats();
        let stats = ingest.stats();
        stats.add_drop(
            SourceDrop::GelfIncomplete,
            now.expired - self.reported.expired,
        );
        stats.add_drop(SourceDrop::GelfEvicted, now.evicted - self.reported.evicted);
        stats.add_drop(
            SourceDrop::GelfInvalidChunk,
            now.invalid - self.reported.invalid,
        );
        self.reported = now;
    }
}

/// The kernel's drop count for `sock` from `/proc/net/udp{,6}` (by the socket's inode): the
/// same counter `SO_RXQ_OVFL` reports, but readable when no datagram arrives to carry it —
/// drops after the last datagram read are counted too.
fn kernel_drops(sock: &UdpSocket) -> Option<u32> {
    let inode = nix::sys::stat::fstat(sock).ok()?.st_ino.to_string();
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f.get(9) == Some(&inode.as_str()))
                    .then(|| f.last()?.parse().ok())
                    .flatten()
            })
        })
}

/// Counts drops the kernel reports beyond what was counted.
fn count_drops(total: u32, st: &mut State, ingest: &Ingest) {
    let new = total.wrapping_sub(st.kernel_drops);
    if new > 0 && new < u32::MAX / 2 {
        ingest
            .stats()
            .add_drop(SourceDrop::SocketOverflow, u64::from(new));
        st.kernel_drops = total;
    }
}

/// What a receive loop carries between reads.
#[derive(Debug, Default)]
struct State {
    /// The kernel's drop count when last seen.
    kernel_drops: u32,
    cmsg: Vec<u8>,
}

/// Reads what is queued now (up to a batch); `false` when the socket failed.
fn drain(
    sock: &UdpSocket,
    buf: &mut [u8],
    max_frame: usize,
    gelf: &mut Option<Gelf>,
    st: &mut State,
    ingest: &mut Ingest,
) -> bool {
    let mut last: Option<(IpAddr, String)> = None;
    let limit = (ingest.len() + BATCH_MAX).min(DATAGRAM_BACKLOG);
    while ingest.len() < limit {
        match sock.try_io(Interest::READABLE, || receive(sock, buf, &mut st.cmsg)) {
            Ok(d) => {
                let n = d.len;
                if let Some(total) = d.dropped {
                    count_drops(total, st, ingest);
                }
                let host = match (&last, d.peer) {
                    (Some((a, h)), Some(p)) if *a == p => h.clone(),
                    (_, Some(p)) => {
                        let h = p.to_string();
                        last = Some((p, h.clone()));
                        h
                    }
                    (_, None) => String::new(),
                };
                match gelf {
                    None => {
                        ingest.bytes(&buf[..n.min(max_frame)], n > max_frame, Some(&host));
                    }
                    Some(g) => {
                        if let Push::Complete(payload) = g.chunks.push(&buf[..n], Instant::now()) {
                            ingest.bytes(&payload, false, Some(&host));
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // ICMP errors from earlier sends surface here on some systems; not ours to stop on.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::error!(source = %ingest.name(), "receiving: {e}");
                return false;
            }
        }
    }
    true
}

async fn run(
    sock: UdpSocket,
    max_frame: usize,
    mut gelf: Option<Gelf>,
    mut ingest: Ingest,
    mut stop: Stop,
) {
    // One byte more than a frame may have, to see that a datagram was longer; GELF chunks
    // are reassembled, so the buffer only has to hold the largest datagram.
    let size = if gelf.is_some() {
        65_536
    } else {
        max_frame + 1
    };
    let mut buf = vec![0u8; size.min(65_536)];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut st = State {
        cmsg: nix::cmsg_space!(u32),
        ..State::default()
    };
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => {
                if let Some(g) = &mut gelf {
                    g.account(&ingest);
                }
                if let Some(total) = kernel_drops(&sock) {
                    count_drops(total, &mut st, &ingest);
                }
                continue;
            }
            r = sock.readable() => {
                let ok = r.is_ok()
                    && drain(&sock, &mut buf, max_frame, &mut gelf, &mut st, &mut ingest);
                if ingest.offer().is_err() || !ok {
                    break;
                }
            }
            // Never blocked by the router: see `Ingest::offer`.
            r = ingest.flush(), if !ingest.is_empty() => if r.is_err() { break },
        }
    }
    while drain(&sock, &mut buf, max_frame, &mut gelf, &mut st, &mut ingest) && !ingest.is_empty() {
        if ingest.flush().await.is_err() {
            break;
        }
    }
    let _ = ingest.flush().await;
    if let Some(g) = &mut gelf {
        g.account(&ingest);
    }
    if let Some(total) = kernel_drops(&sock) {
        count_drops(total, &mut st, &ingest);
    }
}
