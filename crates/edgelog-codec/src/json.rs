//! The JSON shape of a decoded message, as `edgelog decode` prints it (docs/cli.md):
//!
//! ```text
//! {"format": "rfc5424", "pri": 34, "facility": "auth", "severity": "critical", "version": 1,
//!  "timestamp": "2003-10-11T22:14:15.003Z", "hostname": "mymachine.example.com",
//!  "app_name": "su", "proc_id": null, "msg_id": "ID47", "structured_data": null,
//!  "message": "'su root' failed for lonvick on /dev/pts/8", "fields": {}}
//! ```
//!
//! Every key is always present (`null` when absent), so scripts can index without checks;
//! `sequence` and `monotonic_usec` appear when the sender gave them, `error` only in strict mode
//! on a violation and `diagnostics` only when lenient mode recovered from something.
//! A structured-data parameter that repeats within its element becomes an array of its values.

use std::borrow::Cow;

use serde::Serialize;
pub use serde::ser::SerializeMap;
use serde::ser::Serializer;

use edgelog_core::Value;

use crate::message::{Diagnostic, Message};
use crate::sd::StructuredData;

/// Serializes as the contract's JSON object.
#[derive(Debug, Clone, Copy)]
pub struct DecodeJson<'m, 'a>(pub &'m Message<'a>);

/// More keys after the message's own, in the same object (the daemon's `source`,
/// `received` and device facts).
pub trait ExtraKeys {
    fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

impl ExtraKeys for () {
    fn write<M: SerializeMap>(&self, _: &mut M) -> Result<(), M::Error> {
        Ok(())
    }
}

/// Name–value pairs as a JSON object, in their order.
#[derive(Debug, Clone, Copy)]
pub struct Pairs<'p, K, V>(pub &'p [(K, V)]);

impl<K: AsRef<str>, V: AsRef<str>> Serialize for Pairs<'_, K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k.as_ref(), v.as_ref())?;
        }
        map.end()
    }
}

/// [`DecodeJson`] with [`ExtraKeys`] after the message's keys.
#[derive(Debug, Clone, Copy)]
pub struct DecodeJsonWith<'m, 'a, X>(pub &'m Message<'a>, pub X);

impl Serialize for DecodeJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DecodeJsonWith(self.0, ()).serialize(s)
    }
}

impl<X: ExtraKeys> Serialize for DecodeJsonWith<'_, '_, X> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("format", m.format.name())?;
        map.serialize_entry("pri", &m.pri.map(|p| p.as_u8()))?;
        map.serialize_entry("facility", &m.pri.map(|p| p.facility.name()))?;
        map.serialize_entry("severity", &m.pri.map(|p| p.severity.name()))?;
        map.serialize_entry("version", &m.version)?;
        map.serialize_entry("timestamp", &m.timestamp.map(|t| t.to_string()))?;
        map.serialize_entry("hostname", &m.hostname)?;
        map.serialize_entry("app_name", &m.app_name)?;
        map.serialize_entry("proc_id", &m.proc_id)?;
        map.serialize_entry("msg_id", &m.msg_id)?;
        map.serialize_entry("structured_data", &m.structured_data.as_ref().map(Sd))?;
        map.serialize_entry("message", &m.message)?;
        map.serialize_entry("fields", &Fields(&m.fields))?;
        if let Some(seq) = m.sequence {
            map.serialize_entry("sequence", &seq)?;
        }
        if let Some(us) = m.monotonic_usec {
            map.serialize_entry("monotonic_usec", &us)?;
        }
        if let Some(e) = &m.error {
            map.serialize_entry("error", &Diag(e))?;
        }
        if !m.diagnostics.is_empty() {
            let diags: Vec<Diag<'_>> = m.diagnostics.iter().map(Diag).collect();
            map.serialize_entry("diagnostics", &diags)?;
        }
        self.1.write(&mut map)?;
        map.end()
    }
}

struct Diag<'d>(&'d Diagnostic);

impl Serialize for Diag<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("kind", self.0.kind.name())?;
        map.serialize_entry("offset", &self.0.offset)?;
        map.end()
    }
}

struct Fields<'f, 'a>(&'f [(std::borrow::Cow<'a, str>, Value<'a>)]);

impl Serialize for Fields<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &JsonValue(v))?;
        }
        map.end()
    }
}

struct JsonValue<'v, 'a>(&'v Value<'a>);

impl Serialize for JsonValue<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Str(v) => s.serialize_str(v),
            Value::I64(n) => s.serialize_i64(*n),
            Value::U64(n) => s.serialize_u64(*n),
            Value::F64(n) => s.serialize_f64(*n),
            Value::Bool(b) => s.serialize_bool(*b),
        }
    }
}

struct Sd<'s, 'a>(&'s StructuredData<'a>);

impl Serialize for Sd<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Elements with the same id (lenient mode lets them through) are merged.
        let mut ids: Vec<&str> = Vec::new();
        for el in self.0.elements() {
            if !ids.contains(&el.id) {
                ids.push(el.id);
            }
        }
        let mut map = s.serialize_map(Some(ids.len()))?;
        for id in ids {
            let params: Vec<(&str, Cow<'_, str>)> = self
                .0
                .elements()
                .filter(|e| e.id == id)
                .flat_map(|e| e.params())
                .collect();
            map.serialize_entry(id, &Params(params))?;
        }
        map.end()
    }
}

struct Params<'p>(Vec<(&'p str, Cow<'p, str>)>);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut names: Vec<&str> = Vec::new();
        for (k, _) in &self.0 {
            if !names.contains(k) {
                names.push(k);
            }
        }
        let mut map = s.serialize_map(Some(names.len()))?;
        for name in names {
            let values: Vec<&str> = self
                .0
                .iter()
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.as_ref())
                .collect();
            if let [one] = values[..] {
                map.serialize_entry(name, one)?;
            } else {
                map.serialize_entry(name, &values)?;
            }
        }
        map.end()
    }
}

/// Writes one message as a JSON line (with the trailing newline).
pub fn write_line(out: &mut Vec<u8>, m: &Message<'_>) {
    // Serializing our own types into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &DecodeJson(m));
    out.push(b'\n');
}
