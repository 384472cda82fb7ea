//! Round trips: format a message, parse it back, get the same message — for RFC 5424 (strict
//! parser), RFC 3164 (in any fixed-offset zone, with the year inferred) and GELF. And one
//! record is one frame: whatever the message bytes, each encoder's output, escaped as its
//! destination would, holds no delimiter of its framing (LF, NUL), and once unescaped reads
//! back as the same message.

use std::borrow::Cow;

use edgelog_codec::escape::{self, Escape};
use edgelog_codec::rfc3164::{self, Context};
use edgelog_codec::{Format, Message, Mode, Pri, StructuredData, gelf, rfc5424};
use edgelog_core::{Timestamp, Value};
use jiff::tz::{Offset, TimeZone};
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn nonempty_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 1..max).prop_map(String::from_iter)
}

fn cow(s: String) -> Cow<'static, str> {
    Cow::Owned(s)
}

fn pri() -> impl Strategy<Value = Pri> {
    (0u8..192).prop_map(|p| Pri::from_u8(p).unwrap())
}

/// A PRINTUSASCII header field that is not the NILVALUE.
fn header(max: usize) -> impl Strategy<Value = Option<Cow<'static, str>>> {
    proptest::option::of(
        proptest::string::string_regex(&format!("[!-~]{{1,{max}}}"))
            .unwrap()
            .prop_filter("not the NILVALUE", |s| s != "-")
            .prop_map(cow),
    )
}

fn sd_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[!#-<>-\x5c^-~]{1,32}").unwrap()
}

fn structured_data() -> impl Strategy<Value = Option<StructuredData<'static>>> {
    let element = (
        sd_name(),
        proptest::collection::vec((sd_name(), text(12)), 0..4),
    );
    proptest::collection::vec(element, 0..4).prop_map(|mut els| {
        // SD-IDs are unique within a message (RFC 5424 §6.3.2).
        let mut seen = Vec::new();
        els.retain(|(id, _)| {
            let new = !seen.contains(id);
            seen.push(id.clone());
            new
        });
        StructuredData::from_elements(els.iter().map(|(id, params)| {
            (
                id.as_str(),
                params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
        }))
    })
}

fn rfc5424_message() -> impl Strategy<Value = Message<'static>> {
    (
        pri(),
        proptest::option::of((0i64..9_000_000_000, 0u32..1_000_000)),
        (header(255), header(48), header(128), header(32)),
        structured_data(),
        proptest::option::of(
            nonempty_text(40).prop_filter("no leading BOM", |s| !s.starts_with('\u{feff}')),
        ),
    )
        .prop_map(|(pri, ts, (host, app, proc_id, msg_id), sd, msg)| {
            let mut m = Message::new(Format::Rfc5424);
            m.pri = Some(pri);
            m.version = Some(1);
            m.timestamp = ts.map(|(s, us)| Timestamp::from_unix(s, us * 1000).unwrap());
            m.hostname = host;
            m.app_name = app;
            m.proc_id = proc_id;
            m.msg_id = msg_id;
            m.structured_data = sd;
            m.message = msg.map(cow);
            m
        })
}

fn rfc3164_case() -> impl Strategy<Value = (Message<'static>, i32)> {
    (
        pri(),
        // Up to ~300 days back and 30 days ahead of the receiver's clock: the year is inferred.
        -300i64 * 86_400..30 * 86_400,
        proptest::option::of(
            // A host name ends in a letter or digit (else it is read as a tag, as rsyslog does).
            proptest::string::string_regex("[a-z]([a-z0-9.-]{0,29}[a-z0-9])?")
                .unwrap()
                .prop_map(cow),
        ),
        // An app name stops at `/` (as rsyslog's programname): `postfix/smtpd` reads back as
        // `postfix`, so the round trip holds for names without one.
        proptest::string::string_regex("[a-zA-Z._-][a-zA-Z0-9._-]{0,30}")
            .unwrap()
            .prop_map(cow),
        proptest::option::of(
            proptest::string::string_regex("[0-9]{1,7}")
                .unwrap()
                .prop_map(cow),
        ),
        text(60),
        // Zones in quarter hours, -12:00 to +14:00.
        -48i32..=56,
    )
        .prop_map(|(pri, delta, host, app, pid, msg, quarters)| {
            let mut m = Message::new(Format::Rfc3164);
            m.pri = Some(pri);
            m.timestamp = Some(now().add_seconds(delta));
            m.hostname = host;
            m.app_name = Some(app);
            m.proc_id = pid;
            m.message = Some(cow(msg));
            (m, quarters * 15 * 60)
        })
}

fn now() -> Timestamp {
    "2024-06-15T12:00:00Z".parse().unwrap()
}

fn field_value() -> impl Strategy<Value = Value<'static>> {
    prop_oneof![
        text(20).prop_map(Value::from),
        any::<i64>().prop_map(Value::I64),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::U64),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::F64),
    ]
}

fn gelf_message() -> impl Strategy<Value = Message<'static>> {
    let name = proptest::string::string_regex("[a-zA-Z0-9_.-]{1,12}")
        .unwrap()
        .prop_filter("our header names map back into the header", |n| {
            !["facility", "app_name", "proc_id", "msg_id", "id"].contains(&n.as_str())
        });
    (
        pri(),
        nonempty_text(20).prop_filter("'-' stands for no host", |s| s != "-"),
        nonempty_text(60).prop_filter("'-' stands for no message", |s| s != "-"),
        proptest::option::of(0i64..9_000_000_000_000_000_000),
        (
            proptest::option::of(nonempty_text(10)),
            proptest::option::of(nonempty_text(10)),
        ),
        proptest::collection::btree_map(name, field_value(), 0..6),
    )
        .prop_map(|(pri, host, msg, ts, (app, pid), fields)| {
            let mut m = Message::new(Format::Gelf);
            m.pri = Some(pri);
            m.hostname = Some(cow(host));
            m.message = Some(cow(msg));
            m.timestamp = ts.map(Timestamp::from_unix_nanos);
            m.app_name = app.map(cow);
            m.proc_id = pid.map(cow);
            m.fields = fields.into_iter().map(|(k, v)| (cow(k), v)).collect();
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc5424_format_then_strict_parse_is_identity(m in rfc5424_message()) {
        let mut out = Vec::new();
        rfc5424::format(&mut out, &m, rfc5424::FormatOptions::default());
        let back = rfc5424::parse(&out, Mode::Strict);
        prop_assert_eq!(back, m, "wire: {:?}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn rfc5424_with_bom_round_trips_too(m in rfc5424_message()) {
        let mut out = Vec::new();
        rfc5424::format(&mut out, &m, rfc5424::FormatOptions { bom: true });
        prop_assert_eq!(rfc5424::parse(&out, Mode::Strict), m);
    }

    #[test]
    fn rfc3164_format_then_parse_is_identity((m, offset) in rfc3164_case()) {
        let zone = TimeZone::fixed(Offset::from_seconds(offset).unwrap());
        let mut out = Vec::new();
        rfc3164::format(&mut out, &m, &rfc3164::FormatOptions { zone: zone.clone(), hostname: true, pri: true, precise_time: false });
        let back = rfc3164::parse(&out, &Context::new(now(), zone), Mode::Lenient);
        prop_assert_eq!(back, m, "wire: {:?}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn structured_data_elements_read_back_what_was_built(
        els in proptest::collection::vec((sd_name(), proptest::collection::vec((sd_name(), text(12)), 0..4)), 1..4)
    ) {
        let sd = StructuredData::from_elements(els.iter().map(|(id, params)| {
            (id.as_str(), params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }))
        .unwrap();
        let back: Vec<(String, Vec<(String, String)>)> = sd
            .elements()
            .map(|e| (e.id.to_string(), e.params().map(|(k, v)| (k.to_string(), v.into_owned())).collect()))
            .collect();
        prop_assert_eq!(back, els);
    }

    #[test]
    fn gelf_encode_then_strict_parse_is_identity(m in gelf_message()) {
        let mut out = Vec::new();
        gelf::encode(&mut out, &m, &[]);
        let mut back = gelf::parse(&out, Mode::Strict);
        prop_assert_eq!(back.error, None, "wire: {}", String::from_utf8_lossy(&out));
        // The encoder writes _facility for every message; it maps back into the PRI.
        back.format = Format::Gelf;
        prop_assert_eq!(back, m);
    }

    #[test]
    fn rfc5424_escaped_is_one_frame_and_unescapes_to_the_message(
        m in rfc5424_message(),
        esc in prop_oneof![Just(Escape::Octal), Just(Escape::C)],
    ) {
        let mut out = b"prefix ".to_vec();
        rfc5424::format(&mut out, &m, rfc5424::FormatOptions::default());
        escape::escape(&mut out, 7, esc);
        prop_assert!(one_frame(&out[7..]), "wire: {:?}", String::from_utf8_lossy(&out));
        let raw = escape::unescape(&out[7..], esc);
        let back = rfc5424::parse(&raw, Mode::Strict);
        prop_assert_eq!(back, m);
    }

    #[test]
    fn rfc3164_escaped_is_one_frame_and_unescapes_to_the_message(
        (m, offset) in rfc3164_case(),
        esc in prop_oneof![Just(Escape::Octal), Just(Escape::C)],
    ) {
        let zone = TimeZone::fixed(Offset::from_seconds(offset).unwrap());
        let mut out = Vec::new();
        rfc3164::format(&mut out, &m, &rfc3164::FormatOptions { zone: zone.clone(), hostname: true, pri: true, precise_time: false });
        escape::escape(&mut out, 0, esc);
        prop_assert!(one_frame(&out), "wire: {:?}", String::from_utf8_lossy(&out));
        let raw = escape::unescape(&out, esc);
        let back = rfc3164::parse(&raw, &Context::new(now(), zone), Mode::Lenient);
        prop_assert_eq!(back, m);
    }

    #[test]
    fn gelf_is_one_nul_or_lf_frame_for_any_text(m in gelf_message()) {
        let mut out = Vec::new();
        gelf::encode(&mut out, &m, &[]);
        // JSON escapes every C0 control (DEL needs no escape in JSON and breaks no framing).
        prop_assert!(
            !out.iter().any(|&b| b < 0x20),
            "wire: {:?}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn escaping_any_bytes_leaves_no_control_character_and_unescapes_exactly(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        esc in prop_oneof![Just(Escape::Octal), Just(Escape::C)],
    ) {
        let mut out = bytes.clone();
        escape::escape(&mut out, 0, esc);
        prop_assert!(!out.iter().any(|&b| escape::is_control(b)));
        prop_assert_eq!(escape::unescape(&out, esc), bytes);
    }
}

/// No byte of `wire` would end a frame under LF or NUL framing (nor any control character
/// reach a terminal).
fn one_frame(wire: &[u8]) -> bool {
    !wire.iter().any(|&b| escape::is_control(b))
}
