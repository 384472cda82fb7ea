//! `show log tables|table|maps|levels` and `set log level`: straight from the run directory.
//!
//! Tables, log maps and the level control block are files in the run directory, so these
//! verbs need no daemon: they map the files read-only (tables) or take the control block's
//! lock (levels), exactly as the library does. Output is a router CLI's — aligned columns,
//! severities by name, newest entries last — or, with `--json`, one object per line.

use std::path::Path;

use anyhow::Context as _;
use edgelog_core::control::{self, Control, Scope, Source};
use edgelog_core::maps::{self, Formatted, LogMap};
use edgelog_core::table::{self, Entry, TableFile, TableReader};
use edgelog_core::{Level, LevelFilter, Timestamp};
use serde_json::{Value, json};

use crate::view::{columns, write_out};

/// Every table in the run directory, with the directory named in errors.
pub(crate) fn find_tables(run_dir: &Path) -> anyhow::Result<Vec<TableFile>> {
    table::find_tables(run_dir).with_context(|| format!("reading {}", run_dir.display()))
}

pub(crate) use maps::read_bd as load_maps;

/// The tables of a run directory that must exist: a view of a directory that is not there is
/// an error (a mistyped `--run-dir`), not an empty table.
fn existing_tables(run_dir: &Path) -> anyhow::Result<Vec<TableFile>> {
    if !run_dir.is_dir() {
        anyhow::bail!(
            "no run directory {} (give --run-dir, or set EDGELOG_RUN_DIR)",
            run_dir.display()
        );
    }
    find_tables(run_dir)
}

pub(crate) fn show_tables(run_dir: &Path, json: bool) -> anyhow::Result<()> {
    let mut rows = vec![
        [
            "TABLE", "BD", "ENTRIES", "CAPACITY", "LOST", "TORN", "NOSPACE", "NEWEST",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut out = String::new();
    for t in existing_tables(run_dir)? {
        let r = match TableReader::open(&t.path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("edgelog: {e}");
                continue;
            }
        };
        let c = r.counters();
        let entries = r.entries();
        let newest = r.newest().map(|e| e.time);
        if json {
            let v = json!({
                "table": t.name, "bd": t.bd, "module": r.info().module, "entries": entries,
                "capacity": r.info().capacity, "slot_size": r.info().slot_size,
                "lanes": r.info().lanes,
                "next_seq": r.lanes().map(|l| r.head(l)).collect::<Vec<_>>(),
                "lost_busy": c.lost_busy, "lost_lapped": c.lost_lapped,
                "truncated": c.truncated, "torn": c.torn, "no_space": c.no_space,
                "newest": newest.map(|t| t.to_string()),
            });
            out.push_str(&format!("{v}\n"));
        } else {
            rows.push(vec![
                t.name,
                t.bd,
                entries.to_string(),
                r.info().capacity.to_string(),
                (c.lost_busy + c.lost_lapped).to_string(),
                c.torn.to_string(),
                c.no_space.to_string(),
                newest.map_or("-".into(), |t| t.to_string()),
            ]);
        }
    }
    if !json {
        out = columns(&rows);
        if let Some(steps) = Control::open_read_only(run_dir)
            .ok()
            .flatten()
            .and_then(|c| c.clock_steps())
        {
            out.push_str(&format!(
                "note: the real-time clock was stepped {} time(s), last at {} by {:+.3} s; entry \
                 times follow each step within a second\n",
                steps.count,
                steps.last_at,
                steps.last_by_ns as f64 / 1e9
            ));
        }
    }
    write_out(&out)
}

/// Filters for `show log table`.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub(crate) level: Option<Level>,
    pub(crate) since: Option<Timestamp>,
    pub(crate) until: Option<Timestamp>,
    pub(crate) grep: Option<regex::Regex>,
    pub(crate) limit: Option<usize>,
}

/// A table entry as an operator sees it.
pub(crate) struct Shown {
    pub(crate) entry: Entry,
    pub(crate) formatted: Formatted,
}

impl Shown {
    /// The JSON shape of a table record (docs/cli.md).
    pub(crate) fn json(&self, table: &str, bd: &str, module: &str) -> Value {
        let f = &self.formatted;
        let args: serde_json::Map<String, Value> = f
            .args
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect();
        json!({
            "seq": self.entry.seq, "time": self.entry.time.to_string(),
            "level": self.entry.level.name(), "table": table, "bd": bd, "module": module,
            "group": f.map.as_ref().map(|m| m.group.clone()), "log_id": self.entry.log_id,
            "name": f.map.as_ref().map(|m| m.name.clone()), "message": f.message,
            "args": args,
        })
    }
}

fn value_json(v: &edgelog_core::Value<'_>) -> Value {
    use edgelog_core::Value as V;
    match v {
        V::I64(n) => json!(n),
        V::U64(n) => json!(n),
        V::F64(n) => json!(n),
        V::Bool(b) => json!(b),
        V::Str(s) => json!(s),
    }
}

pub(crate) fn show(entry: Entry, maps: &[LogMap]) -> Shown {
    let formatted = maps::format_entry(&entry, maps);
    Shown { entry, formatted }
}

pub(crate) fn show_table(
    run_dir: &Path,
    table: &str,
    filter: &Filter,
    json: bool,
) -> anyhow::Result<()> {
    // A table that is not there is a failed operation (exit 1), not bad usage.
    let Some(found) = existing_tables(run_dir)?
        .into_iter()
        .find(|t| t.name == table)
    else {
        anyhow::bail!(
            "no table {table:?} in {} (see `edgelog show log tables`)",
            run_dir.display()
        );
    };
    let reader = TableReader::open(&found.path)?;
    let maps = load_maps(run_dir, &found.bd);
    let mut shown: Vec<Shown> = Vec::new();
    for e in reader.all() {
        if filter.level.is_some_and(|l| e.level > l)
            || filter.since.is_some_and(|t| e.time < t)
            || filter.until.is_some_and(|t| e.time > t)
        {
            continue;
        }
        let s = show(e, &maps);
        if filter
            .grep
            .as_ref()
            .is_some_and(|re| !re.is_match(&s.formatted.message))
        {
            continue;
        }
        shown.push(s);
    }
    if let Some(n) = filter.limit {
        let skip = shown.len().saturating_sub(n);
        shown.drain(..skip);
    }
    let module = reader.info().module.clone();
    let mut out = String::new();
    if json {
        for s in &shown {
            out.push_str(&format!("{}\n", s.json(&found.name, &found.bd, &module)));
        }
    } else {
        let mut rows = vec![
            ["TIME", "LEVEL", "MODULE", "GROUP", "LOG ID", "MESSAGE"]
                .map(String::from)
                .to_vec(),
        ];
        for s in &shown {
            rows.push(vec![
                s.entry.time.to_string(),
                s.entry.level.name().to_string(),
                module.clone(),
                s.formatted.group().to_owned(),
                s.formatted.name().to_owned(),
                s.formatted.message.clone(),
            ]);
        }
        out = columns(&rows);
    }
    write_out(&out)
}

pub(crate) fn show_maps(run_dir: &Path, filter: &Scope, json: bool) -> anyhow::Result<()> {
    let mut bds: Vec<String> = find_tables(run_dir)?.into_iter().map(|t| t.bd).collect();
    bds.sort();
    bds.dedup();
    let mut rows = vec![
        [
            "BD", "LOG ID", "NAME", "MODULE", "GROUP", "LEVEL", "TEMPLATE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut out = String::new();
    for b in &bds {
        for m in load_maps(run_dir, b) {
            if !filter.matches(b, &m.module, &m.group) {
                continue;
            }
            if json {
                let v = json!({"bd": b, "log_id": m.id, "name": m.name, "module": m.module,
                    "group": m.group, "level": m.level.name(), "template": m.template,
                    "args": m.arg_names()});
                out.push_str(&format!("{v}\n"));
            } else {
                rows.push(vec![
                    b.clone(),
                    m.id.to_string(),
                    m.name.clone(),
                    m.module.clone(),
                    m.group.clone(),
                    m.level.name().into(),
                    m.template.clone(),
                ]);
            }
        }
    }
    if !json {
        out = columns(&rows);
    }
    write_out(&out)
}

pub(crate) fn show_levels(run_dir: &Path, state_dir: &Path, json: bool) -> anyhow::Result<()> {
    // Viewing needs no write access: only changing levels does.
    let rules = Control::open_read_only(run_dir)?
        .map(|c| c.rules())
        .unwrap_or_default();
    let mut out = String::new();
    // The rules as set, then what they mean for every module and group the BDs declared.
    let mut rows = vec![["SCOPE", "LEVEL"].map(String::from).to_vec()];
    for r in &rules {
        if json {
            out.push_str(&format!("{}\n", json!({"kind": "rule", "bd": r.scope.bd, "module": r.scope.module, "group": r.scope.group, "level": r.level.name()})));
        } else {
            rows.push(vec![r.scope.to_string(), r.level.name().into()]);
        }
    }
    if !json {
        if rules.is_empty() {
            rows.push(vec![
                "(no rules: every module at its default: error, or what its BD or module sets)"
                    .into(),
                String::new(),
            ]);
        }
        out.push_str(&columns(&rows));
        out.push('\n');
    }
    let mut bds: Vec<String> = find_tables(run_dir)?.into_iter().map(|t| t.bd).collect();
    bds.sort();
    bds.dedup();
    let mut rows = vec![
        ["BD", "MODULE", "GROUP", "LEVEL", "FROM"]
            .map(String::from)
            .to_vec(),
    ];
    for bd in &bds {
        let defaults =
            control::read_module_defaults(&run_dir.join(bd).join(control::DEFAULTS_NAME));
        // A BD whose default is not the product's (the daemon's tables record everything).
        let bd_default = control::read_bd_default(&run_dir.join(bd).join(control::BD_DEFAULT_NAME));
        let mut scopes: Vec<(String, String)> = load_maps(run_dir, bd)
            .into_iter()
            .map(|m| (m.module, m.group))
            .collect();
        scopes.sort();
        scopes.dedup();
        for (module, group) in scopes {
            let default = defaults.iter().find(|(m, _)| *m == module).map(|(_, l)| *l);
            let (level, source) = control::resolve(&rules, bd, &module, &group, default);
            let (level, from) = match (source, bd_default) {
                (Source::Rule(s), _) => (level, format!("rule {s}")),
                (Source::ModuleDefault, _) => (level, "module default".into()),
                (Source::Default, Some(d)) => (d, "default of the BD".into()),
                (Source::Default, None) => (level, "default".into()),
            };
            if json {
                out.push_str(&format!("{}\n", json!({"kind": "effective", "bd": bd, "module": module, "group": group, "level": level.name(), "from": from})));
            } else {
                rows.push(vec![bd.clone(), module, group, level.name().into(), from]);
            }
        }
    }
    if !json {
        out.push_str(&columns(&rows));
    }
    out.push_str(&plugin_levels(run_dir, state_dir, json)?);
    write_out(&out)
}

/// The export levels of the daemon's destinations: from its config (when it runs) and set
/// from the CLI (the state directory).
fn plugin_levels(run_dir: &Path, state_dir: &Path, json: bool) -> anyhow::Result<String> {
    // A running daemon says where its state is; otherwise our own state directory.
    let state_dir =
        crate::control::daemon_state_dir(run_dir).unwrap_or_else(|| state_dir.to_owned());
    let levels = control::read_plugin_levels(&state_dir)?;
    for skipped in &levels.skipped {
        eprintln!("edgelog: {skipped}");
    }
    let set = levels.rules;
    let configured = crate::control::destination_levels(run_dir).unwrap_or_default();
    let mut out = String::new();
    let mut rows = vec![
        ["PLUGIN ALIAS", "SCOPE", "LEVEL", "FROM"]
            .map(String::from)
            .to_vec(),
    ];
    for (alias, level) in &configured {
        if json {
            out.push_str(&format!("{}\n", json!({"kind": "plugin_alias", "alias": alias, "scope": "global", "level": level, "from": "config"})));
        } else {
            rows.push(vec![
                alias.clone(),
                "global".into(),
                level.clone(),
                "config".into(),
            ]);
        }
    }
    for (alias, r) in &set {
        if json {
            out.push_str(&format!("{}\n", json!({"kind": "plugin_alias", "alias": alias, "scope": r.scope.to_string(), "level": r.level.name(), "from": "cli"})));
        } else {
            rows.push(vec![
                alias.clone(),
                r.scope.to_string(),
                r.level.name().into(),
                "cli".into(),
            ]);
        }
    }
    if !json && rows.len() > 1 {
        out.push('\n');
        out.push_str(&columns(&rows));
    }
    Ok(out)
}

/// `set log level … --plugin-alias NAME`: the export level of one destination for a scope,
/// kept in the state directory and applied by asking a running daemon to reload.
/// Sets (or, with `None`, removes) the export level of plugin alias `alias` for `scope`.
pub(crate) fn set_plugin_level(
    run_dir: &Path,
    state_dir: &Path,
    alias: &str,
    level: Option<LevelFilter>,
    scope: Scope,
) -> anyhow::Result<()> {
    scope.validate().map_err(crate::Usage)?;
    if !edgelog_core::paths::valid_name(alias) {
        return Err(crate::Usage(format!("invalid plugin alias {alias:?}")).into());
    }
    // Where the running daemon reads them; without one, our own state directory.
    let state_dir =
        crate::control::daemon_state_dir(run_dir).unwrap_or_else(|| state_dir.to_owned());
    if level.is_none()
        && !control::read_plugin_levels(&state_dir)?
            .rules
            .iter()
            .any(|(a, r)| a == alias && r.scope == scope)
    {
        anyhow::bail!("plugin alias {alias} has no export level for {scope}");
    }
    control::set_plugin_level(&state_dir, alias, &scope, level)?;
    let applied = match crate::control::request_reload(run_dir) {
        Ok(()) => "applied",
        Err(_) => "kept for when edgelogd starts",
    };
    let what = match level {
        Some(level) => format!("set to {level}"),
        None => "removed".to_owned(),
    };
    write_out(&format!(
        "export level of plugin alias {alias} for {scope} {what} ({applied})\n"
    ))
}

/// Sets (or, with `None`, removes) the level rule of `scope`.
pub(crate) fn set_level(
    run_dir: &Path,
    state_dir: &Path,
    level: Option<LevelFilter>,
    scope: Scope,
) -> anyhow::Result<()> {
    scope.validate().map_err(crate::Usage)?;
    let control = Control::open(run_dir, Some(state_dir))?;
    match level {
        Some(level) => {
            control.set(scope.clone(), level)?;
            write_out(&format!("log level of {scope} set to {level}\n"))
        }
        None => {
            if !control.rules().iter().any(|r| r.scope == scope) {
                anyhow::bail!("no log level rule for {scope}");
            }
            control.clear(&scope)?;
            write_out(&format!(
                "log level rule of {scope} removed: it follows the next matching setting\n"
            ))
        }
    }
}
