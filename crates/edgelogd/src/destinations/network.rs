//! Network destinations: a queue in front of a sender.
//!
//! ```text
//!  router ─Arc<Batch>─► destination thread ──append──► queue (memory or disk) ──read──► sender task
//!                       (Selector, encode)                  ▲                     │ connect, frame,
//!                                                           └──────── ack ────────┘ write, retry
//! ```
//!
//! The destination thread encodes what its selector wants and appends it to the queue. A full
//! queue with `when_full = "block"` makes the thread wait, which backs the router and then the
//! sources up; `drop_newest` and `drop_oldest` are the queue's and counted there. The sender, a
//! task on the async runtime, reads batches from the queue, sends them, and acknowledges what
//! the transport accepted: for TCP and TLS a batch written to the socket in full, for UDP a
//! batch handed to the kernel — the most these protocols can say — and for RELP each record
//! the receiver answered `200` for ([`relp`](super::relp)). When sending fails the sender rewinds the queue
//! (the batch will be sent again), marks the receiver down with the error, and reconnects with
//! exponential backoff and jitter; nothing leaves the queue until acknowledged, so a receiver
//! that is away for a minute gets the minute's records when it is back.
//!
//! On stop the thread appends what it still holds (waiting at most a few seconds for room) and
//! the sender keeps sending until the queue is empty or a short deadline passes; what a disk
//! queue still holds is sent after the next start, what a memory queue still holds is counted
//! as dropped at shutdown.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use edgelog_codec::framing;
use edgelog_codec::gelf::chunk::{self, IdGenerator};
use edgelog_codec::gelf::compress;
use edgelog_queue::{Queue, QueueStats, WhenFull};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::PathBuf;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Notify;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::{STOP_GRACE, Sink};
use super::{http, relp};
use crate::config::{NetworkConfig, Transport};
use crate::event::{Device, Event};
use crate::output::Encoder;
use crate::stats::{DestinationDrop, DestinationStats, ReceiverState};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the thread and the sender share.
#[derive(Debug)]
pub(super) struct Shared {
    queue: Mutex<Box<dyn Queue>>,
    /// Records were appended (or the destination is closing).
    data: Notify,
    /// When the daemon began stopping plus [`STOP_GRACE`]: waiting for room ends there.
    stop_deadline: std::sync::OnceLock<Instant>,
    /// The destination thread has handed over everything: the sender finishes.
    closing: AtomicBool,
    when_full: WhenFull,
    stats: Arc<DestinationStats>,
}

impl Shared {
    pub(super) fn new(
        queue: Box<dyn Queue>,
        when_full: WhenFull,
        stats: Arc<DestinationStats>,
    ) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            data: Notify::new(),
            stop_deadline: std::sync::OnceLock::new(),
            closing: AtomicBool::new(false),
            when_full,
            stats,
        });
        shared.publish(&shared.lock().stats());
        shared
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Queue>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, s: &QueueStats) {
        self.stats.set_queue(s);
    }

    /// The daemon is stopping: a full queue may now hold the destination up only briefly.
    pub(super) fn begin_stop(&self) {
        let _ = self.stop_deadline.set(Instant::now() + STOP_GRACE);
        self.data.notify_one();
    }

    /// Resolves once the destination has been closing for longer than the grace period.
    async fn closed_for_good(&self) {
        loop {
            if self.closing.load(Relaxed) {
                tokio::time::sleep(STOP_GRACE).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The destination thread's side: encode, append.
#[derive(Debug)]
pub(super) struct QueueSink {
    shared: Arc<Shared>,
    encoder: Encoder,
    pending: Pending,
    /// The destination's name, for what is said of a full disk.
    name: String,
    full: super::DiskFull,
}

/// Encoded records not yet in the queue, in one buffer (no allocation per record): record
/// `i` ends at `ends[i]`; the first `taken` were appended.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    ends: Vec<usize>,
    taken: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.ends.len() - self.taken
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records not yet taken.
    fn records(&self) -> Vec<&[u8]> {
        let mut start = if self.taken == 0 {
            0
        } else {
            self.ends[self.taken - 1]
        };
        self.ends[self.taken..]
            .iter()
            .map(|&end| {
                let r = &self.buf[start..end];
                start = end;
                r
            })
            .collect()
    }

    /// The queue took the next `n`.
    fn take(&mut self, n: usize) {
        self.taken += n;
        if self.is_empty() {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.taken = 0;
    }
}

impl QueueSink {
    pub(super) fn new(shared: Arc<Shared>, encoder: Encoder, name: &str) -> QueueSink {
        QueueSink {
            shared,
            encoder,
            name: name.to_owned(),
            full: super::DiskFull::default(),
            pending: Pending::default(),
        }
    }

    /// Appends what is pending, waiting for room while the queue says block — forever while
    /// running, until the stop deadline when stopping; what is left then is counted as
    /// dropped.
    fn enqueue(&mut self) -> std::io::Result<()> {
        while !self.pending.is_empty() {
            let appended = {
                let mut q = self.shared.lock();
                let r = q.append(&self.pending.records());
                self.shared.publish(&q.stats());
                r
            };
            let stop_at = self.shared.stop_deadline.get().copied();
            let a = match appended {
                Ok(a) => {
                    self.full.cleared(&self.name, &self.shared.stats);
                    a
                }
                // A full disk is back-pressure: the records stay pending, and this thread
                // (and so the router, and the sources that can wait) waits for room.
                Err(e)
                    if e.io_error().is_some_and(|io| {
                        self.full.retry(&self.name, &self.shared.stats, io, stop_at)
                    }) =>
                {
                    continue;
                }
                Err(e) => {
                    let n = self.pending.len() as u64;
                    self.pending.clear();
                    self.shared.stats.add_drop(DestinationDrop::WriteError, n);
                    return Err(std::io::Error::other(e.to_string()));
                }
            };
            self.pending.take(a.taken);
            if a.taken > 0 {
                self.shared.data.notify_one();
            }
            if self.pending.is_empty() {
                break;
            }
            if self.shared.when_full == WhenFull::DropNewest {
                // Counted by the queue.
                self.pending.clear();
                break;
            }
            if stop_at.is_some_and(|d| Instant::now() > d) {
                let n = self.pending.len() as u64;
                self.pending.clear();
                self.shared.stats.add_drop(DestinationDrop::Shutdown, n);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Sink for QueueSink {
    fn write(&mut self, e: &Event, device: &Device) -> std::io::Result<usize> {
        let start = self.pending.buf.len();
        self.encoder.encode(&mut self.pending.buf, e, device);
        self.pending.ends.push(self.pending.buf.len());
        let n = self.pending.buf.len() - start;
        if self.pending.len() >= 256 {
            self.enqueue()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.enqueue()
    }

    fn durable(&mut self) -> std::io::Result<()> {
        self.enqueue()?;
        let mut q = self.shared.lock();
        // The OS error is kept, so a full disk is told apart (and waited out) by the caller.
        q.sync().map_err(
            |e| match e.io_error().and_then(std::io::Error::raw_os_error) {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::other(e.to_string()),
            },
        )
    }

    fn close(&mut self) -> std::io::Result<()> {
        // A destination retired by a reload stops here without the daemon stopping.
        self.shared.begin_stop();
        let r = self.enqueue();
        let _ = self.shared.lock().sync();
        self.shared.closing.store(true, Relaxed);
        self.shared.data.notify_one();
        r
    }
}

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
pub(super) async fn send(shared: Arc<Shared>, target: Target, name: String, dead_letters: PathBuf) {
    let batch_max = target.cfg.batch.max_records;
    let max_wait = target.cfg.batch.max_wait;
    let mut conn: Option<Conn> = None;
    let mut backoff = Backoff::new(target.cfg.max_backoff);
    let mut closing_since: Option<Instant> = None;
    loop {
        let closing = shared.closing.load(Relaxed);
        if closing && closing_since.is_none() {
            closing_since = Some(Instant::now());
        }
        let batch = {
            let mut q = shared.lock();
            q.read(0, batch_max, 4 << 20)
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                shared.stats.set_error(format!("reading the queue: {e}"));
                tracing::error!(destination = %name, "reading the queue: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            if closing {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), shared.data.notified()).await;
            continue;
        }
        if batch.len() < batch_max && !max_wait.is_zero() && !closing {
            // A partial batch waits a little for company.
            let _ = tokio::time::timeout(max_wait, shared.data.notified()).await;
            if let Ok(more) = shared.lock().read(0, batch_max - batch.len(), 4 << 20) {
                batch.extend(more);
            }
        }
        if closing_since.is_some_and(|t| t.elapsed() > STOP_GRACE) {
            let _ = shared.lock().rewind(0);
            break;
        }
        if conn.is_none() {
            match target.connect().await {
                Ok(c) => {
                    tracing::info!(destination = %name, "connected to {}", target.cfg.address);
                    conn = Some(c);
                }
                Err(e) => {
                    down(&shared, &name, &format!("{e:#}"), batch.len());
                    let wait = backoff.next();
                    tokio::time::sleep(if closing {
                        wait.min(Duration::from_millis(200))
                    } else {
                        wait
                    })
                    .await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        shared.stats.add_sent(batch.len() as u64);
        let outcome = send_timed(&shared, &target, c, &batch, &name).await;
        let http::Outcome {
            mut accepted,
            dead,
            error,
            retry_after,
        } = outcome;
        shared.stats.add_acknowledged(accepted.len() as u64);
        if !dead.is_empty() {
            // Refused for good: kept aside, counted, and out of the queue.
            match http::dead_letter(&dead_letters, &name, &batch, &dead) {
                Ok(path) => {
                    tracing::warn!(
                        destination = %name,
                        "{} records refused by the receiver ({}), written to {}",
                        dead.len(),
                        dead[0].1,
                        path.display()
                    );
                    shared
                        .stats
                        .add_drop(DestinationDrop::DeadLetter, dead.len() as u64);
                    shared.stats.set_error(format!("refused: {}", dead[0].1));
                    accepted.extend(dead.iter().map(|(s, _)| *s));
                }
                Err(e) => shared
                    .stats
                    .set_error(format!("writing the dead-letter file: {e}")),
            }
        }
        if !accepted.is_empty() {
            let mut q = shared.lock();
            if let Err(e) = q.ack(0, &accepted) {
                shared
                    .stats
                    .set_error(format!("acknowledging in the queue: {e}"));
            }
            shared.publish(&q.stats());
        }
        match (error, retry_after) {
            (None, _) => {
                backoff.reset();
                if shared.stats.set_state(ReceiverState::Up) {
                    tracing::info!(destination = %name, "receiver up: taking records");
                }
            }
            (Some(e), Some(wait)) => {
                // The receiver is there and asked for time: not down, not a backoff step.
                shared.stats.set_error(format!("{e:#}"));
                shared
                    .stats
                    .add_retried((batch.len() - accepted.len()) as u64);
                let _ = shared.lock().rewind(0);
                tokio::time::sleep(wait.min(Duration::from_secs(300))).await;
            }
            (Some(e), None) => {
                conn = None;
                down(
                    &shared,
                    &name,
                    &format!("{e:#}"),
                    batch.len() - accepted.len(),
                );
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
    if let Some(Conn::Relp(session)) = conn.as_mut() {
        session.close().await;
    }
    // What a disk queue still holds is sent after the next start. What a memory queue still
    // holds is lost with the process: taken out and counted, so that at exit every record a
    // destination was given is acknowledged, kept on disk, or dropped by reason.
    let mut q = shared.lock();
    if !target.cfg.queue.disk {
        let _ = q.rewind(0);
        let mut lost = 0;
        while let Ok(left) = q.read(0, 4096, usize::MAX) {
            if left.is_empty() {
                break;
            }
            lost += left.len() as u64;
            let seqs: Vec<u64> = left.iter().map(|r| r.seq).collect();
            let _ = q.ack(0, &seqs);
        }
        if lost > 0 {
            shared.stats.add_drop(DestinationDrop::Shutdown, lost);
            tracing::warn!(destination = %name, "{lost} records still queued in memory at stop are dropped");
        }
    }
    shared.publish(&q.stats());
}

/// Sends a batch, timing a receiver that takes nothing: after `stall_after` it is marked
/// stalled (said once), after `stall_timeout` the send fails, so the connection is dropped and
/// dialled again — a half-dead server cannot hold the destination for ever; and a stopping
/// daemon waits for it only briefly.
async fn send_timed(
    shared: &Shared,
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
    let closed = shared.closed_for_good();
    let stall = tokio::time::sleep(stall_after);
    let give_up = tokio::time::sleep(stall_timeout);
    tokio::pin!(send, closed, stall, give_up);
    let mut stalled = false;
    loop {
        tokio::select! {
            r = &mut send => return r,
            () = &mut closed => return failed(anyhow!("stopping while the receiver took nothing")),
            () = &mut give_up => {
                return failed(anyhow!("the receiver took nothing for {stall_timeout:?}: reconnecting"));
            }
            () = &mut stall, if !stalled => {
                stalled = true;
                let why = format!("connected, but the receiver took nothing for {stall_after:?}");
                if shared.stats.set_state(ReceiverState::Stalled) {
                    tracing::warn!(destination = %name, "receiver stalled: {why}");
                }
                shared.stats.set_error(why);
            }
        }
    }
}

/// Marks the receiver down and puts the batch back to be sent again.
fn down(shared: &Shared, name: &str, error: &str, batch: usize) {
    if shared.stats.set_state(ReceiverState::Down) {
        tracing::warn!(destination = %name, "receiver down: {error}");
    }
    shared.stats.set_error(error.to_owned());
    shared.stats.add_retried(batch as u64);
    let _ = shared.lock().rewind(0);
}
