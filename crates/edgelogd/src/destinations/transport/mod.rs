//! Transports: how a network destination's records reach its receiver, one file each.
//!
//! A [`Transport`] connects, sends a batch and says what became of each record (an
//! [`Outcome`]), and forgets a connection that failed. It knows nothing of queues, retries or
//! stalls: the one transport-neutral sender ([`sender`](super::sender)) reads the queue,
//! times the send, acknowledges and retries, whatever the transport. What a transport can say
//! of a record is what its protocol can:
//!
//! | transport | file | a record is taken when |
//! |---|---|---|
//! | `syslog_tcp` | `syslog_tcp.rs` | its batch is written to the socket whole |
//! | `syslog_udp` | `syslog_udp.rs` | its datagram is handed to the kernel |
//! | `relp` | `relp.rs` | the receiver answered `200` for it |
//! | `gelf_tcp` | `gelf_tcp.rs` | its batch is written to the socket whole |
//! | `gelf_udp` | `gelf_udp.rs` | its chunks are handed to the kernel |
//! | `gelf_http` | `gelf_http.rs` | the receiver answered `2xx` (other `4xx`: refused for good) |
//!
//! The stream transports are one [`Stream`] with their own framing, dialled by [`Dialer`] (TCP,
//! maybe TLS); the datagram ones share [`udp_socket`].
//! Each file also reads its transport's own keys and is a destination type in the registry
//! ([`TYPES`]), the keys every network destination has being read by
//! [`network`](super::network). Adding a transport is one file here, one [`TransportConfig`]
//! variant (in `network.rs`, with the other configs), and one line in [`dispatch`] and in
//! [`TYPES`].

mod gelf_http;
mod gelf_tcp;
mod gelf_udp;
mod relp;
mod syslog_tcp;
mod syslog_udp;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use edgelog_codec::framing;
use edgelog_queue::Record;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::network::{NetworkConfig, TransportConfig};
use crate::component::DestinationType;
use crate::tls::ClientTlsConfig;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The network destination types, one per transport.
pub(crate) const TYPES: [DestinationType; 6] = [
    syslog_tcp::TYPE,
    syslog_udp::TYPE,
    relp::TYPE,
    gelf_tcp::TYPE,
    gelf_udp::TYPE,
    gelf_http::TYPE,
];

/// What one attempt at a batch came to.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// Taken by the receiver (or, where it cannot answer, by the transport).
    pub(super) accepted: Vec<u64>,
    /// Refused for good, with the reason: for the dead-letter file.
    pub(super) dead: Vec<(u64, String)>,
    /// What stopped the rest: the connection is dropped and they are sent again.
    pub(super) error: Option<anyhow::Error>,
    /// The receiver asked to wait this long (and is not down).
    pub(super) retry_after: Option<Duration>,
}

impl Outcome {
    /// Every record of `batch` taken.
    fn all(batch: &[Record]) -> Outcome {
        Outcome {
            accepted: batch.iter().map(|r| r.seq).collect(),
            ..Outcome::default()
        }
    }

    fn failed(e: anyhow::Error) -> Outcome {
        Outcome {
            error: Some(e),
            ..Outcome::default()
        }
    }

    /// All of `batch`, or nothing and why.
    fn whole(batch: &[Record], r: anyhow::Result<()>) -> Outcome {
        match r {
            Ok(()) => Outcome::all(batch),
            Err(e) => Outcome::failed(e),
        }
    }
}

/// How records reach a receiver. See the module documentation.
pub(super) trait Transport: Send + 'static {
    /// Makes ready to send (dials, shakes hands); called when not connected.
    fn connect(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
    fn connected(&self) -> bool;
    /// Sends a batch; says which records were taken, which refused for good, and what
    /// stopped the rest.
    fn send(&mut self, batch: &[Record]) -> impl Future<Output = Outcome> + Send;
    /// Forgets the connection after a failed send.
    fn disconnect(&mut self);
    /// Ends the connection politely where the protocol has a way.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What to do with a transport once it is made: [`dispatch`] hands over the one the config
/// names, whatever its type.
pub(super) trait Use {
    type Output;
    fn with<T: Transport>(self, transport: T) -> Self::Output;
}

/// Makes the transport `cfg` names (checking what can be checked before the first connection,
/// such as the TLS files) and hands it to `u`.
pub(super) fn dispatch<U: Use>(cfg: &NetworkConfig, u: U) -> anyhow::Result<U::Output> {
    Ok(match &cfg.transport {
        TransportConfig::SyslogTcp { octet_counting } => {
            u.with(syslog_tcp::stream(Dialer::new(cfg)?, *octet_counting))
        }
        TransportConfig::SyslogUdp => u.with(syslog_udp::SyslogUdp::new(&cfg.address)),
        TransportConfig::Relp { window } => u.with(relp::Relp::new(Dialer::new(cfg)?, *window)),
        TransportConfig::GelfTcp => u.with(gelf_tcp::stream(Dialer::new(cfg)?)),
        TransportConfig::GelfUdp {
            chunk_size,
            compress,
        } => u.with(gelf_udp::GelfUdp::new(&cfg.address, *chunk_size, *compress)),
        TransportConfig::GelfHttp(http) => {
            let tls = cfg.tls.as_ref().map(tls_client_config).transpose()?;
            u.with(gelf_http::Poster::new(http, tls)?)
        }
    })
}

/// A byte stream to the receiver, plain or TLS.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Dials a stream receiver: TCP, and TLS when configured. The host is resolved at each dial
/// and every address it has is tried.
pub(super) struct Dialer {
    address: String,
    tls: Option<TlsConnector>,
    server_name: Option<String>,
}

impl Dialer {
    /// Checks what can be checked before the first connection (the TLS files).
    fn new(cfg: &NetworkConfig) -> anyhow::Result<Dialer> {
        let tls = cfg.tls.as_ref().map(tls_client_config).transpose()?;
        Ok(Dialer {
            address: cfg.address.clone(),
            tls: tls.map(|t| TlsConnector::from(Arc::new(t))),
            server_name: cfg.tls.as_ref().and_then(|t| t.server_name.clone()),
        })
    }

    async fn dial(&self) -> anyhow::Result<Box<dyn Io>> {
        let addr = &self.address;
        let mut last = anyhow!("{addr}: no address found");
        let addrs = tokio::net::lookup_host(addr)
            .await
            .with_context(|| format!("resolving {addr}"))?;
        for a in addrs {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(a)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(match &self.tls {
                        None => Box::new(tcp),
                        Some(tls) => Box::new(self.handshake(tls, tcp, a).await?),
                    });
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
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let addr = &self.address;
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = self.server_name.clone().unwrap_or_else(|| host.to_owned());
        let name = ServerName::try_from(name).context("not a usable TLS server name")?;
        tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp))
            .await
            .map_err(|_| anyhow!("{a}: TLS handshake timed out"))?
            .with_context(|| format!("{a}: TLS handshake"))
    }
}

/// How a stream transport frames each record.
#[derive(Debug, Clone, Copy)]
pub(super) enum Framing {
    /// `LEN SP MSG` (RFC 6587 §3.4.1).
    OctetCounted,
    /// The record, then this byte (LF for syslog, NUL for GELF).
    Delimited(u8),
}

/// A plain byte stream to the receiver (TCP, maybe TLS): syslog over TCP and GELF TCP. A
/// batch goes in one write and is taken when written whole — the most a stream can say.
pub(super) struct Stream {
    dialer: Dialer,
    framing: Framing,
    conn: Option<Box<dyn Io>>,
}

impl Stream {
    pub(super) fn new(dialer: Dialer, framing: Framing) -> Stream {
        Stream {
            dialer,
            framing,
            conn: None,
        }
    }
}

impl Transport for Stream {
    async fn connect(&mut self) -> anyhow::Result<()> {
        self.conn = Some(self.dialer.dial().await?);
        Ok(())
    }

    fn connected(&self) -> bool {
        self.conn.is_some()
    }

    async fn send(&mut self, batch: &[Record]) -> Outcome {
        let Some(io) = self.conn.as_mut() else {
            return Outcome::failed(anyhow!("not connected"));
        };
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.payload.len() + 8).sum());
        for r in batch {
            match self.framing {
                Framing::OctetCounted => framing::write_octet_counted(&mut buf, &r.payload),
                Framing::Delimited(end) => framing::write_delimited(&mut buf, &r.payload, end),
            }
        }
        // A receiver that takes nothing is timed by the sender (`stall_after`,
        // `stall_timeout`).
        let written = async {
            io.write_all(&buf).await.context("writing")?;
            io.flush().await.context("writing")
        };
        Outcome::whole(batch, written.await)
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }
}

/// A UDP socket connected to `address` (resolved now).
async fn udp_socket(address: &str) -> anyhow::Result<UdpSocket> {
    let a = tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("resolving {address}"))?
        .next()
        .ok_or_else(|| anyhow!("{address}: no address found"))?;
    let local = if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(a).await?;
    Ok(sock)
}

/// The rustls client configuration for `cfg`: its CA, and our certificate if it has one.
fn tls_client_config(cfg: &ClientTlsConfig) -> anyhow::Result<ClientConfig> {
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
