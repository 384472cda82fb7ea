//! `syslog_udp`: one datagram is one record (RFC 5426), from any host.
//!
//! The receive buffer is set large (`receive_buffer`) because UDP has no back-pressure: what
//! does not fit in it is lost in the kernel. A frame without a HOSTNAME gets the peer's
//! address. Datagrams longer than `max_frame` are cut, kept and counted.

use std::io;
use std::net::SocketAddr;

use anyhow::Context as _;
use nix::sys::socket::{setsockopt, sockopt};
use tokio::net::UdpSocket;

use super::Stop;
use crate::ingest::Ingest;

pub(super) fn bind(address: SocketAddr, receive_buffer: usize) -> anyhow::Result<UdpSocket> {
    let sock = std::net::UdpSocket::bind(address)
        .with_context(|| format!("listening on udp {address}"))?;
    sock.set_nonblocking(true)?;
    if let Err(e) = setsockopt(&sock, sockopt::RcvBuf, &receive_buffer) {
        tracing::warn!("udp {address}: receive buffer of {receive_buffer} bytes refused: {e}");
    }
    Ok(UdpSocket::from_std(sock)?)
}

/// Reads what is queued now (up to a batch); `false` when the socket failed.
fn drain(sock: &UdpSocket, buf: &mut [u8], max_frame: usize, ingest: &mut Ingest) -> bool {
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
                ingest.bytes(&buf[..n.min(max_frame)], n > max_frame, Some(&host));
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

pub(super) async fn run(sock: UdpSocket, max_frame: usize, mut ingest: Ingest, mut stop: Stop) {
    // One byte more than a frame may have, to see that a datagram was longer.
    let mut buf = vec![0u8; (max_frame + 1).min(65_536)];
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            r = sock.readable() => if r.is_err() { break },
        }
        let ok = drain(&sock, &mut buf, max_frame, &mut ingest);
        if ingest.flush().await.is_err() || !ok {
            break;
        }
    }
    while drain(&sock, &mut buf, max_frame, &mut ingest) && !ingest.is_empty() {
        if ingest.flush().await.is_err() {
            break;
        }
    }
    let _ = ingest.flush().await;
}
