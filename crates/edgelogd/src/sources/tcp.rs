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

use edgelog_codec::FormatHint;

use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::ingest::Ingest;
use crate::stats::SourceDrop;
use crate::tls::TlsConfig;

pub(crate) const SYSLOG: SourceType = SourceType {
    name: "syslog_tcp",
    format: FormatHint::Auto,
    read: |d, s, dirs| read(d, s, dirs, false),
};

pub(crate) const GELF: SourceType = SourceType {
    name: "gelf_tcp",
    format: FormatHint::Gelf,
    read: |d, s, dirs| read(d, s, dirs, true),
};

/// `type = "syslog_tcp"` (maybe TLS) or `"gelf_tcp"` (NUL-delimited).
#[derive(Debug, Clone, PartialEq)]
struct TcpSource {
    gelf: bool,
    address: std::net::SocketAddr,
    framing: Framing,
    max_connections: usize,
    idle_timeout: Duration,
    tls: Option<TlsConfig>,
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
    gelf: bool,
) -> Option<Arc<dyn SourceSpec>> {
    let address = s.required(d, "address", reader::address);
    let (framing, tls) = if gelf {
        (Framing::Nul, None)
    } else {
        let framing = s.value(d, "framing", reader::parsed::<Framing>);
        (
            framing.unwrap_or(Framing::Auto),
            crate::tls::read_server(d, s, dirs),
        )
    };
    let max_connections = max_connections(d, s);
    let idle_timeout = s
        .value(d, "idle_timeout", reader::positive_duration)
        .unwrap_or(DEFAULT_IDLE_TIMEOUT);
    Some(Arc::new(TcpSource {
        gelf,
        address: address?,
        framing,
        max_connections,
        idle_timeout,
        tls,
    }))
}

/// How long a stream source waits for a connection to say something, by default.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Connections a source accepts at once, by default.
const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// `max_connections` of a source that accepts connections.
pub(super) fn max_connections(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> usize {
    s.value(d, "max_connections", reader::count(1..=65_536))
        .map_or(DEFAULT_MAX_CONNECTIONS, |n| n as usize)
}

/// A syslog source on `address` with every default (a socket systemd passed).
pub(super) fn at(address: std::net::SocketAddr) -> Arc<dyn SourceSpec> {
    Arc::new(TcpSource {
        gelf: false,
        address,
        framing: Framing::Auto,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        tls: None,
    })
}

impl SourceSpec for TcpSource {
    fn type_name(&self) -> &'static str {
        if self.gelf { GELF.name } else { SYSLOG.name }
    }

    fn endpoints(&self) -> Vec<String> {
        vec![format!("tcp {}", self.address)]
    }

    fn describe(&self) -> String {
        match &self.tls {
            _ if self.gelf => format!("GELF tcp {}", self.address),
            None => format!("tcp {}", self.address),
            Some(t) if t.client_ca.is_some() => {
                format!("tls {} (client certificates required)", self.address)
            }
            Some(_) => format!("tls {}", self.address),
        }
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let tls = match &self.tls {
            Some(t) => Some(TlsAcceptor::from(crate::tls::server_config(t)?)),
            None => None,
        };
        let conn = Settings {
            framing: self.framing,
            max_frame: cx.max_frame,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            tls,
        };
        let listener = listen(&cx, self.address)?;
        Ok(tokio::spawn(run(listener, conn, cx.ingest, cx.stop)))
    }
}

#[derive(Clone)]
struct Settings {
    framing: Framing,
    max_frame: usize,
    max_connections: usize,
    idle_timeout: Duration,
    /// Serve TLS (and maybe require client certificates).
    tls: Option<TlsAcceptor>,
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener systemd passed for this source, else one on `address` (with `SO_REUSEADDR`,
/// as a restarted daemon must).
pub(super) fn listen(
    cx: &SourceStart<'_>,
    address: std::net::SocketAddr,
) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    let passed = cx
        .activated
        .take(cx.name, &crate::systemd::Endpoint::Tcp(address));
    let listening = || -> std::io::Result<TcpListener> {
        let l = match passed {
            Some(fd) => std::net::TcpListener::from(fd),
            None => std::net::TcpListener::bind(address)?,
        };
        l.set_nonblocking(true)?;
        TcpListener::from_std(l)
    };
    listening().with_context(|| format!("listening on tcp {address}"))
}

async fn run(listener: TcpListener, s: Settings, ingest: Ingest, mut stop: Stop) {
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
