//! The daemon's configuration: named sources and destinations, device facts, directories.
//!
//! The shape is Vector's: `[sources.<name>]` and `[destinations.<name>]` tables with a
//! `type`; the name is how the operator refers to the component everywhere (counters,
//! `show log destinations`, the plugin alias). This module reads what every component shares
//! and the top-level tables; each type reads its own keys, found in the
//! [`Registry`](crate::component::Registry) it is given — so the config imports no component
//! ([`component`](crate::component) says why). Reading is strict: an unknown key, a wrong
//! type, an out-of-range number or two sources on one address is an error naming the file,
//! line and key, and every error in the file is reported at once ([`reader`] explains why the
//! file is read by hand rather than with serde).
//!
//! Relative paths resolve where the thing belongs: socket paths in the run directory,
//! stores in the state directory, watched files next to the config file. The embedded default
//! ([`DEFAULT_CONFIG`]) is read through the same code, so it is checked like any other file.

pub(crate) mod reader;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgelog_codec::FormatHint;
use edgelog_codec::escape::Escape;
use edgelog_core::{Facility, Level, LevelFilter};

use crate::component::{DestinationSpec, Registry, SourceSpec};
pub use reader::{ConfigError, Dirs};
use reader::{Diagnostics, Section};

/// The configuration `edgelogd` runs with when given none (see [`default_config`]).
pub const DEFAULT_CONFIG: &str = r#"# edgelogd's embedded default configuration.
# Relative socket paths are in the run directory, relative stores in the state directory.

[sources.devlog]
type = "unix_datagram"
path = "log.sock"

# `edgelog run -n NAME -- CMD` and linuxkit's logwrite hand their output here.
[sources.memlogd]
type = "memlogd"

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

/// What the embedded default adds when edgelogd is the box's system logger (root, in the
/// system run directory): the box's `/dev/log` and the kernel's log. Both are `optional`: when
/// another process holds `/dev/log` (journald, rsyslog) or `/dev/kmsg` cannot be read, the
/// daemon says so and goes on with the rest.
pub const SYSTEM_SOURCES: &str = r#"
# As the box's system logger (root, the system run directory):
[sources.system_log]
type = "unix_datagram"
path = "/dev/log"
optional = true

[sources.kernel]
type = "kmsg"
optional = true
"#;

/// The embedded default: [`DEFAULT_CONFIG`], and [`SYSTEM_SOURCES`] for the system logger.
pub fn default_config(system_logger: bool) -> String {
    let mut text = DEFAULT_CONFIG.to_owned();
    if system_logger {
        text += SYSTEM_SOURCES;
    }
    text
}

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
    pub(crate) sources: BTreeMap<String, SourceConfig>,
    pub(crate) destinations: BTreeMap<String, DestinationConfig>,
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

/// The name the daemon's own tables have among the destinations (counters, plugin alias).
pub(crate) const TABLES_DESTINATION: &str = "tables";

/// `[tables]`: the daemon's own tables, one per application it receives records from — a
/// built-in destination named [`TABLES_DESTINATION`].
#[derive(Debug, Clone, PartialEq)]
pub struct TablesConfig {
    pub enabled: bool,
    pub capacity: u64,
    pub slot_size: u32,
    /// Applications beyond this many share the table `other.edgelogd.log`.
    pub max_apps: usize,
    /// What the tables take, as any destination's `level` and `match`.
    pub level: LevelFilter,
    pub filter: Match,
}

impl Default for TablesConfig {
    fn default() -> TablesConfig {
        TablesConfig {
            enabled: true,
            capacity: edgelog_core::table::DEFAULT_CAPACITY,
            slot_size: 512,
            max_apps: 64,
            level: LevelFilter::from(Level::Debug),
            filter: Match::default(),
        }
    }
}

/// One `[sources.<name>]`: what every source shares, and its type's own config.
#[derive(Debug, Clone)]
pub(crate) struct SourceConfig {
    pub spec: Arc<dyn SourceSpec>,
    /// How frames are decoded (`format`, default the type's).
    pub format: FormatHint,
    /// The app name for records that carry none (files, stdin).
    pub app_name: Option<String>,
    /// The largest frame kept whole; longer ones are cut, flagged and counted.
    pub max_frame: usize,
    /// A source that cannot start (its socket held by another process, its device not
    /// readable) is said in the log and left out, rather than failing the start.
    pub optional: bool,
}

/// One `[destinations.<name>]`; the name is the plugin alias.
#[derive(Debug, Clone)]
pub(crate) struct DestinationConfig {
    pub spec: Arc<dyn DestinationSpec>,
    /// Export this severity and more severe (default: everything).
    pub level: LevelFilter,
    pub filter: Match,
    /// How control characters in RFC 5424 / 3164 text are written (`octal` by default).
    pub escape: Escape,
}

impl PartialEq for SourceConfig {
    fn eq(&self, o: &SourceConfig) -> bool {
        crate::component::same(&*self.spec, &*o.spec)
            && (self.format, &self.app_name, self.max_frame, self.optional)
                == (o.format, &o.app_name, o.max_frame, o.optional)
    }
}

impl PartialEq for DestinationConfig {
    fn eq(&self, o: &DestinationConfig) -> bool {
        crate::component::same(&*self.spec, &*o.spec)
            && (self.level, &self.filter, self.escape) == (o.level, &o.filter, o.escape)
    }
}

pub use crate::select::Match;

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

/// Reads a configuration from `text`, with the component types of `registry`; `file` names it
/// in errors. Directory keys are read before anything is resolved, so `dirs` is asked for once
/// they are known.
pub(crate) fn parse(
    file: &str,
    text: &str,
    registry: &Registry,
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

    let device = root.table(&mut d, "device").map(|s| read_device(&mut d, s));
    let tables = root.table(&mut d, "tables").map(|s| read_tables(&mut d, s));
    let tables = tables.unwrap_or_default();
    let control = root
        .table(&mut d, "control")
        .map(|s| read_control(&mut d, s));

    let (sources, source_spans) = components(&mut d, &mut root, "sources", |d, s| {
        (read_source(d, s, registry, &dirs), None)
    });
    let dest_span = root.get("destinations").map(|at| at.span);
    let (destinations, queue_spans) = components(&mut d, &mut root, "destinations", |d, s| {
        let queue = s.span_of("queue");
        (read_destination(d, s, registry, &dirs), queue)
    });
    if tables.enabled
        && let Some(span) = queue_spans.get(TABLES_DESTINATION)
    {
        let key = format!("destinations.{TABLES_DESTINATION}");
        let why = "this name is the daemon's own tables' (configured in [tables]): choose another";
        d.error(span, &key, why);
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
    check_conflicts(&mut d, &sources, &source_spans);

    if d.errors.is_empty() {
        Ok((
            Config {
                run_dir,
                state_dir,
                http_body_budget,
                device: device.unwrap_or_default(),
                tables,
                control: control.unwrap_or_default(),
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

/// Where a value or table is in the text.
type Span = std::ops::Range<usize>;

/// The named tables of `[<key>.<name>]`, each read by `read`, with the span errors about it
/// point at (the table's, or the one `read` gives).
fn components<'a, 'i, T>(
    d: &mut Diagnostics<'_>,
    root: &mut Section<'a, 'i>,
    key: &'static str,
    mut read: impl FnMut(&mut Diagnostics<'_>, Section<'a, 'i>) -> (Option<T>, Option<Span>),
) -> (BTreeMap<String, T>, BTreeMap<String, Span>) {
    let (mut read_ones, mut spans) = (BTreeMap::new(), BTreeMap::new());

    if let Some(mut section) = root.table(d, key) {
        for (name, s) in section.entries(d) {
            check_name(d, &s, &name);
            let table = s.span();
            let (one, span) = read(d, s);
            spans.insert(name.clone(), span.unwrap_or(table));
            if let Some(one) = one {
                read_ones.insert(name, one);
            }
        }
    }
    (read_ones, spans)
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
    for (name, dest) in destinations.iter().filter(|(_, d)| d.spec.blocks()) {
        let store = destinations
            .iter()
            .find(|(_, other)| other.spec.local_store() && shares(&dest.filter, &other.filter));
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
    sources: &BTreeMap<String, SourceConfig>,
    spans: &BTreeMap<String, std::ops::Range<usize>>,
) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, s) in sources {
        for endpoint in s.spec.endpoints() {
            if let Some(first) = seen.insert(endpoint.clone(), name) {
                d.error(
                    spans.get(name).unwrap_or(&(0..0)),
                    &format!("sources.{name}"),
                    format!("{endpoint} is already used by source {first:?}"),
                );
            }
        }
    }
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

fn read_control(d: &mut Diagnostics<'_>, mut s: Section<'_, '_>) -> ControlConfig {
    let c = ControlConfig {
        group: s.value(d, "group", reader::string),
        metrics_address: s.value(d, "metrics_address", reader::address),
    };
    s.finish(d);
    c
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
        level: s
            .value(d, "level", reader::parsed::<LevelFilter>)
            .unwrap_or(def.level),
        filter: s
            .table(d, "match")
            .map(|m| read_match(d, m))
            .unwrap_or_default(),
    };
    if !t.slot_size.is_multiple_of(8) {
        let span = s.get("slot_size").map_or(s.span(), |a| a.span);
        d.error(&span, &s.key_path("slot_size"), "must be a multiple of 8");
    }
    s.finish(d);
    t
}

/// The span of a table's `type` value, for errors about it.
fn type_span(s: &mut Section<'_, '_>) -> std::ops::Range<usize> {
    s.get("type").map_or(s.span(), |a| a.span)
}

/// A source: the keys every source has, then its type's own.
fn read_source(
    d: &mut Diagnostics<'_>,
    mut s: Section<'_, '_>,
    registry: &Registry,
    dirs: &Dirs,
) -> Option<SourceConfig> {
    let ty = s.required(d, "type", reader::string)?;
    let Some(kind) = registry.source(&ty) else {
        let msg = if registry.sources_later.contains(&ty.as_str()) {
            format!("source type {ty:?} is not in this build yet")
        } else {
            let names: Vec<_> = registry.sources.iter().map(|t| t.name).collect();
            format!(
                "unknown source type {ty:?}: expected one of {}",
                names.join(", ")
            )
        };
        d.error(&type_span(&mut s), &s.key_path("type"), msg);
        return None;
    };
    let format = s
        .value(d, "format", reader::parsed::<FormatHint>)
        .unwrap_or(kind.format);
    let app_name = s.value(d, "app_name", reader::string);
    let max_frame = s
        .value(d, "max_frame", reader::positive_size)
        .map_or(edgelog_codec::Framer::DEFAULT_MAX_FRAME, |n| {
            n.clamp(64, 16 << 20) as usize
        });
    let optional = s.value(d, "optional", reader::boolean).unwrap_or(false);
    let spec = (kind.read)(d, &mut s, dirs);
    s.finish(d);
    Some(SourceConfig {
        spec: spec?,
        format,
        app_name,
        max_frame,
        optional,
    })
}

/// A destination: the keys every destination has, then its type's own.
fn read_destination(
    d: &mut Diagnostics<'_>,
    mut s: Section<'_, '_>,
    registry: &Registry,
    dirs: &Dirs,
) -> Option<DestinationConfig> {
    let ty = s.required(d, "type", reader::string)?;
    let Some(kind) = registry.destination(&ty) else {
        let names: Vec<_> = registry.destinations.iter().map(|t| t.name).collect();
        let msg = format!(
            "unknown destination type {ty:?}: expected one of {}",
            names.join(", ")
        );
        d.error(&type_span(&mut s), &s.key_path("type"), msg);
        return None;
    };
    let level = s
        .value(d, "level", reader::parsed::<LevelFilter>)
        .unwrap_or(LevelFilter::from(Level::Debug));
    let filter = s
        .table(d, "match")
        .map(|m| read_match(d, m))
        .unwrap_or_default();
    let escape = s
        .value(d, "escape", reader::one_of(Escape::NAMES))
        .and_then(|e| Escape::parse(&e))
        .unwrap_or_default();
    let spec = (kind.read)(d, &mut s, dirs);
    if let (Escape::None, Some(spec)) = (escape, &spec)
        && let Some(framing) = spec.breakable_framing()
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
        spec: spec?,
        level,
        filter,
        escape,
    })
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
pub(crate) mod tests;
