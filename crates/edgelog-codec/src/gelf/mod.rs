//! GELF 1.1: Graylog's JSON log format.
//!
//! ```text
//! {"version":"1.1", "host":"leaf-01", "short_message":"peer down",
//!  "timestamp":1385053862.3072, "level":3, "_peer":"10.0.0.2", "_asn":65001}
//! ```
//!
//! `version`, `host` and `short_message` are required; `timestamp` is Unix seconds with an
//! optional fraction; `level` a syslog severity (absent means 1, alert, as the spec says);
//! additional fields start with `_`, match `^[\w.\-]*$`, `_id` is reserved, and their values are
//! strings or numbers — numbers stay numbers. Transports: one payload per UDP datagram (chunked
//! when large, see [`chunk`]; compressed or not, see [`compress`]), NUL-terminated over TCP, one
//! per HTTP request (or newline-separated in bulk).
//!
//! Decoding reads each value as raw JSON text (`serde_json::value::RawValue`), so strings borrow
//! from the payload when they have no escapes and numbers are parsed by us: a timestamp keeps all
//! its digits (a float would round it to about a microsecond) and an integer stays an integer.
//! Our own header fields (`_facility`, `_app_name`, `_proc_id`, `_msg_id`) map back into the
//! message header, so GELF between edgelog instances loses nothing.
//!
//! Encoding writes JSON by hand into the caller's buffer: no intermediate tree, one pass.

pub mod chunk;
pub mod compress;

use std::borrow::Cow;
use std::fmt;

use edgelog_core::{Facility, Level, Timestamp, Value};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::message::{DiagKind, Diagnostic, Format, Message, Mode, Pri};

/// Parses one GELF payload (already decompressed and reassembled).
pub fn parse(payload: &[u8], mode: Mode) -> Message<'_> {
    let mut m = Message::new(Format::Gelf);
    let strict = mode == Mode::Strict;
    let pairs = match parse_object(payload) {
        Ok(pairs) => pairs,
        Err(offset) => {
            let d = Diagnostic {
                kind: DiagKind::InvalidJson,
                offset,
            };
            if strict {
                m.error = Some(d);
            } else {
                m.diagnostics.push(d);
                m.format = Format::Raw;
                m.message = Some(crate::message::utf8_lossy(payload).0);
            }
            return m;
        }
    };
    let base = payload.as_ptr() as usize;
    let mut seen = Seen::default();
    for (key, raw) in pairs {
        let at = (raw.get().as_ptr() as usize).saturating_sub(base);
        let mut f = Field {
            m: &mut m,
            strict,
            at,
        };
        if f.take(&mut seen, key, raw).is_err() {
            return m;
        }
    }
    for present in [seen.version, seen.host, seen.message] {
        if !present {
            if strict {
                m.error = Some(Diagnostic {
                    kind: DiagKind::MissingField,
                    offset: 0,
                });
                return m;
            }
            m.diagnose(DiagKind::MissingField, 0);
        }
    }
    m.pri = Some(Pri {
        facility: seen.facility.unwrap_or(Facility::User),
        severity: seen.level.unwrap_or(Level::Alert),
    });
    m
}

/// What the keys read so far gave: the required ones present, and the priority's parts.
#[derive(Debug, Default)]
struct Seen {
    version: bool,
    host: bool,
    message: bool,
    level: Option<Level>,
    facility: Option<Facility>,
}

/// One key of the object being taken into `m`, at byte `at` of the payload.
struct Field<'m, 'a> {
    m: &'m mut Message<'a>,
    strict: bool,
    at: usize,
}

/// A strict parse stopped at a violation (recorded as the message's error).
struct Stop;

impl<'a> Field<'_, 'a> {
    /// A violation of kind `kind`: the error in strict mode (the parse stops), a diagnostic
    /// in lenient mode (it goes on).
    fn problem(&mut self, kind: DiagKind) -> Result<(), Stop> {
        if self.strict {
            self.m.error = Some(Diagnostic {
                kind,
                offset: self.at,
            });
            Err(Stop)
        } else {
            self.m.diagnose(kind, self.at);
            Ok(())
        }
    }

    fn take(&mut self, seen: &mut Seen, key: Cow<'a, str>, raw: &'a RawValue) -> Result<(), Stop> {
        let value = json_value(raw);
        match key.as_ref() {
            "version" => {
                seen.version = true;
                // 1.0 is still what some clients send (graypy does); the fields agree.
                if !matches!(value.as_ref().and_then(Value::as_str), Some("1.1" | "1.0")) {
                    self.problem(DiagKind::InvalidField)?;
                }
            }
            "host" => match value {
                Some(Value::Str(s)) => {
                    seen.host = true;
                    self.m.hostname = Some(s);
                }
                _ => self.problem(DiagKind::InvalidField)?,
            },
            "short_message" => match value {
                Some(Value::Str(s)) => {
                    seen.message = true;
                    self.m.message = Some(s);
                }
                _ => self.problem(DiagKind::InvalidField)?,
            },
            "timestamp" => match parse_gelf_timestamp(raw.get()) {
                Some(ts) => self.m.timestamp = Some(ts),
                None => self.problem(DiagKind::InvalidTimestamp)?,
            },
            "level" => match value {
                Some(Value::I64(n)) if (0..8).contains(&n) => seen.level = Level::from_u8(n as u8),
                Some(Value::U64(n)) if n < 8 => seen.level = Level::from_u8(n as u8),
                _ => self.problem(DiagKind::InvalidField)?,
            },
            // Deprecated in 1.1 but still sent by old clients.
            "full_message" | "facility" | "line" | "file" => {
                let as_facility = value
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                if let (true, Some(f)) = (key == "facility", as_facility) {
                    seen.facility = Some(f);
                    return Ok(());
                }
                match value {
                    Some(v) => self.m.fields.push((key, v)),
                    None => {
                        self.problem(DiagKind::InvalidField)?;
                        self.m
                            .fields
                            .push((key, Value::Str(Cow::Borrowed(raw.get()))));
                    }
                }
            }
            _ => self.additional(seen, key, value, raw)?,
        }
        Ok(())
    }

    /// An additional field (`_name`), or a key GELF does not know (kept under its own name).
    fn additional(
        &mut self,
        seen: &mut Seen,
        key: Cow<'a, str>,
        value: Option<Value<'a>>,
        raw: &'a RawValue,
    ) -> Result<(), Stop> {
        let Some(name) = key.strip_prefix('_') else {
            // Not a GELF field at all: keep it, under its own name.
            self.problem(DiagKind::InvalidField)?;
            let v = value.unwrap_or(Value::Str(Cow::Borrowed(raw.get())));
            self.m.fields.push((key, v));
            return Ok(());
        };
        if name == "id" {
            self.problem(DiagKind::ReservedField)?;
        }
        if !valid_field_name(name) {
            self.problem(DiagKind::InvalidField)?;
        }
        let v = match value {
            Some(v) => v,
            // A field with no value is no field (Graylog drops them too); clients such as
            // graypy send `"_function": null`.
            None if raw.get() == "null" => return Ok(()),
            None => {
                self.problem(DiagKind::InvalidField)?;
                Value::Str(Cow::Borrowed(raw.get()))
            }
        };
        let name = match key {
            Cow::Borrowed(k) => Cow::Borrowed(&k[1..]),
            Cow::Owned(k) => Cow::Owned(k[1..].to_owned()),
        };
        if !header_field(self.m, &name, &v, &mut seen.facility) {
            self.m.fields.push((name, v));
        }
        Ok(())
    }
}

/// Maps our own `_facility`, `_app_name`, `_proc_id` and `_msg_id` into the header.
fn header_field<'a>(
    m: &mut Message<'a>,
    name: &str,
    v: &Value<'a>,
    facility: &mut Option<Facility>,
) -> bool {
    let Value::Str(s) = v else { return false };
    match name {
        "facility" => match s.parse() {
            Ok(f) => *facility = Some(f),
            Err(_) => return false,
        },
        "app_name" => m.app_name = Some(s.clone()),
        "proc_id" => m.proc_id = Some(s.clone()),
        "msg_id" => m.msg_id = Some(s.clone()),
        _ => return false,
    }
    true
}

/// `^[\w.\-]*$` with `\w` as ASCII word characters.
fn valid_field_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A JSON value as a field value: strings and numbers (and, leniently, booleans). `None` for
/// null, arrays and objects, which GELF does not allow.
fn json_value(raw: &RawValue) -> Option<Value<'_>> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => {
            // Borrow when there is no escape: the quotes are the only difference.
            let inner = &text[1..text.len() - 1];
            if !inner.contains('\\') {
                return Some(Value::Str(Cow::Borrowed(inner)));
            }
            serde_json::from_str::<String>(text)
                .ok()
                .map(|s| Value::Str(Cow::Owned(s)))
        }
        b't' => Some(Value::Bool(true)),
        b'f' => Some(Value::Bool(false)),
        b'-' | b'0'..=b'9' => Some(parse_number(text)),
        _ => None,
    }
}

fn parse_number(text: &str) -> Value<'static> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(n) = text.parse::<i64>() {
            return Value::I64(n);
        }
        if let Ok(n) = text.parse::<u64>() {
            return Value::U64(n);
        }
    }
    Value::F64(text.parse().unwrap_or(f64::NAN))
}

/// Seconds since the epoch with an optional fraction, read exactly (up to nanoseconds).
fn parse_gelf_timestamp(text: &str) -> Option<Timestamp> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let exact = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !exact {
        // Exponent notation: accept through a float.
        let f: f64 = text.parse().ok()?;
        return f
            .is_finite()
            .then(|| Timestamp::from_unix_nanos((f * 1e9) as i64));
    }
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for (k, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - k as u32);
    }
    let total = secs.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    Some(Timestamp::from_unix_nanos(if neg { -total } else { total }))
}

/// The top-level object as (key, raw value) pairs, or the byte offset of the JSON error.
fn parse_object(payload: &[u8]) -> Result<Vec<(Cow<'_, str>, &RawValue)>, usize> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let pairs = (&mut de)
        .deserialize_map(PairsVisitor)
        .map_err(|e| offset_of_error(payload, &e))?;
    de.end().map_err(|e| offset_of_error(payload, &e))?;
    Ok(pairs)
}

fn offset_of_error(payload: &[u8], e: &serde_json::Error) -> usize {
    let (line, col) = (e.line(), e.column());
    let mut offset = 0;
    for _ in 1..line {
        match memchr::memchr(b'\n', &payload[offset..]) {
            Some(n) => offset += n + 1,
            None => break,
        }
    }
    (offset + col.saturating_sub(1)).min(payload.len())
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GELF JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            pairs.push((key.0, map.next_value::<&'de RawValue>()?));
        }
        Ok(pairs)
    }
}

/// An object key that borrows from the payload unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Extra fields to write with a message: the device-wide facts the daemon adds.
pub type ExtraFields<'a> = &'a [(&'a str, Value<'a>)];

/// Writes `m` as one GELF 1.1 JSON object (no framing). Adds `_facility`, `_app_name`,
/// `_proc_id`, `_msg_id`, structured data as `_<id>_<param>`, then `m.fields` and `extra` as
/// additional fields. Field names are made to match `^[\w.\-]*$` (others become `_`); a field
/// named `id` is written as `_id_`, since `_id` is reserved. A missing host or message is `-`.
pub fn encode(out: &mut Vec<u8>, m: &Message<'_>, extra: ExtraFields<'_>) {
    out.extend_from_slice(b"{\"version\":\"1.1\",\"host\":");
    write_json_str(
        out,
        m.hostname
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or("-"),
    );
    out.extend_from_slice(b",\"short_message\":");
    write_json_str(
        out,
        m.message
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or("-"),
    );
    if let Some(ts) = m.timestamp {
        out.extend_from_slice(b",\"timestamp\":");
        write_gelf_timestamp(out, ts);
    }
    out.extend_from_slice(b",\"level\":");
    out.push(b'0' + m.severity().as_u8());
    write_field(
        out,
        "facility",
        &Value::Str(Cow::Borrowed(m.facility().name())),
    );
    for (name, v) in [
        ("app_name", &m.app_name),
        ("proc_id", &m.proc_id),
        ("msg_id", &m.msg_id),
    ] {
        if let Some(v) = v {
            write_field_str(out, name, v);
        }
    }
    for el in m.structured_data.iter().flat_map(|sd| sd.elements()) {
        for (param, value) in el.params() {
            out.extend_from_slice(b",\"_");
            write_field_name(out, el.id);
            out.push(b'_');
            write_field_name(out, param);
            out.extend_from_slice(b"\":");
            write_json_str(out, &value);
        }
    }
    for (k, v) in &m.fields {
        write_field(out, k, v);
    }
    for (k, v) in extra {
        write_field(out, k, v);
    }
    out.push(b'}');
}

fn write_field_str(out: &mut Vec<u8>, name: &str, v: &str) {
    write_field(out, name, &Value::Str(Cow::Borrowed(v)));
}

fn write_field(out: &mut Vec<u8>, name: &str, v: &Value<'_>) {
    out.extend_from_slice(b",\"_");
    if name == "id" {
        out.extend_from_slice(b"id_");
    } else {
        write_field_name(out, name);
    }
    out.extend_from_slice(b"\":");
    match v {
        Value::Str(s) => write_json_str(out, s),
        Value::I64(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::U64(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::F64(n) if n.is_finite() => {
            out.extend_from_slice(ryu::Buffer::new().format_finite(*n).as_bytes())
        }
        // JSON has no NaN or infinity; GELF has no null. Keep the text.
        Value::F64(n) => write_json_str(out, &n.to_string()),
        // GELF values are strings or numbers; a boolean is written as its word.
        Value::Bool(b) => write_json_str(out, if *b { "true" } else { "false" }),
    }
}

fn write_field_name(out: &mut Vec<u8>, name: &str) {
    out.extend(name.bytes().map(|b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            b
        } else {
            b'_'
        }
    }));
}

/// Seconds with the exact fraction, trailing zeros removed: `1385053862.3072`.
fn write_gelf_timestamp(out: &mut Vec<u8>, ts: Timestamp) {
    let n = ts.as_unix_nanos();
    if n < 0 {
        out.push(b'-');
    }
    let abs = n.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(abs / 1_000_000_000).as_bytes());
    let mut frac = abs % 1_000_000_000;
    if frac != 0 {
        let mut digits = 9;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        out.push(b'.');
        let s = itoa::Buffer::new().format(frac).len();
        out.extend(std::iter::repeat_n(b'0', digits - s));
        out.extend_from_slice(itoa::Buffer::new().format(frac).as_bytes());
    }
}

/// Writes a JSON string literal. Copies runs of plain bytes at once; escapes `"`, `\` and
/// control characters.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}
