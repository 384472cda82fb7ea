//! `edgelog tail [-f]`: the newest entries of every table in the run directory, then (with
//! `-f`) new ones as they are written; `tail --live`: the records passing through edgelogd.
//!
//! Each table is followed with its own [`Cursor`], so an entry is printed once and in order
//! within its table; tables are interleaved as their entries arrive, after an initial backlog
//! merged by time. New tables (a BD that starts later) are picked up on the next rescan. When
//! writers lap the cursor, or a slot was left torn by a writer that died, that is said on
//! stderr with the count, so stdout stays one record per line. On a terminal, severities are
//! coloured.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgelog_core::Level;
use edgelog_core::maps::LogMap;
use edgelog_core::table::{Cursor, TableReader};

use crate::logs::{Shown, find_tables, load_maps, show};
use crate::view::{visible, write_out};

/// What to show.
#[derive(Debug)]
pub(crate) struct TailArgs {
    pub(crate) follow: bool,
    pub(crate) lines: usize,
    pub(crate) level: Option<Level>,
    pub(crate) bd: Option<String>,
    pub(crate) module: Option<String>,
    pub(crate) grep: Option<regex::Regex>,
    pub(crate) json: bool,
    pub(crate) interval: Duration,
    /// Follow the daemon's live stream instead of the tables.
    pub(crate) live: bool,
}

struct Followed {
    name: String,
    bd: String,
    reader: TableReader,
    cursor: Cursor,
    maps: Vec<LogMap>,
    maps_checked: Instant,
}

struct Printer {
    json: bool,
    colour: bool,
    /// The table column's width: the longest name followed so far (at least 18), so the
    /// columns stay aligned whatever the tables are called.
    table_width: usize,
}

impl Printer {
    fn line(&self, t: &Followed, s: &Shown) -> String {
        let module = &t.reader.info().module;
        if self.json {
            return format!("{}\n", s.json(&t.name, &t.bd, module));
        }
        let level = s.entry.level;
        let (on, off) = self.colour(level);
        format!(
            "{} {on}{:<9}{off} {:<w$} {:<8} {:<24} {}\n",
            s.entry.time,
            level.name(),
            t.name,
            visible(s.formatted.group()),
            visible(s.formatted.name()),
            visible(&s.formatted.message),
            w = self.table_width
        )
    }
}

impl Printer {
    /// Makes the table column as wide as the longest name followed.
    fn widen(&mut self, followed: &HashMap<PathBuf, Followed>) {
        let widest = followed.values().map(|t| t.name.chars().count()).max();
        self.table_width = self.table_width.max(widest.unwrap_or(0));
    }

    /// The escape codes around a severity's name on a terminal.
    fn colour(&self, level: Level) -> (&'static str, &'static str) {
        match (self.colour, level) {
            (false, _) => ("", ""),
            (true, l) if l <= Level::Error => ("\x1b[31m", "\x1b[0m"),
            (true, Level::Warning) => ("\x1b[33m", "\x1b[0m"),
            (true, Level::Notice) => ("\x1b[36m", "\x1b[0m"),
            (true, Level::Debug) => ("\x1b[2m", "\x1b[0m"),
            (true, _) => ("", ""),
        }
    }

    /// One record of the daemon's live stream (its JSON line), in the columns of a table
    /// entry: time, level, app, source, message id, message.
    fn live_line(&self, r: &serde_json::Value) -> Option<String> {
        let text = |k: &str| visible(r[k].as_str().unwrap_or("-"));
        let level: Level = text("severity").parse().ok()?;
        let (on, off) = self.colour(level);
        let time = r["timestamp"]
            .as_str()
            .or(r["received"].as_str())
            .map_or(Cow::Borrowed("-"), visible);
        Some(format!(
            "{time} {on}{:<9}{off} {:<18} {:<8} {:<24} {}\n",
            level.name(),
            text("app_name"),
            text("source"),
            text("msg_id"),
            visible(r["message"].as_str().unwrap_or(""))
        ))
    }
}

fn wanted(args: &TailArgs, t: &Followed, s: &Shown) -> bool {
    args.level.is_none_or(|l| s.entry.level <= l)
        && args
            .module
            .as_deref()
            .is_none_or(|m| m == t.reader.info().module)
        && args
            .grep
            .as_ref()
            .is_none_or(|re| re.is_match(&s.formatted.message))
}

/// Opens tables not yet followed, each from its oldest entry.
fn rescan(
    run_dir: &Path,
    args: &TailArgs,
    followed: &mut HashMap<PathBuf, Followed>,
) -> anyhow::Result<()> {
    for f in find_tables(run_dir)? {
        if followed.contains_key(&f.path) || args.bd.as_deref().is_some_and(|b| b != f.bd) {
            continue;
        }
        let Ok(reader) = TableReader::open(&f.path) else {
            continue;
        };
        let cursor = Cursor::at_oldest(&reader);
        let maps = load_maps(run_dir, &f.bd);
        followed.insert(
            f.path,
            Followed {
                name: f.name,
                bd: f.bd,
                reader,
                cursor,
                maps,
                maps_checked: Instant::now(),
            },
        );
    }
    Ok(())
}

pub(crate) fn run(run_dir: &Path, args: &TailArgs) -> anyhow::Result<()> {
    let mut printer = Printer {
        json: args.json,
        colour: !args.json && std::io::stdout().is_terminal(),
        table_width: 18,
    };
    if args.live {
        return live(run_dir, args, &printer);
    }
    let mut followed: HashMap<PathBuf, Followed> = HashMap::new();
    rescan(run_dir, args, &mut followed)?;
    printer.widen(&followed);

    // The backlog: every wanted entry still in the tables, merged by time, the newest N.
    let mut keyed: Vec<(edgelog_core::Timestamp, u64, String)> = Vec::new();
    for t in followed.values_mut() {
        let poll = t.cursor.poll(&t.reader, usize::MAX);
        for e in poll.entries {
            let s = show(e, &t.maps);
            if wanted(args, t, &s) {
                keyed.push((s.entry.time, s.entry.seq, printer.line(t, &s)));
            }
        }
    }
    keyed.sort_by_key(|k| (k.0, k.1));
    let skip = keyed.len().saturating_sub(args.lines);
    write_out(
        &keyed
            .into_iter()
            .skip(skip)
            .map(|(_, _, line)| line)
            .collect::<String>(),
    )?;
    if !args.follow {
        return Ok(());
    }

    let mut last_rescan = Instant::now();
    loop {
        std::thread::sleep(args.interval);
        if last_rescan.elapsed() >= Duration::from_secs(1) {
            // Tables created after we started are followed from their first entry.
            rescan(run_dir, args, &mut followed)?;
            printer.widen(&followed);
            last_rescan = Instant::now();
        }
        let mut out = String::new();
        for t in followed.values_mut() {
            let poll = t.cursor.poll(&t.reader, 10_000);
            if poll.lapped > 0 {
                eprintln!(
                    "edgelog: {} entries of {} were overwritten before they could be shown",
                    poll.lapped, t.name
                );
            }
            if poll.torn > 0 {
                eprintln!(
                    "edgelog: {} entries of {} were torn (their writer died)",
                    poll.torn, t.name
                );
            }
            if poll.entries.is_empty() {
                continue;
            }
            // A new event may have published new log maps.
            if t.maps_checked.elapsed() >= Duration::from_millis(500)
                || poll
                    .entries
                    .iter()
                    .any(|e| !t.maps.iter().any(|m| m.id == e.log_id))
            {
                t.maps = load_maps(run_dir, &t.bd);
                t.maps_checked = Instant::now();
            }
            for e in poll.entries {
                let s = show(e, &t.maps);
                if wanted(args, t, &s) {
                    out.push_str(&printer.line(t, &s));
                }
            }
        }
        if !out.is_empty() {
            write_out(&out)?;
        }
    }
}

/// `tail --live`: every record passing through the running edgelogd from now on (whichever
/// source it came from, whether or not daemon tables keep it), from the control socket's
/// follow stream. Level, BD (the app name) and module are filtered by the daemon; the
/// regular expression here.
fn live(run_dir: &Path, args: &TailArgs, printer: &Printer) -> anyhow::Result<()> {
    let mut query: Vec<String> = Vec::new();
    if let Some(l) = args.level {
        query.push(format!("level={}", l.name()));
    }
    for (key, v) in [("app", &args.bd), ("module", &args.module)] {
        if let Some(v) = v {
            query.push(format!("{key}={}", escape(v)));
        }
    }
    let path = format!("/v1/follow?{}", query.join("&"));
    crate::control::follow_lines(run_dir, &path, |line| {
        let Ok(r) = serde_json::from_str::<serde_json::Value>(line) else {
            return Ok(());
        };
        if let Some(n) = r["lagged"].as_u64() {
            eprintln!("edgelog: {n} batches passed while this follower lagged behind");
            return Ok(());
        }
        let message = r["message"].as_str().unwrap_or("");
        if args.grep.as_ref().is_some_and(|re| !re.is_match(message)) {
            return Ok(());
        }
        if printer.json {
            write_out(&format!("{line}\n"))
        } else {
            printer.live_line(&r).map_or(Ok(()), |l| write_out(&l))
        }
    })?;
    eprintln!("edgelog: edgelogd ended the live stream (it stopped)");
    Ok(())
}

/// `%XX` escaping of a query value (everything but unreserved characters).
fn escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
