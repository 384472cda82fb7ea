//! `syslog_udp` and `gelf_udp`: one datagram is one record (RFC 5426), from any host.
//!
//! The receive buffer is set large (`receive_buffer`) because UDP has no back-pressure: what
//! does not fit in it is lost in the kernel. A frame without a HOSTNAME gets the peer's
//! address. Datagrams longer than `max_frame` are cut, kept and counted.
//!
//! For GELF, chunked datagrams go through the codec's bounded [`Reassembler`] first: a message
//! becomes a record when its last chunk arrives; partial messages that time out (5 s) or are
//! evicted to stay within the memory bounds, and impossible chunks, are counted as drops.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgelog_codec::gelf::chunk::{Limits, Push, Reassembler, ReassemblyStats};
use nix::sys::socket::{setsockopt, sockopt};
use tokio::net::UdpSocket;

use super::Stop;
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

pub(super) fn bind(address: SocketAddr, receive_buffer: usize) -> anyhow::Result<UdpSocket> {
    let sock = std::net::UdpSocket::bind(address)
        .with_context(|| format!("listening on udp {address}"))?;
    sock.set_nonblocking(true)?;
    if let Err(e) = setsockopt(&sock, sockopt::RcvBuf, &receive_buffer) {
        tracing::warn!("udp {address}: receive buffer of {receive_buffer} bytes refused: {e}");
    }
    Ok(UdpSocket::from_std(sock)?)
}

/// GELF chunk reassembly and the counts already reported.
#[derive(Debug)]
pub(super) struct Gelf {
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

/// Reads what is queued now (up to a batch); `false` when the socket failed.
fn drain(
    sock: &UdpSocket,
    buf: &mut [u8],
    max_frame: usize,
    gelf: &mut Option<Gelf>,
    ingest: &mut Ingest,
) -> bool {
    let mut last: Option<(SocketAddr, String)> = None;
    while !ingest.is_full() {
        match sock.try_recv_from(buf) {
            Ok((n, peer)) => {
                let host = match &last {
                    Some((a, h)) if *a == peer => h.clone(),
                    _ => {
                        let h = peer.ip().to_string();
                        last = Some((peer, h.clone()));
                        h
                    }
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

pub(super) async fn run(
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
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => {
                if let Some(g) = &mut gelf {
                    g.account(&ingest);
                }
                continue;
            }
            r = sock.readable() => if r.is_err() { break },
        }
        let ok = drain(&sock, &mut buf, max_frame, &mut gelf, &mut ingest);
        if ingest.flush().await.is_err() || !ok {
            break;
        }
    }
    while drain(&sock, &mut buf, max_frame, &mut gelf, &mut ingest) && !ingest.is_empty() {
        if ingest.flush().await.is_err() {
            break;
        }
    }
    let _ = ingest.flush().await;
    if let Some(g) = &mut gelf {
        g.account(&ingest);
    }
}
