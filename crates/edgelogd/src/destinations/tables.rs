//! The daemon's own tables: every received record also lands in a table, so
//! `edgelog show log table` and `edgelog tail` show syslog, kernel and file logs next to the
//! library tables, in the same format, with no daemon in the read path.
//!
//! They are a destination like any other, built in: named `tables`, configured by `[tables]`
//! (with its own `level` and `match`), on their own thread, so the router only hands them the
//! batch it hands everyone.
//!
//! The daemon is the BD `edgelogd`; each application it hears from is a module with its own
//! table (`sshd.edgelogd.log`, `kernel.edgelogd.log`), and the syslog facility is the group,
//! so `set log level`-style scoping and `show log table … --level` work as for a library.
//! Entries are free-text events (the `{text}` template) with the message as the argument.
//! Application names come from the network, so they are sanitised into table names and
//! capped by `max_apps`; the rest share `other.edgelogd.log`. The `tables` source skips this
//! BD, so the daemon never reads its own output back.
//!
//! **Levels as for a library.** `edgelog set log level warning --bd edgelogd` (or `--module
//! sshd`, `--group auth`, a global rule) governs what the tables record, as it would a
//! library's: each record's app and facility are resolved against the level rules, read
//! again whenever their generation moves. With no rule the tables take what `[tables] level`
//! lets through (everything by default), published as the BD's default so `edgelog show log
//! levels` shows the level that governs.
//!
//! **A full run directory costs table entries, never records.** The tables are a view; the
//! destinations are the record. A table that cannot be created, a table with no space reserved
//! and log maps that cannot be written are counted (`tables.dropped.no_space` in the
//! counters) and said once per episode in the daemon's log, and a table is tried again at most
//! once a second, so a full disk adds no system call per record.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use edgelog_core::control::{self, Control, Rule};
use edgelog_core::maps::{self, LogMap};
use edgelog_core::table::args::ArgWriter;
use edgelog_core::table::{TableConfig, TableErrorKind, TableWriter, flags};
use edgelog_core::{Level, LevelFilter};

use crate::component::{Built, DestinationSpec, DestinationStart, Sink};
use crate::config::TablesConfig;
use crate::event::{Device, Event};
use crate::stats::TablesStats;

/// The built-in destination's config: `[tables]`, where, and the counters it adds to.
#[derive(Debug, Clone)]
pub(crate) struct TablesSpec {
    pub config: TablesConfig,
    pub run_dir: PathBuf,
    pub stats: Arc<TablesStats>,
}

impl PartialEq for TablesSpec {
    /// The counters are the daemon's, whatever the config.
    fn eq(&self, o: &TablesSpec) -> bool {
        (&self.config, &self.run_dir) == (&o.config, &o.run_dir)
    }
}

impl DestinationSpec for TablesSpec {
    fn type_name(&self) -> &'static str {
        "tables"
    }

    fn endpoint(&self) -> String {
        format!("{}/{BD}/<app>.{BD}.log", self.run_dir.display())
    }

    fn how(&self) -> String {
        let c = &self.config;
        format!(
            "{} slots of {} bytes per app, at most {} apps",
            c.capacity, c.slot_size, c.max_apps
        )
    }

    fn build(&self, cx: DestinationStart<'_>) -> anyhow::Result<Built> {
        let spec = self.clone();
        let state_dir = cx.state_dir.to_owned();
        Ok(Built::local(Box::new(move || {
            let tables = DaemonTables::open(&spec.run_dir, &state_dir, spec.config, spec.stats)
                .map_err(|e| anyhow::anyhow!("opening the daemon's tables: {e}"))?;
            Ok(Box::new(tables) as Box<dyn Sink>)
        })))
    }
}

impl Sink for DaemonTables {
    fn write(&mut self, e: &Event, device: &Device) -> io::Result<usize> {
        self.write(e, device.hostname.as_deref());
        Ok(0)
    }

    /// Table entries are visible as they are written.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How long a table that could not be created, or maps that could not be written, wait
/// before they are tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The BD name of the daemon's tables.
pub(crate) const BD: &str = "edgelogd";

/// An app's and facility's table, log map and level.
#[derive(Debug)]
struct Route {
    app: Option<String>,
    group: &'static str,
    table: usize,
    id: u32,
    level: LevelFilter,
}

/// The level rules of the run directory, as of their generation.
#[derive(Debug)]
struct Levels {
    run_dir: PathBuf,
    /// Where the rules persist (`levels.conf`), to seed a control block made here.
    state_dir: PathBuf,
    control: Option<Control>,
    /// When to look for the control block again, while there is none.
    retry_at: Option<Instant>,
    /// The generation the rules were read at; `None` before the first read.
    generation: Option<u64>,
    rules: Vec<Rule>,
}

impl Levels {
    /// Whether the rules may have changed since they were read (the control block appeared,
    /// or its generation moved); rereads them if so. The block is made here when there is
    /// none yet (seeded from `<state_dir>/levels.conf`), so a rule set later is seen at the
    /// next record; when it cannot be (a full run directory), an existing one is looked for
    /// once a second.
    fn changed(&mut self) -> bool {
        if self.control.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return false;
            }
            self.retry_at = Some(Instant::now() + RETRY);
            let opened = Control::open(&self.run_dir, Some(&self.state_dir))
                .ok()
                .or_else(|| Control::open_read_only(&self.run_dir).ok().flatten());
            match opened {
                Some(c) => self.control = Some(c),
                None => return false,
            }
        }
        let Some(c) = &self.control else {
            return false;
        };
        let now = c.generation().load(std::sync::atomic::Ordering::Acquire);
        if self.generation == Some(now) {
            return false;
        }
        self.generation = Some(now);
        self.rules = c.rules();
        true
    }
}

/// Writers for the daemon's tables. See the module documentation.
#[derive(Debug)]
pub(crate) struct DaemonTables {
    dir: PathBuf,
    config: TablesConfig,
    /// One per app (module), at most `max_apps` plus `other`.
    tables: Vec<(String, TableWriter)>,
    /// Where the last record went: the next one from the same app and facility goes there
    /// without resolving its table and log map again.
    last: Option<Route>,
    /// The text of a record from another host, `[host] text`, built here without allocating.
    text: String,
    maps: Vec<LogMap>,
    /// `maps` has entries the file does not (a write failed).
    maps_dirty: bool,
    scratch: Vec<u8>,
    stats: Arc<TablesStats>,
    /// After a failure: when to try creating tables and writing maps again.
    retry_at: Option<Instant>,
    /// The level rules (`edgelog set log level … --bd edgelogd`).
    levels: Levels,
    /// A failure was said in the log and has not been resolved since.
    failing: bool,
}

impl DaemonTables {
    /// Opens `<run_dir>/edgelogd/`, keeping the maps a previous run published.
    pub(crate) fn open(
        run_dir: &Path,
        state_dir: &Path,
        config: TablesConfig,
        stats: Arc<TablesStats>,
    ) -> io::Result<DaemonTables> {
        let dir = run_dir.join(BD);
        std::fs::create_dir_all(&dir)?;
        let maps = maps::read(&dir.join(maps::FILE_NAME)).unwrap_or_default();
        let scratch = vec![0; config.slot_size as usize];
        Ok(DaemonTables {
            dir,
            config,
            tables: Vec::new(),
            last: None,
            text: String::new(),
            maps,
            maps_dirty: false,
            scratch,
            stats,
            retry_at: None,
            levels: Levels {
                run_dir: run_dir.to_owned(),
                state_dir: state_dir.to_owned(),
                control: None,
                retry_at: None,
                generation: None,
                rules: Vec::new(),
            },
            failing: false,
        })
    }

    /// Counts a record a table did not take and says why, once per episode; tables and maps
    /// are tried again after [`RETRY`].
    fn failed(&mut self, no_space: bool, why: impl FnOnce() -> String) {
        let counter = if no_space {
            &self.stats.no_space
        } else {
            &self.stats.error
        };
        counter.fetch_add(1, Relaxed);
        if !self.failing {
            self.failing = true;
            tracing::warn!(
                "daemon tables: {}; records still reach every destination, the tables miss \
                 them (counted as tables.dropped) until this clears",
                why()
            );
        }
    }

    /// Whether creating a table or writing the maps may be tried now.
    fn may_retry(&self) -> bool {
        self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// The module (table) an app's records go to.
    fn module(&self, app: Option<&str>) -> String {
        let name = sanitize(app.unwrap_or("unknown"));
        if self.tables.iter().any(|(m, _)| *m == name) || self.tables.len() < self.config.max_apps {
            name
        } else {
            "other".to_owned()
        }
    }

    /// Appends `e` to its app's table, creating the table and its map on first use. A record
    /// the table cannot take is counted (see the module documentation).
    fn write(&mut self, e: &Event, local_host: Option<&str>) {
        if self.levels.changed() {
            self.last = None;
        }
        let group = e.facility().name();
        let cached = self
            .last
            .as_ref()
            .filter(|r| r.group == group && r.app.as_deref() == e.app())
            .map(|r| (r.table, r.id, r.level));
        let (table, id, level) = match cached {
            Some(route) => route,
            None => match self.route(e.app(), group) {
                Some(route) => route,
                None => return,
            },
        };
        if level.enabled(e.level()) {
            self.append(e, local_host, table, id);
        }
    }

    /// The level of an app's (module's) events of `group` under the rules, else the tables'.
    fn level_of(&self, module: &str, group: &str) -> LevelFilter {
        match control::resolve(&self.levels.rules, BD, module, group, None) {
            (level, control::Source::Rule(_)) => level,
            _ => self.config.level,
        }
    }

    /// Finds (or makes) the table and log map of an app and facility; remembers them for the
    /// next record once both exist.
    fn route(
        &mut self,
        app: Option<&str>,
        group: &'static str,
    ) -> Option<(usize, u32, LevelFilter)> {
        self.last = None;
        let module = self.module(app);
        let id = maps::text_id(&module, group);
        if !self.maps.iter().any(|m| m.id == id) {
            self.maps.push(LogMap {
                id,
                level: Level::Debug,
                module: module.clone(),
                group: group.to_owned(),
                name: "TEXT".to_owned(),
                template: "{text}".to_owned(),
            });
            self.maps_dirty = true;
        }
        if self.maps_dirty && self.may_retry() {
            let path = self.dir.join(maps::FILE_NAME);
            // With the maps, what governs when no rule does, for `edgelog show log levels`.
            let published = maps::write(&path, &self.maps).and_then(|()| {
                let default = self.dir.join(control::BD_DEFAULT_NAME);
                control::write_bd_default(&default, self.config.level)
            });
            match published {
                Ok(()) => self.maps_dirty = false,
                Err(err) => {
                    // The entry is still written: readers show it by number until the maps are.
                    self.retry_at = Some(Instant::now() + RETRY);
                    if !self.failing {
                        self.failing = true;
                        tracing::warn!("daemon tables: writing {}: {err}", path.display());
                    }
                }
            }
        }
        if !self.tables.iter().any(|(m, _)| *m == module) {
            if !self.may_retry() {
                self.failed(true, String::new);
                return None;
            }
            let mut tc = TableConfig::new(BD, &module);
            tc.capacity = self.config.capacity;
            tc.slot_size = self.config.slot_size;
            // One task writes the daemon's tables: one (shared) lane is all it needs.
            tc.lanes = 1;
            match TableWriter::open(&self.dir.join(tc.file_name()), &tc) {
                Ok(w) => self.tables.push((module.clone(), w)),
                Err(err) => {
                    self.retry_at = Some(Instant::now() + RETRY);
                    let no_space = err.kind() == TableErrorKind::NoSpace;
                    self.failed(no_space, || err.to_string());
                    return None;
                }
            }
        }
        let table = self.tables.iter().position(|(m, _)| *m == module)?;
        let level = self.level_of(&module, group);
        if !self.maps_dirty {
            self.last = Some(Route {
                app: app.map(str::to_owned),
                group,
                table,
                id,
                level,
            });
        }
        Some((table, id, level))
    }

    /// Writes `e` as an entry of table `table` under log ID `id`.
    fn append(&mut self, e: &Event, local_host: Option<&str>, table: usize, id: u32) {
        let (module, table) = &self.tables[table];
        let room = table.payload_capacity().min(self.scratch.len());
        let mut w = ArgWriter::new(&mut self.scratch[..room]);
        let text = e.msg().message.as_deref().unwrap_or("");
        match e.msg().hostname.as_deref() {
            // Records from other hosts say where they came from.
            Some(h) if Some(h) != local_host => {
                self.text.clear();
                self.text.push('[');
                self.text.push_str(h);
                self.text.push_str("] ");
                self.text.push_str(text);
                w.str(&self.text);
            }
            _ => w.str(text),
        }
        let mut f = flags::DYNAMIC;
        if w.truncated() {
            f |= flags::TRUNCATED;
        }
        let len = w.as_bytes().len();
        let appended = table.append(
            e.time().as_unix_nanos(),
            id,
            e.level(),
            f,
            &self.scratch[..len],
        );
        if appended.is_some() {
            self.stats.written.fetch_add(1, Relaxed);
            if self.failing && !self.maps_dirty {
                self.failing = false;
                tracing::info!("daemon tables: writing again");
            }
        } else if !table.has_space() {
            // The table counted it as no_space too; the daemon's counter sums every table.
            let path = self.dir.join(format!("{module}.{BD}.log"));
            self.failed(true, || {
                format!("{}: no space reserved for its entries", path.display())
            });
        }
    }
}

/// A table name from an application name: bytes outside `[A-Za-z0-9_.-]` become `_`, at most
/// 31 bytes, `unknown` when empty.
fn sanitize(app: &str) -> String {
    let s: String = app
        .bytes()
        .take(31)
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgelog_codec::{Decoder, FormatHint, Mode, rfc3164::Context};
    use edgelog_core::Timestamp;
    use edgelog_core::table::{Cursor, TableReader};

    #[test]
    fn records_land_in_per_app_tables_readable_with_their_maps() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TablesConfig {
            max_apps: 2,
            ..TablesConfig::default()
        };
        let stats = Arc::new(TablesStats::default());
        let mut t = DaemonTables::open(dir.path(), dir.path(), cfg, stats.clone()).unwrap();
        let d = Decoder::new(
            FormatHint::Auto,
            Mode::Lenient,
            Context::utc(Timestamp::now()),
        );
        for line in [
            "<38>Oct 11 22:14:15 box sshd[7]: Accepted publickey for root",
            "<3>Oct 11 22:14:16 far kernel: oops",
            "<13>Oct 11 22:14:17 box cron: a third app goes to other",
        ] {
            let e = Event::new(
                d.decode(line.as_bytes()).into_owned(),
                "net".into(),
                Timestamp::now(),
            );
            t.write(&e, Some("box"));
        }
        let maps = maps::read_bd(dir.path(), BD);
        let read = |module: &str| {
            let r =
                TableReader::open(&dir.path().join(BD).join(format!("{module}.{BD}.log"))).unwrap();
            let mut c = Cursor::at_oldest(&r);
            let p = c.poll(&r, 10);
            p.entries
                .iter()
                .map(|e| {
                    let f = maps::format_entry(e, &maps);
                    (e.level, f.group().to_owned(), f.message)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read("sshd"),
            [(
                Level::Info,
                "auth".into(),
                "Accepted publickey for root".into()
            )]
        );
        assert_eq!(
            read("kernel"),
            [(Level::Error, "kern".into(), "[far] oops".into())]
        );
        assert_eq!(
            read("other"),
            [(
                Level::Notice,
                "user".into(),
                "a third app goes to other".into()
            )]
        );
    }
}
