//! Encoding an event for a destination: RFC 5424, RFC 3164, JSON lines or GELF.
//!
//! The codec's formatters write the message as the sender gave it; this module adds what the
//! daemon knows on top, in the idiom of each format, so a receiver can tell devices and origins
//! apart (docs/configuration.md, "Fields edgelog adds"):
//!
//! - RFC 5424: an `[edgelog@32473 …]` element with the source and the device facts, and the
//!   message's own fields (GELF extras, kmsg dictionary, table arguments) as
//!   `[fields@32473 …]`, after the sender's structured data. (32473 is the private enterprise
//!   number RFC 5612 reserves for documentation; ours until one is assigned.)
//! - GELF: `_source` and `_serial_number`, `_element_name`, … as additional fields.
//! - JSON: the `edgelog decode` object plus `source`, `received` and `device`.
//! - RFC 3164 has nowhere to put them: header and message only.
//!
//! One record is one frame on every output: a destination's [`Encoder`] passes each RFC 5424
//! or RFC 3164 record through the codec's one escaping step (`edgelog_codec::escape`, octal
//! `#012` by default), so a newline or NUL in a message can never end the frame and forge a
//! record after it; JSON and GELF escape control characters as JSON does. Header fields
//! (hostname, app name, proc id, msg id) are never written with a space or control character:
//! the formatters replace them with `_`, and the destination counts the records so changed.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use edgelog_codec::escape::{self, Escape};
use edgelog_codec::{Message, StructuredData, gelf, json, rfc3164, rfc5424};
use edgelog_core::Value;

use crate::config::reader::{self, Diagnostics, Section};
use crate::event::{Device, Event};
use crate::stats::DestinationStats;

/// The line format of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Rfc5424,
    Rfc3164,
    Json,
    Gelf,
    /// A traditional log file's line (rsyslog's `RSYSLOG_TraditionalFileFormat`): RFC 3164
    /// without the `<PRI>`, in local time.
    Traditional,
    /// rsyslog's default file line (`RSYSLOG_FileFormat`): as `Traditional`, the time in
    /// RFC 3339 with microseconds and the local offset.
    Precise,
}

impl OutputFormat {
    pub(crate) const ALL: [OutputFormat; 6] = [
        OutputFormat::Rfc5424,
        OutputFormat::Rfc3164,
        OutputFormat::Json,
        OutputFormat::Gelf,
        OutputFormat::Traditional,
        OutputFormat::Precise,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            OutputFormat::Rfc5424 => "rfc5424",
            OutputFormat::Rfc3164 => "rfc3164",
            OutputFormat::Json => "json",
            OutputFormat::Gelf => "gelf",
            OutputFormat::Traditional => "traditional",
            OutputFormat::Precise => "precise",
        }
    }

    /// Whether it writes syslog text, where a control character must be escaped.
    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            OutputFormat::Rfc5424
                | OutputFormat::Rfc3164
                | OutputFormat::Traditional
                | OutputFormat::Precise
        )
    }

    /// A destination's `format` key, one of `allowed` (the first is the default).
    pub(crate) fn read(
        d: &mut Diagnostics<'_>,
        s: &mut Section<'_, '_>,
        allowed: &[OutputFormat],
    ) -> OutputFormat {
        let names: Vec<_> = allowed.iter().map(|f| f.name()).collect();
        s.value(d, "format", reader::one_of(&names))
            .and_then(|n| OutputFormat::ALL.into_iter().find(|f| f.name() == n))
            .unwrap_or(allowed[0])
    }
}

/// How a destination writes its records: the format, how control characters in text are
/// escaped, and where it counts what it had to change.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    format: OutputFormat,
    escape: Escape,
    stats: Arc<DestinationStats>,
}

impl Encoder {
    /// `escape` applies to RFC 5424 and RFC 3164 text; JSON and GELF are JSON-escaped.
    pub(crate) fn new(
        format: OutputFormat,
        escape: Escape,
        stats: Arc<DestinationStats>,
    ) -> Encoder {
        let escape = if format.is_text() {
            escape
        } else {
            Escape::None
        };
        Encoder {
            format,
            escape,
            stats,
        }
    }

    /// Appends one encoded, escaped event (no framing) to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, e: &Event, device: &Device) {
        let start = out.len();
        encode(out, self.format, e, device);
        if self.escape != Escape::None && escape::escape(out, start, self.escape) > 0 {
            self.stats.escaped.fetch_add(1, Relaxed);
        }
        if self.format.is_text() && header_replaced(e.msg()) {
            self.stats.header_replaced.fetch_add(1, Relaxed);
        }
    }
}

/// Whether a header field holds a byte the text formats cannot write there (a space, a control
/// character, anything outside printable ASCII): the formatter writes `_` in its place.
fn header_replaced(m: &Message<'_>) -> bool {
    [&m.hostname, &m.app_name, &m.proc_id, &m.msg_id]
        .into_iter()
        .flatten()
        .any(|f| f.bytes().any(|b| !(33..=126).contains(&b)))
}

/// Appends one encoded event (no framing, no newline) to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, format: OutputFormat, e: &Event, device: &Device) {
    match format {
        OutputFormat::Rfc5424 => {
            // The added elements are the same for long runs of records — one source, one
            // device, the same fields (none, or a sender's uid) — so they are built when that
            // changes, not per record.
            ORIGIN.with_borrow_mut(|cache| {
                let msg = e.msg();
                let hit = cache.as_ref().is_some_and(|o| {
                    (Arc::ptr_eq(&o.source, &e.source) || *o.source == *e.source)
                        && o.device == *device
                        && o.fields == msg.fields
                });
                if !hit {
                    *cache = Some(Origin {
                        source: e.source.clone(),
                        device: device.clone(),
                        fields: msg
                            .fields
                            .iter()
                            .map(|(k, v)| (Cow::Owned(k.to_string()), v.clone().into_owned()))
                            .collect(),
                        sd: extra_sd(e, device),
                    });
                }
                let sd = cache.as_ref().and_then(|o| o.sd.as_ref());
                rfc5424::format_with(out, msg, rfc5424::FormatOptions::default(), sd);
            });
        }
        OutputFormat::Rfc3164 => {
            rfc3164::format(out, e.msg(), &rfc3164::FormatOptions::default());
        }
        OutputFormat::Traditional | OutputFormat::Precise => {
            // The box's zone, looked up once per process rather than once per line.
            static LOCAL: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
            let opts = rfc3164::FormatOptions {
                zone: LOCAL.get_or_init(jiff::tz::TimeZone::system).clone(),
                hostname: true,
                pri: false,
                precise_time: format == OutputFormat::Precise,
            };
            rfc3164::format(out, e.msg(), &opts);
        }
        OutputFormat::Gelf => {
            let mut extra = device.extra_fields();
            extra.push(("source", Value::Str((&*e.source).into())));
            gelf::encode(out, e.msg(), &extra);
        }
        OutputFormat::Json => {
            // Serializing into a Vec cannot fail. No newline: the sink frames it.
            let _ = serde_json::to_writer(
                &mut *out,
                &json::DecodeJsonWith(e.msg(), JsonOrigin { e, device }),
            );
        }
    }
}

/// The daemon's keys of a JSON record: where it came from, when, and the device facts.
struct JsonOrigin<'e> {
    e: &'e Event,
    device: &'e Device,
}

impl json::ExtraKeys for JsonOrigin<'_> {
    fn write<M: json::SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("source", &*self.e.source)?;
        map.serialize_entry("received", &self.e.received.to_string())?;
        map.serialize_entry("device", &json::Pairs(&self.device.fields))
    }
}

/// The elements last added on this thread, with the source, device and fields they are for.
#[derive(Debug)]
struct Origin {
    source: Arc<str>,
    device: Device,
    fields: Vec<(Cow<'static, str>, Value<'static>)>,
    sd: Option<StructuredData<'static>>,
}

thread_local! {
    static ORIGIN: std::cell::RefCell<Option<Origin>> = const { std::cell::RefCell::new(None) };
}

fn extra_sd(e: &Event, device: &Device) -> Option<StructuredData<'static>> {
    let origin = std::iter::once(("source", &*e.source))
        .chain(device.fields.iter().map(|(k, v)| (*k, v.as_str())));
    let texts: Vec<(&str, String)> = e
        .msg()
        .fields
        .iter()
        .map(|(k, v)| (k.as_ref(), value_text(v)))
        .collect();
    let fields = texts.iter().map(|(k, v)| (*k, v.as_str()));
    let origin: Vec<(&str, &str)> = origin.collect();
    let fields: Vec<(&str, &str)> = fields.collect();
    let mut elements = vec![("edgelog@32473", origin)];
    if !fields.is_empty() {
        elements.push(("fields@32473", fields));
    }
    StructuredData::from_elements(elements)
}

fn value_text(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgelog_codec::{Decoder, FormatHint, Mode, rfc3164::Context};
    use edgelog_core::Timestamp;

    fn event(line: &str) -> Event {
        let d = Decoder::new(
            FormatHint::Auto,
            Mode::Lenient,
            Context::utc(Timestamp::now()),
        );
        Event::new(
            d.decode(line.as_bytes()).into_owned(),
            "net".into(),
            Timestamp::from_unix_nanos(1_700_000_000_000_000_000),
        )
    }

    fn device() -> Device {
        Device {
            hostname: Some("leaf-01".into()),
            fields: vec![
                ("serial_number", "SN123".into()),
                ("element_role", "leaf".into()),
            ],
        }
    }

    #[test]
    fn rfc5424_keeps_sender_sd_and_adds_origin_and_fields() {
        let e = event(
            r#"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 iut="3"] hi"#,
        );
        let mut out = Vec::new();
        encode(&mut out, OutputFormat::Rfc5424, &e, &device());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 iut="3"][edgelog@32473 source="net" serial_number="SN123" element_role="leaf"] hi"#
        );
    }

    #[test]
    fn json_is_the_decode_object_plus_origin() {
        let e = event("<13>Oct 11 22:14:15 host app[7]: hello");
        let mut out = Vec::new();
        encode(&mut out, OutputFormat::Json, &e, &device());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["message"], "hello");
        assert_eq!(v["app_name"], "app");
        assert_eq!(v["source"], "net");
        assert_eq!(v["received"], "2023-11-14T22:13:20Z");
        assert_eq!(v["device"]["serial_number"], "SN123");
    }

    #[test]
    fn gelf_carries_device_fields() {
        let e = event("<13>Oct 11 22:14:15 host app[7]: hello");
        let mut out = Vec::new();
        encode(&mut out, OutputFormat::Gelf, &e, &device());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["_serial_number"], "SN123");
        assert_eq!(v["_element_role"], "leaf");
        assert_eq!(v["_source"], "net");
        assert_eq!(v["short_message"], "hello");
    }

    #[test]
    fn the_cached_elements_follow_the_source_the_device_and_the_fields() {
        let mut e = event("<13>1 - host app - - - hi");
        let line = |e: &Event, d: &Device| {
            let mut out = Vec::new();
            encode(&mut out, OutputFormat::Rfc5424, e, d);
            String::from_utf8(out).unwrap()
        };
        assert!(line(&e, &device()).contains(r#"source="net" serial_number="SN123""#));
        e.source = "other".into();
        assert!(
            line(&e, &device()).contains(r#"[edgelog@32473 source="other" serial_number="SN123""#)
        );
        let mut d = device();
        d.fields[0].1 = "SN999".into();
        assert!(line(&e, &d).contains(r#"serial_number="SN999""#));
        // The same fields again hit the cache; other values do not.
        e.push_field("uid".into(), Value::U64(0));
        assert!(line(&e, &d).ends_with(r#"[fields@32473 uid="0"] hi"#));
        assert!(line(&e, &d).ends_with(r#"[fields@32473 uid="0"] hi"#));
        let mut other = event("<13>1 - host app - - - hi");
        other.source = "other".into();
        other.push_field("uid".into(), Value::U64(1000));
        assert!(line(&other, &d).ends_with(r#"[fields@32473 uid="1000"] hi"#));
        assert!(!line(&event("<13>1 - host app - - - hi"), &d).contains("fields@"));
    }
}
