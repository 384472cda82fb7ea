//! The daemon's configuration: named sources and destinations, device facts, directories.
//!
//! The shape is CONTRACT.md's, Vector-style: `[sources.<name>]` and `[destinations.<name>]`
//! tables with a `type`; the name is how the operator refers to the component everywhere
//! (counters, `show log destinations`, the plugin alias). Reading is strict: an unknown key,
//! a wrong type, an out-of-range number or two sources on one address is an error naming the
//! file, line and key, and every error in the file is reported at once ([`reader`] explains
//! why the file is read by hand rather than with serde).
//!
//! Relative paths resolve where the thing belongs: socket paths in the run directory,
//! stores in the state directory, watched files next to the config file. The embedded default
//! ([`DEFAULT_CONFIG`]) is read through the same code, so it is checked like any other file.

pub(crate) mod reader;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgelog_codec::escape::Escape;
use edgelog_codec::{FormatHint, Framing};
use edgelog_core::{Facility, Level, LevelFilter};

pub use reader::ConfigError;
use reader::{Diagnostics, Section};

/// The configuration `edgelogd` runs with when given none (CONTRACT.md).
pub const DEFAULT_CONFIG: &str = r#"# edgelogd's embedded default configuration.
# Relative socket paths are in the run directory, relative stores in the state directory.

[sources.devlog]
type = "unix_datagram"
path = "log.sock"

[sources.syslog_udp]
type = "syslog_udp"
address = "127.0.0.1:5514"

[sources.syslog_tcp]
type = "syslog_tcp"
address = "127.0.0.1:5514"

[sources.tables]
type = "tables"

[destinations.store]
type = "file_store"
path = "store"
format = "rfc5424"
"#;

/// The name shown for the embedded default in errors and the startup summary.
pub const DEFAULT_CONFIG_NAME: &str = "<embedded default>";

/// A whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub run_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// The bytes of request bodies every HTTP source of the daemon may hold at once.
    pub http_body_budget: usize,
    pub device: DeviceConfig,
    pub tables: TablesConfig,
    pub control: ControlConfig,
    pub sources: BTreeMap<String, SourceConfig>,
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Allowed, but probably not meant (`--check-config` says them; the daemon logs them).
    pub warnings: Vec<ConfigError>,
}

/// What HTTP sources may hold of request bodies at once, by default.
pub const DEFAULT_HTTP_BODY_BUDGET: usize = 64 << 20;

/// `[device]`: facts added to every record. `"auto"` reads the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    pub serial_number: Option<String>,
    pub hostname: Option<String>,
    pub element_name: Option<String>,
    pub element_role: Option<String>,
    pub pod_name: Option<String>,
}

impl Default for DeviceConfig {
    /// The machine's hostname and serial number; no element name, role or pod.
    fn default() -> DeviceConfig {
        DeviceConfig {
            serial_number: Some("auto".into()),
            hostname: Some("auto".into()),
            element_name: None,
            element_role: None,
            pod_name: None,
        }
    }
}

/// `[control]`: the control socket and metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ControlConfig {
    /// The group the socket belongs to (mode 0660: owner and group may use it).
    pub group: Option<String>,
    /// Also serve `GET /metrics` on this TCP address.
    pub metrics_address: Option<SocketAddr>,
}

/// `[tables]`: the daemon's own tables, one per application it receives records from.
#[derive(Debug, Clone, PartialEq)]
pub struct TablesConfig {
    pub enabled: bool,
    pub capacity: u64,
    pub slot_size: u32,
    /// Applications beyond this many share the table `other.edgelogd.log`.
    pub max_apps: usize,
}

impl Default for TablesConfig {
    fn default() -> TablesConfig {
        TablesConfig {
            enabled: true,
            capacity: edgelog_core::table::DEFAULT_CAPACITY,
            slot_size: 512,
            max_apps: 64,
        }
    }
}

/// One `[sources.<name>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// How frames are decoded (`format`, default auto-detection per frame).
    pub format: FormatHint,
    /// The app name for records that carry none (files, stdin).
    pub app_name: Option<String>,
    /// The largest frame kept whole; longer ones are cut, flagged and counted.
    pub max_frame: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    UnixDatagram {
        path: PathBuf,
        mode: u32,
        receive_buffer: usize,
    },
    SyslogUdp {
        address: SocketAddr,
        receive_buffer: usize,
    },
    SyslogTcp {
        address: SocketAddr,
        framing: Framing,
        max_connections: usize,
        idle_timeout: Duration,
        tls: Option<TlsConfig>,
    },
    Kmsg {
        path: PathBuf,
    },
    File {
        paths: Vec<String>,
        start_at_beginning: bool,
        poll_interval: Duration,
    },
    Tables {
        poll_interval: Duration,
    },
    Stdin,
    /// GELF over UDP: chunked and compressed datagrams.
    GelfUdp {
        address: SocketAddr,
        receive_buffer: usize,
    },
    /// GELF over TCP: NUL-delimited JSON.
    GelfTcp {
        address: SocketAddr,
        max_connections: usize,
        idle_timeout: Duration,
    },
    /// GELF over HTTP: `POST <path>`, one message or newline-delimited bulk.
    GelfHttp(HttpConfig),
    /// Prometheus Alertmanager webhooks (payload version 4).
    Alertmanager(HttpConfig),
    /// linuxkit memlogd: descriptors passed over `path`, queries on `query_path`.
    Memlogd {
        path: PathBuf,
        query_path: PathBuf,
        max_lines: usize,
    },
}

/// `tls = { cert, key, client_ca }`: PEM files, relative to the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// An HTTP receiver: where it listens and what it accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    pub address: SocketAddr,
    pub path: String,
    /// The largest body accepted (after decompression, for GELF); larger ones get 413.
    pub max_body: usize,
    /// When set, requests must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Connections open at once; more are refused (counted `connection_limit`).
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (and, idle, the next ones).
    pub header_timeout: std::time::Duration,
    /// How long a client may take to send a body.
    pub body_timeout: std::time::Duration,
    /// The slowest a body may arrive, in bytes per second on average, once it has had 5 s:
    /// a trickle would hold the budget.
    pub min_body_rate: u64,
}

impl SourceKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::UnixDatagram { .. } => "unix_datagram",
            SourceKind::SyslogUdp { .. } => "syslog_udp",
            SourceKind::SyslogTcp { .. } => "syslog_tcp",
            SourceKind::Kmsg { .. } => "kmsg",
            SourceKind::File { .. } => "file",
            SourceKind::Tables { .. } => "tables",
            SourceKind::Stdin => "stdin",
            SourceKind::GelfUdp { .. } => "gelf_udp",
            SourceKind::GelfTcp { .. } => "gelf_tcp",
            SourceKind::GelfHttp(_) => "gelf_http",
            SourceKind::Alertmanager(_) => "alertmanager",
            SourceKind::Memlogd { .. } => "memlogd",
        }
    }
}

/// One `[destinations.<name>]`; the name is the plugin alias.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationConfig {
    pub kind: DestinationKind,
    /// Export this severity and more severe (default: everything).
    pub level: LevelFilter,
    pub filter: Match,
    /// How control characters in RFC 5424 / 3164 text are written (`octal` by default).
    pub escape: Escape,
}

pub use crate::select::Match;

/// The line format of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Rfc5424,
    Rfc3164,
    Json,
    Gelf,
}

impl OutputFormat {
    fn parse(name: &str) -> OutputFormat {
        match name {
            "rfc3164" => OutputFormat::Rfc3164,
            "json" => OutputFormat::Json,
            "gelf" => OutputFormat::Gelf,
            _ => OutputFormat::Rfc5424,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Rfc5424 => "rfc5424",
            OutputFormat::Rfc3164 => "rfc3164",
            OutputFormat::Json => "json",
            OutputFormat::Gelf => "gelf",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DestinationKind {
    FileStore(FileStoreConfig),
    Stdout {
        format: OutputFormat,
    },
    /// A receiver over the network: syslog (TCP, UDP, RELP) or GELF (TCP, UDP, HTTP).
    Network(Box<NetworkConfig>),
}

impl DestinationKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            DestinationKind::FileStore(_) => "file_store",
            DestinationKind::Stdout { .. } => "stdout",
            DestinationKind::Network(s) => s.transport.type_name(),
        }
    }
}

/// How a network destination reaches its receiver, with what only that transport takes.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportConfig {
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
    pub fn type_name(&self) -> &'static str {
        match self {
            TransportConfig::SyslogTcp { .. } => "syslog_tcp",
            TransportConfig::SyslogUdp => "syslog_udp",
            TransportConfig::Relp { .. } => "relp",
            TransportConfig::GelfTcp => "gelf_tcp",
            TransportConfig::GelfUdp { .. } => "gelf_udp",
            TransportConfig::GelfHttp(_) => "gelf_http",
        }
    }
}

/// `gelf_http` specifics.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpDestConfig {
    pub url: String,
    /// Newline-delimited bulk bodies (one request per batch) instead of one per record.
    pub bulk: bool,
    pub keep_alive: bool,
    /// Gzip request bodies.
    pub gzip: bool,
    pub token: Option<String>,
    pub timeout: Duration,
}

/// A network receiver and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
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

/// TLS towards a receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientTlsConfig {
    /// The CA that signed the receiver's certificate.
    pub ca: PathBuf,
    /// Our certificate and key, for receivers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the receiver's certificate must carry (default: the address's host).
    pub server_name: Option<String>,
}

/// A destination's queue (`queue = { kind, max_bytes, when_full, … }`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
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
pub enum QueueKind {
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
    pub fn name(self) -> &'static str {
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
pub struct BatchConfig {
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

/// `type = "file_store"`: the local archive.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStoreConfig {
    pub path: PathBuf,
    pub format: OutputFormat,
    /// Rotate the current file when it reaches this size…
    pub max_file_size: u64,
    /// …or this age.
    pub max_file_age: Duration,
    /// Gzip closed files.
    pub compress: bool,
    /// The whole store's quota; the oldest closed files are deleted (and counted) beyond it.
    pub max_bytes: u64,
}

/// Where relative paths resolve.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The config file's directory (files watched by `file` sources).
    pub config_dir: PathBuf,
}

/// Errors found in a configuration: every one, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

const SOURCE_TYPES: &[&str] = &[
    "unix_datagram",
    "syslog_udp",
    "syslog_tcp",
    "kmsg",
    "file",
    "tables",
    "stdin",
    "gelf_udp",
    "gelf_tcp",
    "gelf_http",
    "alertmanager",
    "memlogd",
];
/// Types CONTRACT.md names that this build does not run yet: refused with that reason
/// rather than as unknown.
const SOURCE_TYPES_LATER: &[&str] = &["relp"];
const DESTINATION_TYPES: &[&str] = &[
    "file_store",
    "stdout",
    "syslog_tcp",
    "syslog_udp",
    "relp",
    "gelf_tcp",
    "gelf_udp",
    "gelf_http",
];

/// Reads a configuration from `text`; `file` names it in errors. Directory keys are read
/// before anything is resolved, so `dirs` is asked for once they are known.
pub fn parse(
    file: &str,
    text: &str,
    dirs: impl FnOnce(Option<&Path>, Option<&Path>) -> Dirs,
) -> Result<(Config, Dirs), ConfigErrors> {
    let mut d = Diagnostics::new(file, text);
    let Some(doc) = reader::parse(text, &mut d) else {
        return Err(ConfigErrors(d.errors));
    };
    let mut root = Section::root(&doc);
    let run_dir = root
        .value(&mut d, "run_dir", reader::string)
        .map(PathBuf::from);
    let state_dir = root
        .value(&mut d, "state_dir", reader::string)
        .map(PathBuf::from);
    let dirs = dirs(run_dir.as_deref(), state_dir.as_deref());
    let http_body_budget = root
        .value(&mut d, "http_body_budget", reader::positive_size)
        .map_or(DEFAULT_HTTP_BODY_BUDGET, |n| {
            n.clamp(1 << 20, 1 << 34) as usize
        });

    let device = root
        .table(&mut d, "device")
        .map(|s| read_device(&mut d, s))
        .unwrap_or_default();
    let tables = root
        .table(&mut d, "tables")
        .map(|s| read_tables(&mut d, s))
        .unwrap_or_default();
    let control = root
        .table(&mut d, "control")
        .map(|mut s| {
            let c = ControlConfig {
                group: s.value(&mut d, "group", reader::string),
                metrics_address: s.value(&mut d, "metrics_address", address),
            };
            s.finish(&mut d);
            c
        })
        .unwrap_or_default();

    let mut sources = BTreeMap::new();
    if let Some(mut section) = root.table(&mut d, "sources") {
        for (name, s) in section.entries(&mut d) {
            check_name(&mut d, &s, &name);
            if let Some(source) = read_source(&mut d, s, &dirs) {
                sources.insert(name, source);
            }
        }
    }
    let mut destinations = BTreeMap::new();
    let mut queue_spans = BTreeMap::new();
    let dest_span = root.get("destinations").map(|at| at.span);
    if let Some(mut section) = root.table(&mut d, "destinations") {
        for (name, s) in section.entries(&mut d) {
            check_name(&mut d, &s, &name);
            queue_spans.insert(name.clone(), s.span_of("queue").unwrap_or(s.span()));
            if let Some(dest) = read_destination(&mut d, s, &dirs) {
                destinations.insert(name, dest);
            }
        }
    }
    warn_blocking(&mut d, &destinations, &queue_spans);
    let span = root.span();
    root.finish(&mut d);

    if d.errors.is_empty() && dest_span.is_none() {
        d.error(
            &span,
            "destinations",
            "no destinations: every record would be dropped (add a [destinations.<name>] table)",
        );
    }
    check_conflicts(&mut d, &doc, &sources);

    if d.errors.is_empty() {
        Ok((
            Config {
                run_dir,
                state_dir,
                http_body_budget,
                device,
                tables,
                control,
                sources,
                destinations,
                warnings: d.warnings,
            },
            dirs,
        ))
    } else {
        d.errors.sort_by_key(|e| e.line);
        Err(ConfigErrors(d.errors))
    }
}

/// `when_full = "block"` on a destination that shares sources with a local store: allowed (it
/// loses nothing), but while that receiver is away the sources stop and the store waits too.
fn warn_blocking(
    d: &mut Diagnostics<'_>,
    destinations: &BTreeMap<String, DestinationConfig>,
    spans: &BTreeMap<String, std::ops::Range<usize>>,
) {
    let shares = |a: &Match, b: &Match| {
        a.sources.is_empty()
            || b.sources.is_empty()
            || a.sources.iter().any(|s| b.sources.contains(s))
    };
    for (name, dest) in destinations {
        let DestinationKind::Network(n) = &dest.kind else {
            continue;
        };
        if n.queue.when_full != edgelog_queue::WhenFull::Block {
            continue;
        }
        let store = destinations.iter().find(|(_, other)| {
            matches!(other.kind, DestinationKind::FileStore(_))
                && shares(&dest.filter, &other.filter)
        });
        if let (Some((store, _)), Some(span)) = (store, spans.get(name)) {
            d.warning(
                span,
                &format!("destinations.{name}.queue.when_full"),
                format!(
                    "\"block\" holds up the whole pipeline while {name:?}'s queue is full: the \
                     sources it shares with the local store {store:?} stop reading, and the store \
                     waits too (datagram sources drop and count instead)"
                ),
            );
        }
    }
}

fn check_name(d: &mut Diagnostics<'_>, s: &Section<'_, '_>, name: &str) {
    if !edgelog_core::paths::valid_name(name) {
        d.error(
            &s.span(),
            s.path(),
            "invalid name: use 1-31 letters, digits, '_', '-' or '.'",
        );
    }
}

/// Two sources cannot listen on one address or socket path.
fn check_conflicts(
    d: &mut Diagnostics<'_>,
    doc: &toml::Spanned<toml::de::DeTable<'_>>,
    sources: &BTreeMap<String, SourceConfig>,
) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, s) in sources {
        let endpoint = match &s.kind {
            SourceKind::UnixDatagram { path, .. } => format!("unix socket {}", path.display()),
            SourceKind::SyslogUdp { address, .. } => format!("udp {address}"),
            SourceKind::SyslogTcp { address, .. }
            | SourceKind::GelfTcp { address, .. }
            | SourceKind::GelfHttp(HttpConfig { address, .. })
            | SourceKind::Alertmanager(HttpConfig { address, .. }) => format!("tcp {address}"),
            SourceKind::GelfUdp { address, .. } => format!("udp {address}"),
            SourceKind::Stdin => "stdin".to_owned(),
            SourceKind::Memlogd {
                path, query_path, ..
            } => {
                let query = format!("unix socket {}", query_path.display());
                if let Some(first) = seen.insert(query.clone(), name) {
                    conflict(d, doc, name, &query, first);
                }
                format!("unix socket {}", path.display())
            }
            _ => continue,
        };
        if let Some(first) = seen.insert(endpoint.clone(), name) {
            conflict(d, doc, name, &endpoint, first);
        }
    }
}

/// Reports that source `name` wants `endpoint`, which source `first` has.
fn conflict(
    d: &mut Diagnostics<'_>,
    doc: &toml::Spanned<toml::de::DeTable<'_>>,
    name: &str,
    endpoint: &str,
    first: &str,
) {
    // Point at the second source's table.
    let span = doc
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "sources")
        .and_then(|(_, v)| v.get_ref().as_table())
        .and_then(|t| t.iter().find(|(k, _)| k.get_ref() == name))
        .map_or(0..0, |(k, _)| k.span());
    d.error(
        &span,
        &format!("sources.{name}"),
        format!("{endpoint} is already used by source {first:?}"),
    );
}

fn read_device(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>) -> DeviceConfig {
    let def = DeviceConfig::default();
    let mut get = |key| s.value(d, key, reader::string);
    let device = DeviceConfig {
        serial_number: get("serial_number").or(def.serial_number),
        hostname: get("hostname").or(def.hostname),
        element_name: get("element_name"),
        element_role: get("element_role"),
        pod_name: get("pod_name"),
    };
    s.finish(d);
    device
}

fn read_tables(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>) -> TablesConfig {
    let def = TablesConfig::default();
    let t = TablesConfig {
        enabled: s
            .value(d, "enabled", reader::boolean)
            .unwrap_or(def.enabled),
        capacity: s
            .value(d, "capacity", reader::count(16..=10_000_000))
            .unwrap_or(def.capacity),
        slot_size: s
            .value(d, "slot_size", reader::count(64..=65_536))
            .map_or(def.slot_size, |n| n as u32),
        max_apps: s
            .value(d, "max_apps", reader::count(1..=4096))
            .map_or(def.max_apps, |n| n as usize),
    };
    if !t.slot_size.is_multiple_of(8) {
        let span = s.get("slot_size").map_or(s.span(), |a| a.span);
        d.error(&span, &s.key_path("slot_size"), "must be a multiple of 8");
    }
    s.finish(d);
    t
}

fn address(v: &toml::de::DeValue<'_>) -> Result<SocketAddr, String> {
    let s = reader::string(v)?;
    s.parse().map_err(|e| {
        format!(
            "invalid address {s:?}: {e} (expected IP:PORT, e.g. \"127.0.0.1:514\" or \"[::1]:514\")"
        )
    })
}

fn mode(v: &toml::de::DeValue<'_>) -> Result<u32, String> {
    let n = match v {
        toml::de::DeValue::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map_err(|_| format!("invalid mode {s:?}: expected octal digits such as \"0660\""))?,
        _ => reader::count(0..=0o7777)(v)? as u32,
    };
    if n > 0o7777 {
        return Err(format!("invalid mode {n:o}: at most 7777"));
    }
    Ok(n)
}

fn read_source(
    d: &mut Diagnostics<'_>,
    mut s: Section<'_, '_>,
    dirs: &Dirs,
) -> Option<SourceConfig> {
    let ty = s.required(d, "type", reader::string)?;
    // Watched files are mostly plain text; GELF inputs speak GELF; everything else speaks
    // some syslog.
    let format = s
        .value(d, "format", reader::parsed::<FormatHint>)
        .unwrap_or(match ty.as_str() {
            "file" | "memlogd" => FormatHint::Raw,
            "gelf_udp" | "gelf_tcp" | "gelf_http" => FormatHint::Gelf,
            _ => FormatHint::Auto,
        });
    let app_name = s.value(d, "app_name", reader::string);
    let max_frame = s
        .value(d, "max_frame", reader::positive_size)
        .map_or(edgelog_codec::Framer::DEFAULT_MAX_FRAME, |n| {
            n.clamp(64, 16 << 20) as usize
        });
    let receive_buffer = |s: &mut Section<'_, '_>, d: &mut Diagnostics<'_>| {
        s.value(d, "receive_buffer", reader::size)
            .map_or(4 << 20, |n| n.min(1 << 30) as usize)
    };
    let kind = match ty.as_str() {
        "unix_datagram" => {
            let path = s.required(d, "path", reader::string);
            let mode = s.value(d, "mode", mode).unwrap_or(0o666);
            let receive_buffer = receive_buffer(&mut s, d);
            path.map(|p| SourceKind::UnixDatagram {
                path: dirs.run_dir.join(p),
                mode,
                receive_buffer,
            })
        }
        "syslog_udp" => {
            let address = s.required(d, "address", address);
            let receive_buffer = receive_buffer(&mut s, d);
            address.map(|address| SourceKind::SyslogUdp {
                address,
                receive_buffer,
            })
        }
        "syslog_tcp" => {
            let address = s.required(d, "address", address);
            let framing = s
                .value(d, "framing", reader::parsed::<Framing>)
                .unwrap_or(Framing::Auto);
            let (max_connections, idle_timeout) = stream_limits(&mut s, d);
            let tls = s.table(d, "tls").and_then(|t| read_tls(d, t, dirs));
            address.map(|address| SourceKind::SyslogTcp {
                address,
                framing,
                max_connections,
                idle_timeout,
                tls,
            })
        }
        "gelf_udp" => {
            let address = s.required(d, "address", address);
            let receive_buffer = receive_buffer(&mut s, d);
            address.map(|address| SourceKind::GelfUdp {
                address,
                receive_buffer,
            })
        }
        "gelf_tcp" => {
            let address = s.required(d, "address", address);
            let (max_connections, idle_timeout) = stream_limits(&mut s, d);
            address.map(|address| SourceKind::GelfTcp {
                address,
                max_connections,
                idle_timeout,
            })
        }
        "gelf_http" => read_http(&mut s, d, "/gelf").map(SourceKind::GelfHttp),
        "alertmanager" => read_http(&mut s, d, "/").map(SourceKind::Alertmanager),
        "memlogd" => {
            let mut socket = |key, default: &str| {
                let p = s.value(d, key, reader::string);
                dirs.run_dir.join(p.as_deref().unwrap_or(default))
            };
            let path = socket("path", "linuxkit-external-logging.sock");
            let query_path = socket("query_path", "memlogdq.sock");
            let max_lines = s
                .value(d, "max_lines", reader::count(1..=1_000_000))
                .map_or(5000, |n| n as usize);
            Some(SourceKind::Memlogd {
                path,
                query_path,
                max_lines,
            })
        }
        "kmsg" => Some(SourceKind::Kmsg {
            path: s
                .value(d, "path", reader::string)
                .map_or_else(|| PathBuf::from("/dev/kmsg"), PathBuf::from),
        }),
        "file" => {
            let paths = s.required(d, "paths", |v| {
                let paths = reader::strings(v)?;
                match paths.iter().find(|p| wildcard_in_directory(p)) {
                    Some(p) => Err(format!(
                        "{p:?}: wildcards are supported in the file name only, not in directories"
                    )),
                    None if paths.is_empty() => Err("no paths given".to_owned()),
                    None => Ok(paths),
                }
            });
            let start = s
                .value(d, "start_at", reader::one_of(&["beginning", "end"]))
                .unwrap_or_else(|| "end".into());
            let poll_interval = s
                .value(d, "poll_interval", reader::positive_duration)
                .unwrap_or(Duration::from_millis(250));
            paths.map(|paths| SourceKind::File {
                paths: paths
                    .into_iter()
                    .map(|p| dirs.config_dir.join(p).to_string_lossy().into_owned())
                    .collect(),
                start_at_beginning: start == "beginning",
                poll_interval,
            })
        }
        "tables" => Some(SourceKind::Tables {
            poll_interval: s
                .value(d, "poll_interval", reader::positive_duration)
                .unwrap_or(Duration::from_millis(100)),
        }),
        "stdin" => Some(SourceKind::Stdin),
        other => {
            let span = s.get("type").map_or(s.span(), |a| a.span);
            let msg = if SOURCE_TYPES_LATER.contains(&other) {
                format!("source type {other:?} is not in this build yet")
            } else {
                format!(
                    "unknown source type {other:?}: expected one of {}",
                    SOURCE_TYPES.join(", ")
                )
            };
            d.error(&span, &s.key_path("type"), msg);
            return None;
        }
    };
    s.finish(d);
    Some(SourceConfig {
        kind: kind?,
        format,
        app_name,
        max_frame,
    })
}

/// What a TLS file must hold.
#[derive(Clone, Copy)]
enum Pem {
    Certificates,
    PrivateKey,
}

/// A TLS file (relative to the config's directory) that exists and parses as `what`, so
/// `--check-config` finds what the start would.
fn pem_file(dirs: &Dirs, what: Pem) -> impl Fn(&toml::de::DeValue<'_>) -> Result<PathBuf, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let dir = dirs.config_dir.clone();
    move |v| {
        let path = dir.join(reader::string(v)?);
        let shown = path.display();
        if let Err(e) = std::fs::File::open(&path) {
            return Err(format!("{shown}: {e}"));
        }
        match what {
            Pem::Certificates => {
                let certs = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| format!("{shown}: {e}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{shown}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("{shown}: no PEM certificate in it"));
                }
            }
            Pem::PrivateKey => {
                PrivateKeyDer::from_pem_file(&path)
                    .map_err(|e| format!("{shown}: no PEM private key in it ({e})"))?;
            }
        }
        Ok(path)
    }
}

fn read_tls(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>, dirs: &Dirs) -> Option<TlsConfig> {
    let cert = s.required(d, "cert", pem_file(dirs, Pem::Certificates));
    let key = s.required(d, "key", pem_file(dirs, Pem::PrivateKey));
    let client_ca = s.value(d, "client_ca", pem_file(dirs, Pem::Certificates));
    s.finish(d);
    Some(TlsConfig {
        cert: cert?,
        key: key?,
        client_ca,
    })
}

/// `max_connections` of a source that accepts connections (256 by default).
fn max_connections(s: &mut Section<'_, '_>, d: &mut Diagnostics<'_>) -> usize {
    s.value(d, "max_connections", reader::count(1..=65_536))
        .map_or(256, |n| n as usize)
}

/// `max_connections` and `idle_timeout` of a stream source.
fn stream_limits(s: &mut Section<'_, '_>, d: &mut Diagnostics<'_>) -> (usize, Duration) {
    let max_connections = max_connections(s, d);
    let idle_timeout = s
        .value(d, "idle_timeout", reader::positive_duration)
        .unwrap_or(Duration::from_secs(3600));
    (max_connections, idle_timeout)
}

fn read_http(s: &mut Section<'_, '_>, d: &mut Diagnostics<'_>, path: &str) -> Option<HttpConfig> {
    let address = s.required(d, "address", address);
    let path = s
        .value(d, "path", |v| {
            let p = reader::string(v)?;
            if p.starts_with('/') {
                Ok(p)
            } else {
                Err(format!("invalid path {p:?}: must start with '/'"))
            }
        })
        .unwrap_or_else(|| path.to_owned());
    let max_body = s
        .value(d, "max_body", reader::positive_size)
        .map_or(10 << 20, |n| n.clamp(1024, 1 << 30) as usize);
    let token = s.value(d, "token", reader::string);
    let max_connections = max_connections(s, d);
    let header_timeout = s
        .value(d, "header_timeout", reader::positive_duration)
        .unwrap_or(Duration::from_secs(10));
    let body_timeout = s
        .value(d, "body_timeout", reader::positive_duration)
        .unwrap_or(Duration::from_secs(30));
    let min_body_rate = s
        .value(d, "min_body_rate", reader::positive_size)
        .unwrap_or(1024);
    Some(HttpConfig {
        address: address?,
        path,
        max_body,
        token,
        max_connections,
        header_timeout,
        body_timeout,
        min_body_rate,
    })
}

fn read_destination(
    d: &mut Diagnostics<'_>,
    mut s: Section<'_, '_>,
    dirs: &Dirs,
) -> Option<DestinationConfig> {
    let ty = s.required(d, "type", reader::string)?;
    let level = s
        .value(d, "level", reader::parsed::<LevelFilter>)
        .unwrap_or(LevelFilter::from(Level::Debug));
    let filter = s
        .table(d, "match")
        .map(|m| read_match(d, m))
        .unwrap_or_default();
    let escape = s.value(d, "escape", reader::one_of(Escape::NAMES));
    let formats = &["rfc5424", "rfc3164", "json", "gelf"];
    let kind = match ty.as_str() {
        "file_store" => {
            let path = s
                .value(d, "path", reader::string)
                .unwrap_or_else(|| "store".into());
            let format = s
                .value(d, "format", reader::one_of(&["rfc5424", "json"]))
                .map_or(OutputFormat::Rfc5424, |f| OutputFormat::parse(&f));
            let max_file_size = s
                .value(d, "max_file_size", reader::positive_size)
                .unwrap_or(16 << 20)
                .max(4096);
            let max_file_age = s
                .value(d, "max_file_age", reader::positive_duration)
                .unwrap_or(Duration::from_secs(3600));
            let compress = s.value(d, "compress", reader::boolean).unwrap_or(true);
            let max_bytes = s
                .value(d, "max_bytes", reader::positive_size)
                .unwrap_or(256 << 20);
            Some(DestinationKind::FileStore(FileStoreConfig {
                path: dirs.state_dir.join(path),
                format,
                max_file_size,
                max_file_age,
                compress,
                max_bytes,
            }))
        }
        "stdout" => Some(DestinationKind::Stdout {
            format: s
                .value(d, "format", reader::one_of(formats))
                .map_or(OutputFormat::Rfc5424, |f| OutputFormat::parse(&f)),
        }),
        "syslog_tcp" | "syslog_udp" | "relp" | "gelf_tcp" | "gelf_udp" | "gelf_http" => {
            let (transport, address) = read_transport(d, &mut s, &ty);
            let gelf = ty.starts_with("gelf_");
            let format = if gelf {
                OutputFormat::Gelf
            } else {
                s.value(d, "format", reader::one_of(&["rfc5424", "rfc3164"]))
                    .map_or(OutputFormat::Rfc5424, |f| OutputFormat::parse(&f))
            };
            // HTTPS takes its CA and client certificate from `tls` as well.
            let tls = if ty.ends_with("_udp") {
                None
            } else {
                s.table(d, "tls").and_then(|t| read_client_tls(d, t, dirs))
            };
            let queue = s
                .table(d, "queue")
                .map(|q| read_queue(d, q))
                .unwrap_or_default();
            let batch = s
                .table(d, "batch")
                .map(|b| read_batch(d, b))
                .unwrap_or_default();
            let max_backoff = s
                .value(d, "max_backoff", reader::positive_duration)
                .unwrap_or(Duration::from_secs(30))
                .max(Duration::from_millis(100));
            let stall_after = s
                .value(d, "stall_after", reader::positive_duration)
                .unwrap_or(Duration::from_secs(10))
                .max(Duration::from_millis(100));
            let stall_timeout = s
                .value(d, "stall_timeout", reader::positive_duration)
                .unwrap_or(Duration::from_secs(30))
                .max(Duration::from_millis(100));
            Some(DestinationKind::Network(Box::new(NetworkConfig {
                transport: transport?,
                address: address?,
                format,
                tls,
                queue,
                batch,
                max_backoff,
                stall_after,
                stall_timeout,
            })))
        }
        other => {
            let span = s.get("type").map_or(s.span(), |a| a.span);
            let msg = format!(
                "unknown destination type {other:?}: expected one of {}",
                DESTINATION_TYPES.join(", ")
            );
            d.error(&span, &s.key_path("type"), msg);
            return None;
        }
    };
    let escape = escape.and_then(|e| Escape::parse(&e)).unwrap_or_default();
    if let (Escape::None, Some(kind)) = (escape, &kind)
        && let Some(framing) = breakable_framing(kind)
    {
        let span = s.get("escape").map_or(s.span(), |a| a.span);
        d.error(
            &span,
            &s.key_path("escape"),
            format!(
                "escape = \"none\" would let a newline or NUL in a message end the record and \
                 forge another in {framing}; use \"octal\" or \"c\", or a framing that cannot \
                 break (octet-counting, RELP, UDP, json, gelf)"
            ),
        );
    }
    s.finish(d);
    Some(DestinationConfig {
        kind: kind?,
        level,
        filter,
        escape,
    })
}

/// A network destination's transport (by its `type`) and where it sends: `host:port`, or
/// for `gelf_http` the URL.
fn read_transport(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    ty: &str,
) -> (Option<TransportConfig>, Option<String>) {
    let transport = match ty {
        "gelf_http" => {
            let url = s.required(d, "url", |v| {
                let u = reader::string(v)?;
                match u.split_once("://") {
                    Some(("http" | "https", rest)) if !rest.is_empty() => Ok(u),
                    _ => Err(format!(
                        "invalid url {u:?}: expected http://HOST:PORT/PATH or https://…"
                    )),
                }
            });
            let http = HttpDestConfig {
                url: url.unwrap_or_default(),
                bulk: s.value(d, "bulk", reader::boolean).unwrap_or(false),
                keep_alive: s.value(d, "keep_alive", reader::boolean).unwrap_or(true),
                gzip: s.value(d, "gzip", reader::boolean).unwrap_or(true),
                token: s.value(d, "token", reader::string),
                timeout: s
                    .value(d, "timeout", reader::positive_duration)
                    .unwrap_or(Duration::from_secs(30)),
            };
            if http.url.is_empty() {
                return (None, None);
            }
            let url = http.url.clone();
            return (Some(TransportConfig::GelfHttp(http)), Some(url));
        }
        "syslog_udp" => TransportConfig::SyslogUdp,
        "relp" => TransportConfig::Relp {
            window: s
                .value(d, "window", reader::count(1..=10_000))
                .map_or(128, |n| n as usize),
        },
        "gelf_tcp" => TransportConfig::GelfTcp,
        "gelf_udp" => TransportConfig::GelfUdp {
            chunk_size: s
                .value(d, "chunk_size", reader::count(512..=65_000))
                .map_or(1420, |n| n as usize),
            compress: s.value(d, "compress", reader::boolean).unwrap_or(true),
        },
        _ => TransportConfig::SyslogTcp {
            octet_counting: s
                .value(d, "framing", reader::one_of(&["octet-counting", "lf"]))
                .is_none_or(|f| f == "octet-counting"),
        },
    };
    (Some(transport), s.required(d, "address", host_port))
}

/// The delimiter framing a destination writes text records in, if a control character in a
/// record could break it: LF-delimited RFC 5424 / 3164 lines.
fn breakable_framing(kind: &DestinationKind) -> Option<&'static str> {
    let text = |f: OutputFormat| matches!(f, OutputFormat::Rfc5424 | OutputFormat::Rfc3164);
    match kind {
        DestinationKind::FileStore(f) if text(f.format) => Some("the store's lines"),
        DestinationKind::Stdout { format } if text(*format) => Some("standard output's lines"),
        DestinationKind::Network(n)
            if n.transport
                == (TransportConfig::SyslogTcp {
                    octet_counting: false,
                })
                && text(n.format) =>
        {
            Some("LF-framed syslog over TCP")
        }
        _ => None,
    }
}

/// `host:port`, the host a name or an address.
fn host_port(v: &toml::de::DeValue<'_>) -> Result<String, String> {
    let s = reader::string(v)?;
    let ok = s
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "invalid address {s:?}: expected HOST:PORT, e.g. \"10.0.0.5:514\" or \"logs.example:6514\""
        ))
    }
}

fn read_client_tls(
    d: &mut Diagnostics<'_>,
    mut s: Section<'_, '_>,
    dirs: &Dirs,
) -> Option<ClientTlsConfig> {
    let ca = s
        .value(d, "ca", pem_file(dirs, Pem::Certificates))
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let cert = s.value(d, "cert", pem_file(dirs, Pem::Certificates));
    let key = s.value(d, "key", pem_file(dirs, Pem::PrivateKey));
    let server_name = s.value(d, "server_name", reader::string);
    if cert.is_some() != key.is_some() {
        d.error(
            &s.span(),
            s.path(),
            "cert and key go together: give both or neither",
        );
    }
    s.finish(d);
    Some(ClientTlsConfig {
        ca,
        cert,
        key,
        server_name,
    })
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

fn read_match(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>) -> Match {
    let m = Match {
        sources: s.value(d, "source", reader::strings).unwrap_or_default(),
        apps: s.value(d, "app", reader::strings).unwrap_or_default(),
        modules: s.value(d, "module", reader::strings).unwrap_or_default(),
        facilities: s
            .value(d, "facility", |v| {
                reader::strings(v)?
                    .iter()
                    .map(|f| f.parse::<Facility>().map_err(|e| e.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    s.finish(d);
    m
}

#[cfg(test)]
mod tests;

/// Whether a path has glob characters in a directory component (unsupported).
fn wildcard_in_directory(pattern: &str) -> bool {
    let dir = Path::new(pattern)
        .parent()
        .map(|p| p.to_string_lossy().into_owned());
    dir.is_some_and(|d| d.contains(['*', '?', '[']))
}
