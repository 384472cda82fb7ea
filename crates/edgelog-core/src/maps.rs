//! Log maps: what each log ID means, published beside a BD's tables.
//!
//! ```text
//! <run_dir>/<bd>/logmaps, one map per line, tab-separated (\t \n \\ escaped):
//! # edgelog log maps v1
//! <id>\t<level>\t<module>\t<group>\t<name>\t<template>
//! 2266518143\tnotice\tbgp\tpeer\tBGP_PEER_UP\tpeer {peer} (AS {asn}) is up
//! ```
//!
//! Tables store a log ID and typed arguments, never formatted text; any reader (the CLI, the
//! daemon) formats an entry by putting its arguments, in order, into the template's `{name}`
//! placeholders. The file is rewritten whole (write, then rename) when an application learns a
//! new event, so a reader never sees half a file.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::table::Entry;
use crate::table::args::{self, Arg};
use crate::{Level, Value};

/// The file name of a BD's log maps.
pub const FILE_NAME: &str = "logmaps";
/// Reserved: no event has log ID 0.
pub const DYNAMIC_ID: u32 = 0;

/// One event's map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMap {
    pub id: u32,
    pub level: Level,
    pub module: String,
    pub group: String,
    pub name: String,
    pub template: String,
}

impl LogMap {
    /// The `{name}` placeholders of the template, in order.
    pub fn arg_names(&self) -> Vec<&str> {
        placeholders(&self.template)
    }
}

/// The `{name}` placeholders of a template, in order.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        names.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    names
}

/// The stable log ID of `name` in `module`: FNV-1a over `module/name`, never
/// [`DYNAMIC_ID`]. The same declaration gets the same ID in every build and run.
pub const fn log_id(module: &str, name: &str) -> u32 {
    const fn mix(mut h: u32, bytes: &[u8]) -> u32 {
        let mut i = 0;
        while i < bytes.len() {
            h ^= bytes[i] as u32;
            h = h.wrapping_mul(0x0100_0193);
            i += 1;
        }
        h
    }
    let h = mix(
        mix(mix(0x811c_9dc5, module.as_bytes()), b"/"),
        name.as_bytes(),
    );
    if h == DYNAMIC_ID { 1 } else { h }
}

/// The log ID of free-text events of `group` in `module` (their map is named `TEXT`, with the
/// template `{text}`), so readers know a text entry's group.
pub const fn text_id(module: &str, group: &str) -> u32 {
    log_id(module, group) ^ 0x5445_5854 // "TEXT"
}

/// A table entry put into words with its log map.
#[derive(Debug, Clone, PartialEq)]
pub struct Formatted {
    /// The entry's map; `None` when the BD has not published one for its ID.
    pub map: Option<LogMap>,
    /// The template with the arguments in it (`[truncated]` appended when they were cut).
    pub message: String,
    /// The arguments by placeholder name (`argN` beyond the template's placeholders).
    pub args: Vec<(String, Value<'static>)>,
}

impl Formatted {
    /// The group, or `-` for an entry whose log map is unknown.
    pub fn group(&self) -> &str {
        self.map.as_ref().map_or("-", |m| m.group.as_str())
    }

    /// The event name (`TEXT` for free text and unknown maps).
    pub fn name(&self) -> &str {
        self.map.as_ref().map_or("TEXT", |m| m.name.as_str())
    }
}

/// Formats `entry` with the map of its log ID from `maps` (free text when there is none).
pub fn format_entry(entry: &Entry, maps: &[LogMap]) -> Formatted {
    let decoded: Vec<Arg<'_>> = args::decode(&entry.args).collect();
    let map = maps.iter().find(|m| m.id == entry.log_id).cloned();
    let template = map.as_ref().map_or("{text}", |m| m.template.as_str());
    let mut message = format(template, &decoded);
    if entry.truncated() {
        message.push_str(" [truncated]");
    }
    let names = placeholders(template);
    let args = decoded
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let name = names
                .get(k)
                .map_or_else(|| format!("arg{k}"), |n| (*n).to_owned());
            (name, a.to_value())
        })
        .collect();
    Formatted { map, message, args }
}

/// The log maps a BD published in the run directory (none if it has not).
pub fn read_bd(run_dir: &Path, bd: &str) -> Vec<LogMap> {
    read(&run_dir.join(bd).join(FILE_NAME)).unwrap_or_default()
}

/// Puts `args` into the template's placeholders, in order. Missing arguments show as
/// `{name}`; extra ones are appended after ` | `.
pub fn format(template: &str, args: &[Arg<'_>]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        match args.next() {
            Some(a) => {
                let _ = write!(out, "{a}");
            }
            None => out.push_str(&rest[open..open + close + 1]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    for (k, a) in args.enumerate() {
        out.push_str(if k == 0 { " | " } else { ", " });
        let _ = write!(out, "{a}");
    }
    out
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(c) => out.push(c),
            None => out.push('\\'),
        }
    }
    out
}

/// Writes `maps` to `path` atomically (a temporary file renamed over it).
pub fn write(path: &Path, maps: &[LogMap]) -> io::Result<()> {
    let mut text = String::from("# edgelog log maps v1\n");
    for m in maps {
        let _ = write!(text, "{}\t{}\t", m.id, m.level.name());
        for (k, field) in [&m.module, &m.group, &m.name, &m.template]
            .into_iter()
            .enumerate()
        {
            if k > 0 {
                text.push('\t');
            }
            escape(field, &mut text);
        }
        text.push('\n');
    }
    crate::paths::write_atomically(path, text.as_bytes())
}

/// Reads a log maps file. A malformed line is an error naming its number.
pub fn read(path: &Path) -> io::Result<Vec<LogMap>> {
    let text = std::fs::read_to_string(path)?;
    let bad = |n: usize, why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}:{n}: {why}", path.display()),
        )
    };
    let mut maps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [id, level, module, group, name, template] = f[..] else {
            return Err(bad(n + 1, "expected 6 tab-separated fields"));
        };
        maps.push(LogMap {
            id: id.parse().map_err(|_| bad(n + 1, "bad log id"))?,
            level: level.parse().map_err(|_| bad(n + 1, "bad level"))?,
            module: unescape(module),
            group: unescape(group),
            name: unescape(name),
            template: unescape(template),
        });
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_templates_format_in_order() {
        assert_eq!(log_id("bgp", "BGP_PEER_UP"), log_id("bgp", "BGP_PEER_UP"));
        assert_ne!(log_id("bgp", "BGP_PEER_UP"), log_id("ospf", "BGP_PEER_UP"));
        // FNV-1a of "bgp/BGP_PEER_UP" (checked with an independent implementation), fixed
        // forever: tables written by older builds rely on it.
        assert_eq!(log_id("bgp", "BGP_PEER_UP"), 0x8718_527f);
        let args = [Arg::Str("10.0.0.2"), Arg::U64(65001)];
        assert_eq!(
            format("peer {peer} (AS {asn}) is up", &args),
            "peer 10.0.0.2 (AS 65001) is up"
        );
        assert_eq!(format("a {x} b {y}", &args[..1]), "a 10.0.0.2 b {y}");
        assert_eq!(format("no args", &args), "no args | 10.0.0.2, 65001");
        assert_eq!(placeholders("peer {peer} (AS {asn})"), ["peer", "asn"]);
    }

    #[test]
    fn maps_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let maps = vec![LogMap {
            id: 7,
            level: Level::Notice,
            module: "bgp".into(),
            group: "peer".into(),
            name: "X".into(),
            template: "tab\there\nnew \\ {a}".into(),
        }];
        write(&path, &maps).unwrap();
        assert_eq!(read(&path).unwrap(), maps);
        std::fs::write(&path, "1\tinfo\tm\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains(":1:"));
    }
}
