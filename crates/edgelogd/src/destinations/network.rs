//! Network destinations: what every receiver over the network shares — its address, TLS, queue,
//! batches, backoff and stall limits — with the one part that differs, the transport
//! ([`transport`](super::transport), one file each).
//!
//! One struct serves the six network types (`syslog_tcp`, `syslog_udp`, `relp`, `gelf_tcp`,
//! `gelf_udp`, `gelf_http`): a type's registry entry reads the shared keys here and its
//! transport's own keys in the transport's file. This module is the config only, so the
//! machinery imports it and it imports none of that: building one
//! ([`queue`](super::queue)'s `DestinationSpec` impl) links a queue owner, the destination's
//! thread, to a sender task ([`sender`](super::sender)) that speaks the transport.

use std::sync::Arc;
use std::time::Duration;

use crate::component::DestinationSpec;
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::output::OutputFormat;
use crate::tls::ClientTlsConfig;

/// A network receiver and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NetworkConfig {
    pub transport: TransportConfig,
    /// `host:port`, the host resolved at each connection; for `gelf_http` the URL.
    pub address: String,
    /// `rfc5424` or `rfc3164`; `gelf` for the GELF transports.
    pub format: OutputFormat,
    pub tls: Option<ClientTlsConfig>,
    pub queue: QueueConfig,
    pub batch: BatchConfig,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// A receiver connected but taking nothing for this long is marked stalled.
    pub stall_after: Duration,
    /// … and for this long, its connection is dropped and dialled again.
    pub stall_timeout: Duration,
}

/// Reads a transport's own keys.
pub(crate) type Read = fn(&mut Diagnostics<'_>, &mut Section<'_, '_>) -> TransportConfig;

/// How a network destination reaches its receiver, with what only that transport takes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TransportConfig {
    /// Syslog over TCP (or TLS): octet counting (RFC 6587 §3.4.1) or LF-terminated.
    SyslogTcp { octet_counting: bool },
    /// Syslog datagrams.
    SyslogUdp,
    /// RELP: acknowledged per record, `window` transactions unanswered at most.
    Relp { window: usize },
    /// GELF, NUL-delimited, over TCP (or TLS).
    GelfTcp,
    /// GELF datagrams of at most `chunk_size` bytes (chunked beyond), maybe zlib-compressed.
    GelfUdp { chunk_size: usize, compress: bool },
    /// GELF `POST`s, acknowledged by the HTTP status.
    GelfHttp(HttpDestConfig),
}

impl TransportConfig {
    /// The destination `type` that asks for this transport.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            TransportConfig::SyslogTcp { .. } => "syslog_tcp",
            TransportConfig::SyslogUdp => "syslog_udp",
            TransportConfig::Relp { .. } => "relp",
            TransportConfig::GelfTcp => "gelf_tcp",
            TransportConfig::GelfUdp { .. } => "gelf_udp",
            TransportConfig::GelfHttp(_) => "gelf_http",
        }
    }

    /// The formats it can carry, the default first.
    pub(crate) fn formats(&self) -> &'static [OutputFormat] {
        match self {
            TransportConfig::GelfTcp | TransportConfig::GelfUdp { .. } => &[OutputFormat::Gelf],
            TransportConfig::GelfHttp(_) => &[OutputFormat::Gelf],
            _ => &[OutputFormat::Rfc5424, OutputFormat::Rfc3164],
        }
    }

    /// Whether it takes a `tls` table (streams, and HTTPS for its CA and client certificate).
    pub(crate) fn takes_tls(&self) -> bool {
        !matches!(
            self,
            TransportConfig::SyslogUdp | TransportConfig::GelfUdp { .. }
        )
    }

    /// How the start-up summary and `show log destinations` name it (`tls`, `relp+tls`, …).
    pub(crate) fn scheme(&self, tls: bool) -> &'static str {
        match (self, tls) {
            (TransportConfig::GelfHttp(_), _) => "GELF http",
            (TransportConfig::GelfUdp { .. }, _) => "GELF udp",
            (TransportConfig::GelfTcp, true) => "GELF tls",
            (TransportConfig::GelfTcp, false) => "GELF tcp",
            (TransportConfig::SyslogUdp, _) => "udp",
            (TransportConfig::Relp { .. }, false) => "relp",
            (TransportConfig::Relp { .. }, true) => "relp+tls",
            (TransportConfig::SyslogTcp { .. }, true) => "tls",
            (TransportConfig::SyslogTcp { .. }, false) => "tcp",
        }
    }

    /// The framing, where the type has a choice (`, octet-counting`), for the summary.
    pub(crate) fn framing(&self) -> &'static str {
        match self {
            TransportConfig::SyslogTcp {
                octet_counting: true,
            } => ", octet-counting",
            TransportConfig::SyslogTcp {
                octet_counting: false,
            } => ", lf",
            _ => "",
        }
    }
}

/// `gelf_http` specifics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpDestConfig {
    pub url: String,
    /// Newline-delimited bulk bodies (one request per batch) instead of one per record.
    pub bulk: bool,
    pub keep_alive: bool,
    /// Gzip request bodies.
    pub gzip: bool,
    pub token: Option<String>,
    pub timeout: Duration,
}

/// A destination's queue (`queue = { kind, max_bytes, when_full, … }`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueueConfig {
    pub kind: QueueKind,
    /// The memory queue's bound in records.
    pub max_records: usize,
    /// The memory queue's bound in bytes (`memory`, `spill`), or the disk queue's (`disk`).
    pub max_bytes: u64,
    /// The disk part of a `spill` queue: its quota.
    pub spill_max_bytes: u64,
    /// What a full queue does (for `spill`: a full disk part).
    pub when_full: edgelog_queue::WhenFull,
    pub fsync: edgelog_queue::disk::Fsync,
}

/// Where a destination's backlog waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueKind {
    /// In memory only: lost with the process.
    Memory,
    /// On disk only, under `<state_dir>/queues/<name>`: survives restarts and `kill -9`.
    Disk,
    /// In memory while it fits, then on disk under `<state_dir>/queues/<name>` up to its
    /// quota (disk-assisted): the speed of memory for a receiver that keeps up, the room of
    /// the disk for one that does not.
    Spill,
}

impl QueueKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            QueueKind::Memory => "memory",
            QueueKind::Disk => "disk",
            QueueKind::Spill => "spill",
        }
    }
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            kind: QueueKind::Spill,
            max_records: 100_000,
            max_bytes: 64 << 20,
            spill_max_bytes: 256 << 20,
            // Never `block` by default: a receiver that stalls must not stop the box's logging
            // (it would hold up the router, every other destination and every sender).
            when_full: edgelog_queue::WhenFull::DropOldest,
            fsync: edgelog_queue::disk::Fsync::Every(Duration::from_millis(100)),
        }
    }
}

/// `batch = { max_records, max_wait }`: how much is sent at once, and how long a partial
/// batch may wait for more.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchConfig {
    pub max_records: usize,
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            max_records: 500,
            max_wait: Duration::ZERO,
        }
    }
}

/// Reads a network destination of the type whose transport `transport` reads: the
/// transport's own keys and its address, then what every network destination has.
pub(crate) fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
    transport: Read,
) -> Option<Arc<dyn DestinationSpec>> {
    let transport = transport(d, s);
    // Where it sends: `host:port`, or for HTTP the URL.
    let address = match &transport {
        TransportConfig::GelfHttp(h) => Some(h.url.clone()).filter(|u| !u.is_empty()),
        _ => s.required(d, "address", reader::host_port),
    };
    let format = OutputFormat::read(d, s, transport.formats());
    // HTTPS takes its CA and client certificate from `tls` as well.
    let tls = if transport.takes_tls() {
        crate::tls::read_client(d, s, dirs)
    } else {
        None
    };
    let queue = s.table(d, "queue").map(|q| read_queue(d, q));
    let batch = s.table(d, "batch").map(|b| read_batch(d, b));
    let mut wait = |key, default| {
        s.value(d, key, reader::positive_duration)
            .unwrap_or(Duration::from_secs(default))
            .max(Duration::from_millis(100))
    };
    let max_backoff = wait("max_backoff", 30);
    let stall_after = wait("stall_after", 10);
    let stall_timeout = wait("stall_timeout", 30);
    Some(Arc::new(NetworkConfig {
        transport,
        address: address?,
        format,
        tls,
        queue: queue.unwrap_or_default(),
        batch: batch.unwrap_or_default(),
        max_backoff,
        stall_after,
        stall_timeout,
    }))
}

fn read_queue(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>) -> QueueConfig {
    let def = QueueConfig::default();
    let kind = match s
        .value(d, "kind", reader::one_of(&["memory", "disk", "spill"]))
        .as_deref()
    {
        Some("memory") => QueueKind::Memory,
        Some("disk") => QueueKind::Disk,
        _ => def.kind,
    };
    let q = QueueConfig {
        kind,
        max_records: s
            .value(d, "max_records", reader::count(1..=100_000_000))
            .map_or(def.max_records, |n| n as usize),
        max_bytes: s
            .value(d, "max_bytes", reader::positive_size)
            .unwrap_or(if kind == QueueKind::Disk {
                512 << 20
            } else {
                def.max_bytes
            })
            .max(64 << 10),
        spill_max_bytes: s
            .value(d, "spill_max_bytes", reader::positive_size)
            .unwrap_or(def.spill_max_bytes)
            .max(64 << 10),
        when_full: s
            .value(d, "when_full", reader::parsed::<edgelog_queue::WhenFull>)
            .unwrap_or(def.when_full),
        fsync: s
            .value(d, "fsync", |v| match v {
                toml::de::DeValue::String(_) => reader::parsed(v),
                _ => reader::duration(v).map(edgelog_queue::disk::Fsync::Every),
            })
            .unwrap_or(def.fsync),
    };
    s.finish(d);
    q
}

fn read_batch(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>) -> BatchConfig {
    let def = BatchConfig::default();
    let b = BatchConfig {
        max_records: s
            .value(d, "max_records", reader::count(1..=100_000))
            .map_or(def.max_records, |n| n as usize),
        max_wait: s
            .value(d, "max_wait", reader::duration)
            .unwrap_or(def.max_wait),
    };
    s.finish(d);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{parsed, spec};
    use edgelog_core::{Level, LevelFilter};

    #[test]
    fn the_shared_and_the_transports_keys_are_read() {
        let c = parsed(
            r#"
[destinations.graylog]
type = "gelf_http"
url = "http://graylog.example:12201/gelf"
level = "warning"
queue = { kind = "disk", max_bytes = "512MiB", when_full = "block" }
batch = { max_records = 500, max_wait = "1s" }

[destinations.central]
type = "syslog_tcp"
address = "10.0.0.5:514"
format = "rfc3164"
framing = "lf"
"#,
        );
        let g: &NetworkConfig = spec(c.destinations["graylog"].spec.as_any());
        let TransportConfig::GelfHttp(http) = &g.transport else {
            panic!("not gelf_http: {:?}", g.transport);
        };
        assert_eq!(http.url, "http://graylog.example:12201/gelf");
        assert_eq!(g.address, http.url);
        assert_eq!(g.format, OutputFormat::Gelf);
        assert_eq!(g.queue.kind, QueueKind::Disk);
        assert_eq!(g.queue.max_bytes, 512 << 20);
        assert_eq!(g.batch.max_records, 500);
        assert_eq!(g.batch.max_wait, Duration::from_secs(1));
        assert_eq!(
            c.destinations["graylog"].level,
            LevelFilter::from(Level::Warning)
        );
        let t: &NetworkConfig = spec(c.destinations["central"].spec.as_any());
        assert_eq!(
            (&t.transport, t.format),
            (
                &TransportConfig::SyslogTcp {
                    octet_counting: false
                },
                OutputFormat::Rfc3164
            )
        );
        assert_eq!(t.endpoint(), "tcp 10.0.0.5:514");
    }
}
