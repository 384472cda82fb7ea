//! Network destinations: the sender, and how it reaches a receiver.
//!
//! The sender is a task on the async runtime. It asks the destination's queue owner
//! ([`queue`](super::queue)) for a batch, sends it, and tells the owner what the transport
//! accepted: for TCP and TLS a batch written to the socket in full, for UDP a batch handed to
//! the kernel — the most these protocols can say — and for RELP each record the receiver
//! answered `200` for ([`relp`](super::relp)); GELF HTTP by status ([`http`](super::http)).
//! When sending fails the owner rewinds the queue (the batch will be sent again), the receiver
//! is marked down with the error, and the sender reconnects with exponential backoff and
//! jitter; nothing leaves the queue until acknowledged, so a receiver that is away for a
//! minute gets the minute's records when it is back. A receiver that is connected but takes
//! nothing is marked stalled after `stall_after` and its connection dropped after
//! `stall_timeout`. The sender does network I/O only: everything that touches the queue or a
//! file happens on the owner's thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use edgelog_codec::framing;
use edgelog_codec::gelf::chunk::{self, IdGenerator};
use edgelog_codec::gelf::compress;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::queue::{Done, Feed};
use super::{http, relp};
use crate::config::{NetworkConfig, Transport};
use crate::stats::{DestinationStats, ReceiverState};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream to the receiver, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection to the receiver.
enum Conn {
    Stream(Box<dyn Io>),
    Udp(UdpSocket),
    Relp(Box<relp::Session<Box<dyn Io>>>),
    Http(http::Poster),
}

fn tls_client_config(cfg: &crate::config::ClientTlsConfig) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&cfg.ca)
        .with_context(|| format!("reading CA certificates from {}", cfg.ca.display()))?;
    for c in certs {
        let c = c.with_context(|| format!("parsing {}", cfg.ca.display()))?;
        roots
            .add(c)
            .with_context(|| format!("{}: not a usable CA certificate", cfg.ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots);
    let config = match (&cfg.cert, &cfg.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("parsing {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading the private key in {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("our client certificate and key do not match")?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// How a sender reaches its receiver.
#[derive(Clone)]
pub(super) struct Target {
    cfg: NetworkConfig,
    tls: Option<TlsConnector>,
    http: Option<http::Poster>,
    /// GELF chunk ids.
    ids: Arc<Mutex<IdGenerator>>,
}

impl Target {
    /// Checks what can be checked before the first connection (TLS files, the URL).
    pub(super) fn new(cfg: &NetworkConfig) -> anyhow::Result<Target> {
        let tls = cfg.tls.as_ref().map(tls_client_config).transpose()?;
        let http = cfg
            .http
            .as_ref()
            .map(|h| http::Poster::new(h, tls.clone()))
            .transpose()?;
        Ok(Target {
            cfg: cfg.clone(),
            tls: tls.map(|t| TlsConnector::from(Arc::new(t))),
            http,
            ids: Arc::new(Mutex::new(IdGenerator::default())),
        })
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        if let Some(p) = &self.http {
            // Requests connect (and keep connections) themselves.
            return Ok(Conn::Http(p.clone()));
        }
        let addr = &self.cfg.address;
        let mut last = anyhow!("{addr}: no address found");
        let addrs = tokio::net::lookup_host(addr)
            .await
            .with_context(|| format!("resolving {addr}"))?;
        for a in addrs {
            if matches!(self.cfg.transport, Transport::Udp | Transport::GelfUdp) {
                let local = if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let sock = UdpSocket::bind(local).await?;
                sock.connect(a).await?;
                return Ok(Conn::Udp(sock));
            }
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(a)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    let io: Box<dyn Io> = match &self.tls {
                        None => Box::new(tcp),
                        Some(tls) => Box::new(self.handshake(tls, tcp, a, addr).await?),
                    };
                    if self.cfg.transport == Transport::Relp {
                        let session = relp::Session::open(io, self.cfg.window)
                            .await
                            .with_context(|| format!("{a}"))?;
                        return Ok(Conn::Relp(Box::new(session)));
                    }
                    return Ok(Conn::Stream(io));
                }
                Ok(Err(e)) => last = anyhow!("connecting to {a}: {e}"),
                Err(_) => last = anyhow!("connecting to {a}: timed out"),
            }
        }
        Err(last)
    }

    async fn handshake(
        &self,
        tls: &TlsConnector,
        tcp: TcpStream,
        a: std::net::SocketAddr,
        addr: &str,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = self.cfg.tls.as_ref().and_then(|t| t.server_name.clone());
        let name = ServerName::try_from(name.unwrap_or_else(|| host.to_owned()))
            .context("not a usable TLS server name")?;
        tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp))
            .await
            .map_err(|_| anyhow!("{a}: TLS handshake timed out"))?
            .with_context(|| format!("{a}: TLS handshake"))
    }

    /// Sends a batch; says which records the receiver (or, where it cannot answer, the
    /// transport) accepted, which it refused for good, and what stopped the rest.
    async fn send(&self, conn: &mut Conn, batch: &[edgelog_queue::Record]) -> http::Outcome {
        let whole = match conn {
            Conn::Udp(sock) => self.datagrams(sock, batch).await,
            Conn::Stream(s) => self.write(s, batch).await,
            Conn::Relp(session) => {
                let records: Vec<(u64, &[u8])> =
                    batch.iter().map(|r| (r.seq, &r.payload[..])).collect();
                let (accepted, error) = session.send(&records).await;
                return http::Outcome {
                    accepted,
                    error,
                    ..http::Outcome::default()
                };
            }
            Conn::Http(poster) => return poster.send(batch).await,
        };
        match whole {
            Ok(()) => http::Outcome {
                accepted: batch.iter().map(|r| r.seq).collect(),
                ..http::Outcome::default()
            },
            Err(e) => http::Outcome {
                error: Some(e),
                ..http::Outcome::default()
            },
        }
    }

    /// One datagram per record; GELF compressed (if configured) and chunked when large.
    async fn datagrams(
        &self,
        sock: &UdpSocket,
        batch: &[edgelog_queue::Record],
    ) -> anyhow::Result<()> {
        for rec in batch {
            if self.cfg.transport != Transport::GelfUdp {
                sock.send(&rec.payload)
                    .await
                    .context("sending a datagram")?;
                continue;
            }
            let payload: std::borrow::Cow<'_, [u8]> = if self.cfg.compress {
                compress::zlib(&rec.payload).into()
            } else {
                (&rec.payload[..]).into()
            };
            let id = self.ids.lock().unwrap_or_else(|e| e.into_inner()).next_id();
            // A record too large for 128 chunks cannot go over UDP whole; rather than block
            // the queue forever it goes cut to what fits.
            let chunks = chunk::split(&payload, self.cfg.chunk_size, id).or_else(|_| {
                let room = (self.cfg.chunk_size - chunk::HEADER_LEN) * chunk::MAX_CHUNKS;
                chunk::split(&payload[..room.min(payload.len())], self.cfg.chunk_size, id)
            });
            for c in chunks.map_err(|e| anyhow!("{e}"))? {
                sock.send(&c).await.context("sending a datagram")?;
            }
        }
        Ok(())
    }

    async fn write(
        &self,
        s: &mut (impl AsyncWrite + Unpin),
        batch: &[edgelog_queue::Record],
    ) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.payload.len() + 8).sum());
        for r in batch {
            if self.cfg.transport == Transport::GelfTcp {
                framing::write_delimited(&mut buf, &r.payload, 0);
            } else if self.cfg.octet_counting {
                framing::write_octet_counted(&mut buf, &r.payload);
            } else {
                framing::write_delimited(&mut buf, &r.payload, b'\n');
            }
        }
        // A receiver that takes nothing is timed by the sender (`stall_after`, `stall_timeout`).
        s.write_all(&buf).await.context("writing")?;
        s.flush().await.context("writing")
    }
}

/// Exponential backoff with jitter: 100 ms doubling to `max_backoff` (30 s by default), each
/// wait between half and all of the step, so many devices that lost one receiver do not come
/// back in lockstep.
#[derive(Debug)]
struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Backoff {
        Backoff {
            step: Self::FIRST,
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let half = self.step / 2;
        let wait = half + half.mul_f64(f64::from(nanos % 1000) / 1000.0);
        self.step = (self.step * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.step = Self::FIRST;
    }
}

/// The sender task. See the module documentation.
pub(super) async fn send(feed: Feed, target: Target, name: String, stats: Arc<DestinationStats>) {
    let batch_max = target.cfg.batch.max_records;
    let max_wait = target.cfg.batch.max_wait;
    let mut conn: Option<Conn> = None;
    let mut backoff = Backoff::new(target.cfg.max_backoff);
    let mut done: Option<Done> = None;
    loop {
        if let Some(d) = done.take()
            && !feed.done(d).await
        {
            break;
        }
        let Some(mut taken) = feed.read(batch_max, true, None).await else {
            break;
        };
        if taken.records.len() < batch_max && !max_wait.is_zero() {
            // A partial batch waits a little for company (from the same part of the queue).
            feed.pause(max_wait).await;
            let more = batch_max - taken.records.len();
            if let Some(more) = feed.read(more, false, Some(taken.tier)).await {
                taken.records.extend(more.records);
            }
        }
        let (tier, batch) = (taken.tier, taken.records);
        let rewind = |accepted| Done {
            tier,
            accepted,
            dead: Vec::new(),
            rewind: true,
        };
        if conn.is_none() {
            match target.connect().await {
                Ok(c) => {
                    tracing::info!(destination = %name, "connected to {}", target.cfg.address);
                    conn = Some(c);
                }
                Err(e) => {
                    down(&stats, &name, &format!("{e:#}"), batch.len());
                    done = Some(rewind(Vec::new()));
                    feed.pause(backoff.next()).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        stats.add_sent(batch.len() as u64);
        let http::Outcome {
            accepted,
            dead,
            error,
            retry_after,
        } = send_timed(&feed, &stats, &target, c, &batch, &name).await;
        stats.add_acknowledged(accepted.len() as u64);
        let dead = dead
            .into_iter()
            .filter_map(|(seq, why)| Some((batch.iter().find(|r| r.seq == seq)?.clone(), why)))
            .collect();
        let taken_back = batch.len() - accepted.len();
        done = Some(Done {
            tier,
            accepted,
            dead,
            rewind: error.is_some(),
        });
        match (error, retry_after) {
            (None, _) => {
                backoff.reset();
                if stats.set_state(ReceiverState::Up) {
                    tracing::info!(destination = %name, "receiver up: taking records");
                }
            }
            (Some(e), Some(wait)) => {
                // The receiver is there and asked for time: not down, not a backoff step.
                stats.set_error(format!("{e:#}"));
                stats.add_retried(taken_back as u64);
                feed.pause(wait.min(Duration::from_secs(300))).await;
            }
            (Some(e), None) => {
                conn = None;
                down(&stats, &name, &format!("{e:#}"), taken_back);
                feed.pause(backoff.next()).await;
            }
        }
    }
    if let Some(Conn::Relp(session)) = conn.as_mut() {
        session.close().await;
    }
}

/// Sends a batch, timing a receiver that takes nothing: after `stall_after` it is marked
/// stalled (said once), after `stall_timeout` the send fails, so the connection is dropped and
/// dialled again — a half-dead server cannot hold the destination for ever; and a stopping
/// daemon waits for it only until its grace period is over.
async fn send_timed(
    feed: &Feed,
    stats: &DestinationStats,
    target: &Target,
    conn: &mut Conn,
    batch: &[edgelog_queue::Record],
    name: &str,
) -> http::Outcome {
    let failed = |e: anyhow::Error| http::Outcome {
        error: Some(e),
        ..http::Outcome::default()
    };
    let (stall_after, stall_timeout) = (target.cfg.stall_after, target.cfg.stall_timeout);
    let send = target.send(conn, batch);
    let aborted = feed.aborted();
    let stall = tokio::time::sleep(stall_after);
    let give_up = tokio::time::sleep(stall_timeout);
    tokio::pin!(send, aborted, stall, give_up);
    let mut stalled = false;
    loop {
        tokio::select! {
            r = &mut send => return r,
            () = &mut aborted => return failed(anyhow!("stopping while the receiver took nothing")),
            () = &mut give_up => {
                return failed(anyhow!("the receiver took nothing for {stall_timeout:?}: reconnecting"));
            }
            () = &mut stall, if !stalled => {
                stalled = true;
                let why = format!("connected, but the receiver took nothing for {stall_after:?}");
                if stats.set_state(ReceiverState::Stalled) {
                    tracing::warn!(destination = %name, "receiver stalled: {why}");
                }
                stats.set_error(why);
            }
        }
    }
}

/// Marks the receiver down; the batch goes back to be sent again.
fn down(stats: &DestinationStats, name: &str, error: &str, batch: usize) {
    if stats.set_state(ReceiverState::Down) {
        tracing::warn!(destination = %name, "receiver down: {error}");
    }
    stats.set_error(error.to_owned());
    stats.add_retried(batch as u64);
}
