//! Reading a TOML document key by key, with the line of every value at hand.
//!
//! Configuration errors must name the file, the line and the key (`edgelog.toml:12:
//! sources.net.address: …`), and every error in a file should be reported in one run of
//! `--check-config`, not one per edit. Deserializing with serde gives neither: a derived
//! deserializer stops at the first error, and internally tagged enums (`type = "syslog_tcp"`)
//! lose the spans of the values inside them. So the config is read from toml's spanned
//! document (`DeTable`) by hand: a [`Section`] hands out typed values, remembers which keys it
//! was asked for, and reports every key nobody asked for as unknown, with the keys it knows.
//! Errors accumulate in a [`Diagnostics`]; a missing or bad value yields `None` and reading
//! goes on.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where relative paths resolve.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The config file's directory (files watched by `file` sources).
    pub config_dir: PathBuf,
}

/// One configuration error: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    /// The dotted key path (`sources.net.address`); empty for a syntax error.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// The errors found so far in one document.
#[derive(Debug)]
pub(crate) struct Diagnostics<'s> {
    file: &'s str,
    text: &'s str,
    pub(crate) errors: Vec<ConfigError>,
    /// What is allowed but probably not meant: said, not refused.
    pub(crate) warnings: Vec<ConfigError>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(file: &'s str, text: &'s str) -> Diagnostics<'s> {
        Diagnostics {
            file,
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        1 + self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    pub(crate) fn warning(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: self.file.to_owned(),
            line: self.line(span.start),
            key: key.to_owned(),
            message: message.into(),
        });
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line: self.line(span.start),
            key: key.to_owned(),
            message: message.into(),
        });
    }
}

/// Parses the document; a syntax error is reported with its line and yields `None`.
pub(crate) fn parse<'s>(
    text: &'s str,
    diags: &mut Diagnostics<'_>,
) -> Option<Spanned<DeTable<'s>>> {
    match DeTable::parse(text) {
        Ok(doc) => Some(doc),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            // toml's message spans several lines with a caret picture; the first line says it.
            let message = e.message().lines().next().unwrap_or("syntax error").trim();
            diags.error(&span, "", format!("TOML syntax error: {message}"));
            None
        }
    }
}

/// One table of the document, read key by key. See the module documentation.
pub(crate) struct Section<'a, 'i> {
    table: &'a DeTable<'i>,
    span: Range<usize>,
    path: String,
    asked: Vec<&'static str>,
}

/// A value with its span and full key path, for errors about it.
pub(crate) struct At<'a, 'i> {
    pub(crate) value: &'a DeValue<'i>,
    pub(crate) span: Range<usize>,
    pub(crate) key: String,
}

impl<'a, 'i> Section<'a, 'i> {
    pub(crate) fn root(doc: &'a Spanned<DeTable<'i>>) -> Section<'a, 'i> {
        Section {
            table: doc.get_ref(),
            span: doc.span(),
            path: String::new(),
            asked: Vec::new(),
        }
    }

    /// The dotted path of `key` in this section.
    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// Where `key` is, without marking it as known (for a later check that refers to it).
    pub(crate) fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v.span())
    }

    /// The raw value of `key`, marking the key as known.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<At<'a, 'i>> {
        self.asked.push(key);
        self.table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| At {
                value: v.get_ref(),
                span: v.span(),
                key: self.key_path(key),
            })
    }

    /// The sub-table `key`, if present (an error if it is not a table).
    pub(crate) fn table(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Section<'a, 'i>> {
        let at = self.get(key)?;
        match at.value {
            DeValue::Table(t) => Some(Section {
                table: t,
                span: at.span,
                path: at.key,
                asked: Vec::new(),
            }),
            other => {
                d.error(
                    &at.span,
                    &at.key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// Every entry of this section as a named sub-section (`[sources.<name>]`), in key order.
    /// Entries that are not tables are reported.
    pub(crate) fn entries(&mut self, d: &mut Diagnostics<'_>) -> Vec<(String, Section<'a, 'i>)> {
        let mut out = Vec::new();
        for (k, v) in self.table.iter() {
            let key = self.key_path(k.get_ref());
            match v.get_ref() {
                DeValue::Table(t) => out.push((
                    k.get_ref().to_string(),
                    Section {
                        table: t,
                        span: v.span(),
                        path: key,
                        asked: Vec::new(),
                    },
                )),
                other => d.error(
                    &k.span(),
                    &key,
                    format!("expected a table, found {}", other.type_str()),
                ),
            }
        }
        // Every entry was read as a section: none is unknown.
        self.asked.extend(["*"]);
        out
    }

    /// Reports every key of this section that no reader asked for.
    pub(crate) fn finish(self, d: &mut Diagnostics<'_>) {
        if self.asked.contains(&"*") {
            return;
        }
        for (k, _) in self.table.iter() {
            let name: &str = k.get_ref();
            if !self.asked.contains(&name) {
                let mut known = self.asked.clone();
                known.sort_unstable();
                known.dedup();
                d.error(
                    &k.span(),
                    &self.key_path(name),
                    format!("unknown key; expected one of: {}", known.join(", ")),
                );
            }
        }
    }

    /// A typed value: `parse` turns the raw value into `T` or says what is wrong with it.
    pub(crate) fn value<T>(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        parse: impl FnOnce(&DeValue<'i>) -> Result<T, String>,
    ) -> Option<T> {
        let at = self.get(key)?;
        match parse(at.value) {
            Ok(v) => Some(v),
            Err(message) => {
                d.error(&at.span, &at.key, message);
                None
            }
        }
    }

    /// Like [`value`](Self::value), but the key must be present.
    pub(crate) fn required<T>(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        parse: impl FnOnce(&DeValue<'i>) -> Result<T, String>,
    ) -> Option<T> {
        if !self.table.iter().any(|(k, _)| k.get_ref() == key) {
            self.asked.push(key);
            let span = self.span.clone();
            d.error(&span, &self.key_path(key), "missing required key");
            return None;
        }
        self.value(d, key, parse)
    }
}

// Value parsers, each saying what it expected.

pub(crate) fn string(v: &DeValue<'_>) -> Result<String, String> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
        other => Err(format!("expected a string, found {}", other.type_str())),
    }
}

pub(crate) fn boolean(v: &DeValue<'_>) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected true or false, found {}", v.type_str()))
}

pub(crate) fn integer(v: &DeValue<'_>) -> Result<i64, String> {
    match v {
        DeValue::Integer(i) => {
            let digits: Cow<'_, str> = if i.as_str().contains('_') {
                i.as_str().replace('_', "").into()
            } else {
                i.as_str().into()
            };
            let digits = digits.trim_start_matches(['0', 'x', 'o', 'b'].as_slice());
            i64::from_str_radix(if digits.is_empty() { "0" } else { digits }, i.radix())
                .map_err(|e| format!("integer {}: {e}", i.as_str()))
        }
        other => Err(format!("expected an integer, found {}", other.type_str())),
    }
}

/// A whole number in `range`.
pub(crate) fn count(
    range: std::ops::RangeInclusive<u64>,
) -> impl Fn(&DeValue<'_>) -> Result<u64, String> {
    move |v| {
        let n = integer(v)?;
        u64::try_from(n)
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                format!(
                    "{n} is out of range: expected {} to {}",
                    range.start(),
                    range.end()
                )
            })
    }
}

/// A list of strings; a single string is a list of one.
pub(crate) fn strings(v: &DeValue<'_>) -> Result<Vec<String>, String> {
    match v {
        DeValue::String(s) => Ok(vec![s.to_string()]),
        DeValue::Array(items) => items
            .iter()
            .map(|item| string(item.get_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("in the list: {e}")),
        other => Err(format!(
            "expected a string or a list of strings, found {}",
            other.type_str()
        )),
    }
}

/// A value given as text and parsed by its `FromStr`, whose error is the message.
pub(crate) fn parsed<T>(v: &DeValue<'_>) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let s = string(v)?;
    s.parse().map_err(|e| format!("{e}"))
}

/// A byte size: an integer (bytes) or text with a unit: `512MiB`, `64 KiB`, `1GB`, `4096`.
pub(crate) fn size(v: &DeValue<'_>) -> Result<u64, String> {
    match v {
        DeValue::Integer(_) => count(0..=u64::MAX >> 1)(v),
        DeValue::String(s) => parse_size(s),
        other => Err(format!(
            "expected a size such as \"512MiB\", found {}",
            other.type_str()
        )),
    }
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?}: expected a number and a unit, e.g. \"64MiB\""))
}

/// A duration: an integer (seconds) or text with a unit: `250ms`, `1s`, `5m`, `1h`, `7d`.
/// A duration that must be more than zero (a timeout or interval of 0 would spin or cut
/// everything off at once).
pub(crate) fn positive_duration(v: &DeValue<'_>) -> Result<Duration, String> {
    duration(v).and_then(|d| {
        if d.is_zero() {
            Err("must be more than 0".to_owned())
        } else {
            Ok(d)
        }
    })
}

/// A size that must be more than zero.
pub(crate) fn positive_size(v: &DeValue<'_>) -> Result<u64, String> {
    size(v).and_then(|n| {
        if n == 0 {
            Err("must be more than 0".to_owned())
        } else {
            Ok(n)
        }
    })
}

pub(crate) fn duration(v: &DeValue<'_>) -> Result<Duration, String> {
    match v {
        DeValue::Integer(_) => count(0..=u64::MAX >> 1)(v).map(Duration::from_secs),
        DeValue::String(s) => parse_duration(s),
        other => Err(format!(
            "expected a duration such as \"5s\", found {}",
            other.type_str()
        )),
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number and a unit, e.g. \"5s\"")
    })?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        unit => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m, h, d)"
            ));
        }
    };
    Ok(d)
}

/// One of a fixed set of names.
pub(crate) fn one_of<'c>(
    choices: &'c [&'c str],
) -> impl Fn(&DeValue<'_>) -> Result<String, String> + 'c {
    move |v| {
        let s = string(v)?;
        if choices.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(format!(
                "unknown value {s:?}: expected {}",
                choices.join(", ")
            ))
        }
    }
}

/// An `IP:PORT` to listen on.
pub(crate) fn address(v: &DeValue<'_>) -> Result<std::net::SocketAddr, String> {
    let s = string(v)?;
    s.parse().map_err(|e| {
        format!(
            "invalid address {s:?}: {e} (expected IP:PORT, e.g. \"127.0.0.1:514\" or \"[::1]:514\")"
        )
    })
}

/// `HOST:PORT` to send to, the host a name or an address (resolved at each connection).
pub(crate) fn host_port(v: &DeValue<'_>) -> Result<String, String> {
    let s = string(v)?;
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

/// A file mode: octal digits in a string (`"0660"`) or a number.
pub(crate) fn mode(v: &DeValue<'_>) -> Result<u32, String> {
    let n = match v {
        DeValue::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map_err(|_| format!("invalid mode {s:?}: expected octal digits such as \"0660\""))?,
        _ => count(0..=0o7777)(v)? as u32,
    };
    if n > 0o7777 {
        return Err(format!("invalid mode {n:o}: at most 7777"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("MiB").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn unknown_and_missing_keys_are_reported_with_lines() {
        let text = "a = 1\n\n[t]\nx = \"y\"\nbogus = 2\n";
        let mut d = Diagnostics::new("c.toml", text);
        let doc = parse(text, &mut d).unwrap();
        let mut root = Section::root(&doc);
        assert_eq!(root.value(&mut d, "a", count(0..=10)), Some(1));
        let mut t = root.table(&mut d, "t").unwrap();
        assert_eq!(t.value(&mut d, "x", string).as_deref(), Some("y"));
        assert_eq!(t.required(&mut d, "need", string), None);
        t.finish(&mut d);
        root.finish(&mut d);
        let shown: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "c.toml:3: t.need: missing required key",
                "c.toml:5: t.bogus: unknown key; expected one of: need, x",
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let text = "a = 1\nb = [\n";
        let mut d = Diagnostics::new("c.toml", text);
        assert!(parse(text, &mut d).is_none());
        assert_eq!(d.errors.len(), 1);
        assert!(
            d.errors[0].to_string().starts_with("c.toml:"),
            "{:?}",
            d.errors
        );
        assert!(d.errors[0].message.starts_with("TOML syntax error"));
    }
}
