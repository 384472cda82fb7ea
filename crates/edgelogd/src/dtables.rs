//! The daemon's own tables: every received record also lands in a table, so
//! `edgelog show log table` and `edgelog tail` show syslog, kernel and file logs next to the
//! library tables, in the same format, with no daemon in the read path.
//!
//! The daemon is the BD `edgelogd`; each application it hears from is a module with its own
//! table (`sshd.edgelogd.log`, `kernel.edgelogd.log`), and the syslog facility is the group,
//! so `set log level`-style scoping and `show log table … --level` work as for a library.
//! Entries are free-text events (the `{text}` template) with the message as the argument.
//! Application names come from the network, so they are sanitised into table names and
//! capped by `max_apps`; the rest share `other.edgelogd.log`. The `tables` source skips this
//! BD, so the daemon never reads its own output back.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use edgelog_core::Level;
use edgelog_core::maps::{self, LogMap};
use edgelog_core::table::args::ArgWriter;
use edgelog_core::table::{TableConfig, TableWriter, flags};

use crate::config::TablesConfig;
use crate::event::Event;

/// The BD name of the daemon's tables.
pub const BD: &str = "edgelogd";

/// Writers for the daemon's tables. See the module documentation.
#[derive(Debug)]
pub struct DaemonTables {
    dir: PathBuf,
    config: TablesConfig,
    tables: HashMap<String, TableWriter>,
    maps: Vec<LogMap>,
    scratch: Vec<u8>,
}

impl DaemonTables {
    /// Opens `<run_dir>/edgelogd/`, keeping the maps a previous run published.
    pub fn open(run_dir: &Path, config: TablesConfig) -> io::Result<DaemonTables> {
        let dir = run_dir.join(BD);
        std::fs::create_dir_all(&dir)?;
        let maps = maps::read(&dir.join(maps::FILE_NAME)).unwrap_or_default();
        let scratch = vec![0; config.slot_size as usize];
        Ok(DaemonTables {
            dir,
            config,
            tables: HashMap::new(),
            maps,
            scratch,
        })
    }

    /// The module (table) an app's records go to.
    fn module(&self, app: Option<&str>) -> String {
        let name = sanitize(app.unwrap_or("unknown"));
        if self.tables.contains_key(&name) || self.tables.len() < self.config.max_apps {
            name
        } else {
            "other".to_owned()
        }
    }

    /// Appends `e` to its app's table, creating the table and its map on first use.
    pub fn write(&mut self, e: &Event, local_host: Option<&str>) -> io::Result<()> {
        let module = self.module(e.app());
        let group = e.facility().name();
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
            maps::write(&self.dir.join(maps::FILE_NAME), &self.maps)?;
        }
        if !self.tables.contains_key(&module) {
            let mut tc = TableConfig::new(BD, &module);
            tc.capacity = self.config.capacity;
            tc.slot_size = self.config.slot_size;
            // One task writes the daemon's tables: one (shared) lane is all it needs.
            tc.lanes = 1;
            let w = TableWriter::open(&self.dir.join(tc.file_name()), &tc)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.tables.insert(module.clone(), w);
        }
        let table = &self.tables[&module];
        let room = table.payload_capacity().min(self.scratch.len());
        let mut w = ArgWriter::new(&mut self.scratch[..room]);
        let text = e.msg().message.as_deref().unwrap_or("");
        match e.msg().hostname.as_deref() {
            // Records from other hosts say where they came from.
            Some(h) if Some(h) != local_host => {
                let mut s = String::with_capacity(h.len() + 3 + text.len());
                s.push('[');
                s.push_str(h);
                s.push_str("] ");
                s.push_str(text);
                w.str(&s);
            }
            _ => w.str(text),
        }
        let mut f = flags::DYNAMIC;
        if w.truncated() {
            f |= flags::TRUNCATED;
        }
        let len = w.as_bytes().len();
        let _ = table.append(
            e.time().as_unix_nanos(),
            id,
            e.level(),
            f,
            &self.scratch[..len],
        );
        Ok(())
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
        let mut t = DaemonTables::open(dir.path(), cfg).unwrap();
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
            t.write(&e, Some("box")).unwrap();
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
