//! `syslog_tcp` and `gelf_tcp`: RFC 6587 streams — octet counting or LF-delimited, chosen per frame in auto.
//!
//! `gelf_tcp` is the same with NUL-delimited frames.
//!
//! One task per connection, each with its own framer and batch, bounded by
//! `max_connections` (a connection beyond it is closed at once and counted). A read waits at
//! most `idle_timeout`. Memory per connection is bounded by `max_frame` plus one read: a frame
//! longer than `max_frame` is cut, flagged and the rest of it discarded (counted in bytes).
//! Back-pressure is natural: a connection whose flush waits does not read, the kernel's window
//! fills and the sender slows down. On stop each connection decodes what it has buffered
//! (an unterminated tail becomes a last, flagged record) and closes.

use std::sync::Arc;
use std::time::Duration;

use edgelog_codec::{Framer, Framing};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::Stop;
use crate::ingest::Ingest;
use crate::stats::SourceDrop;

#[derive(Clone)]
pub(super) struct Settings {
    pub(super) framing: Framing,
    pub(super) max_frame: usize,
    pub(super) max_connections: usize,
    pub(super) idle_timeout: Duration,
    /// Serve TLS (and maybe require client certificates).
    pub(super) tls: Option<TlsAcceptor>,
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn bind(address: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on tcp {address}"))
}

pub(super) async fn run(listener: TcpListener, s: Settings, ingest: Ingest, mut stop: Stop) {
    let slots = Arc::new(Semaphore::new(s.max_connections));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(source = %ingest.name(), "accepting: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            ingest.stats().add_drop(SourceDrop::ConnectionLimit, 1);
            tracing::warn!(source = %ingest.name(), %peer, "refused: {} connections open", s.max_connections);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = ingest.fork();
        let stop = stop.clone();
        let s = s.clone();
        conns.spawn(async move {
            connection(stream, peer.ip().to_string(), s, conn, stop).await;
            drop(permit);
        });
    }
    while conns.join_next().await.is_some() {}
}

async fn connection(stream: TcpStream, host: String, s: Settings, ingest: Ingest, stop: Stop) {
    let stats = ingest.stats_handle();
    let _open = stats.clone().open_connection();
    match &s.tls {
        None => receive(stream, host, &s, ingest, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => receive(tls, host, &s, ingest, stop).await,
                Ok(Err(e)) => {
                    stats.add_drop(SourceDrop::TlsHandshake, 1);
                    tracing::warn!(source = %ingest.name(), %host, "TLS handshake failed: {e}");
                }
                Err(_) => {
                    stats.add_drop(SourceDrop::TlsHandshake, 1);
                    tracing::warn!(source = %ingest.name(), %host, "TLS handshake timed out");
                }
            }
        }
    }
}

/// On stop, how long a connection may go on draining what its peer sent…
const STOP_DRAIN: Duration = Duration::from_secs(2);
/// …and the pause that counts as the end of it.
const STOP_PAUSE: Duration = Duration::from_millis(200);

enum Read {
    Stop,
    Done(std::io::Result<usize>),
}

async fn receive(
    mut stream: impl AsyncRead + Unpin,
    host: String,
    s: &Settings,
    mut ingest: Ingest,
    mut stop: Stop,
) {
    let mut framer = Framer::new(s.framing, s.max_frame);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut eof = false;
    while !eof {
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = tokio::select! {
            _ = stop.wait() => Read::Stop,
            r = tokio::time::timeout(s.idle_timeout, stream.read_buf(&mut buf)) => match r {
                Ok(r) => Read::Done(r),
                Err(_) => {
                    tracing::debug!(source = %ingest.name(), %host, "idle timeout");
                    Read::Done(Ok(0))
                }
            },
        };
        let read = match read {
            Read::Done(r) => r,
            Read::Stop => {
                // What the peer already sent is in flight: read until it pauses (the kernel
                // refills the window as we read), for at most `STOP_DRAIN`, then end.
                let deadline = tokio::time::Instant::now() + STOP_DRAIN;
                while let Ok(Ok(n)) = tokio::time::timeout_at(
                    deadline.min(tokio::time::Instant::now() + STOP_PAUSE),
                    stream.read_buf(&mut buf),
                )
                .await
                {
                    if n == 0 {
                        break;
                    }
                    if ingest
                        .stream(&mut framer, &mut buf, false, Some(&host))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    buf.reserve(64 * 1024);
                }
                Ok(0)
            }
        };
        eof = match read {
            Ok(n) => n == 0,
            Err(e) => {
                tracing::debug!(source = %ingest.name(), %host, "reading: {e}");
                true
            }
        };
        if ingest
            .stream(&mut framer, &mut buf, eof, Some(&host))
            .await
            .is_err()
        {
            break;
        }
        if ingest.flush().await.is_err() {
            break;
        }
    }
}
