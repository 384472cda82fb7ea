//! GELF 1.1: the spec's example, strict and lenient decoding, encoding, UDP chunk reassembly
//! (order, duplicates, expiry, limits, bad headers) and compression.

use std::time::{Duration, Instant};

use edgelog_codec::gelf::chunk::{self, Limits, Push, Reassembler};
use edgelog_codec::gelf::compress::{self, Compression};
use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, Format, FormatHint, Message, Mode, StructuredData, gelf};
use edgelog_core::{Timestamp, Value};

const SPEC_EXAMPLE: &str = r#"{
  "version": "1.1",
  "host": "example.org",
  "short_message": "A short message that helps you identify what is going on",
  "full_message": "Backtrace here\n\nmore stuff",
  "timestamp": 1385053862.3072,
  "level": 1,
  "_user_id": 9001,
  "_some_info": "foo",
  "_some_env_var": "bar"
}"#;

#[test]
fn spec_example_decodes_with_numbers_kept_as_numbers() {
    let m = gelf::parse(SPEC_EXAMPLE.as_bytes(), Mode::Strict);
    assert_eq!(m.error, None);
    assert_eq!(m.format, Format::Gelf);
    assert_eq!(m.hostname.as_deref(), Some("example.org"));
    assert_eq!(
        m.message.as_deref(),
        Some("A short message that helps you identify what is going on")
    );
    assert_eq!(
        m.timestamp.unwrap().to_string(),
        "2013-11-21T17:11:02.307200Z"
    );
    assert_eq!(m.severity().name(), "alert");
    assert_eq!(m.field("user_id"), Some(&Value::I64(9001)));
    assert_eq!(m.field("some_info"), Some(&Value::from("foo")));
    assert_eq!(
        m.field("full_message"),
        Some(&Value::from("Backtrace here\n\nmore stuff"))
    );
}

#[test]
fn timestamps_keep_every_digit_and_level_defaults_to_alert() {
    let m = gelf::parse(
        br#"{"version":"1.1","host":"h","short_message":"m","timestamp":1700000000.123456789}"#,
        Mode::Strict,
    );
    assert_eq!(
        m.timestamp.unwrap().as_unix_nanos(),
        1_700_000_000_123_456_789
    );
    assert_eq!(m.severity().name(), "alert");
    let m = gelf::parse(br#"{"version":"1.1","host":"h","short_message":"m","timestamp":1.7e9,"_f":2.5,"_big":18446744073709551615}"#, Mode::Strict);
    assert_eq!(m.timestamp.unwrap().unix_seconds(), 1_700_000_000);
    assert_eq!(m.field("f"), Some(&Value::F64(2.5)));
    assert_eq!(m.field("big"), Some(&Value::U64(u64::MAX)));
}

#[test]
fn strict_refuses_what_the_spec_forbids() {
    let cases: [(&str, &str); 9] = [
        (r#"{"host":"h","short_message":"m"}"#, "missing_field"),
        (r#"{"version":"1.1","short_message":"m"}"#, "missing_field"),
        (r#"{"version":"1.1","host":"h"}"#, "missing_field"),
        (
            r#"{"version":"2.0","host":"h","short_message":"m"}"#,
            "invalid_field",
        ),
        (
            r#"{"version":"1.1","host":"h","short_message":"m","_id":"x"}"#,
            "reserved_field",
        ),
        (
            r#"{"version":"1.1","host":"h","short_message":"m","_a b":"x"}"#,
            "invalid_field",
        ),
        (
            r#"{"version":"1.1","host":"h","short_message":"m","_n":[1]}"#,
            "invalid_field",
        ),
        (
            r#"{"version":"1.1","host":"h","short_message":"m","level":9}"#,
            "invalid_field",
        ),
        (
            r#"{"version":"1.1","host":"h","short_message":"m","timestamp":"now"}"#,
            "invalid_timestamp",
        ),
    ];
    for (json, kind) in cases {
        let m = gelf::parse(json.as_bytes(), Mode::Strict);
        assert_eq!(m.error.map(|e| e.kind.name()), Some(kind), "{json}");
    }
    // What real clients send and Graylog takes: version 1.0 (graypy), null fields (dropped).
    let m = gelf::parse(
        br#"{"version":"1.0","host":"h","short_message":"m","_function":null,"_pid":7}"#,
        Mode::Strict,
    );
    assert_eq!(m.error, None);
    assert_eq!(m.fields.len(), 1);
    assert_eq!(m.field("pid"), Some(&Value::I64(7)));
    let m = gelf::parse(b"{\"version\":\"1.1\",\n\"host\": oops}", Mode::Strict);
    assert_eq!(
        m.error.map(|e| (e.kind.name(), e.offset)),
        Some(("invalid_json", 26))
    );
    let m = gelf::parse(
        br#"{"version":"1.1","host":"h","short_message":"m","_a":[1]}"#,
        Mode::Strict,
    );
    assert_eq!(
        m.error.map(|e| (e.kind.name(), e.offset)),
        Some(("invalid_field", 53))
    );
}

#[test]
fn lenient_keeps_everything_and_says_what_was_wrong() {
    let m = gelf::parse(
        br#"{"host":"h","short_message":"m","_id":"x","_a":[1,2],"extra":true}"#,
        Mode::Lenient,
    );
    assert_eq!(m.error, None);
    assert_eq!(m.field("id"), Some(&Value::from("x")));
    assert_eq!(m.field("a"), Some(&Value::from("[1,2]")));
    assert_eq!(m.field("extra"), Some(&Value::Bool(true)));
    let kinds: Vec<&str> = m.diagnostics.iter().map(|d| d.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "reserved_field",
            "invalid_field",
            "invalid_field",
            "missing_field"
        ]
    );
    let m = gelf::parse(b"not json at all", Mode::Lenient);
    assert_eq!(m.format, Format::Raw);
    assert_eq!(m.message.as_deref(), Some("not json at all"));
}

#[test]
fn encoding_adds_header_fields_and_sanitises_names() {
    let mut m = Message::new(Format::Rfc5424);
    m.pri = edgelog_codec::Pri::from_u8(34);
    m.timestamp = Some(Timestamp::from_unix(1_385_053_862, 307_200_000).unwrap());
    m.hostname = Some("leaf-01".into());
    m.app_name = Some("bgpd".into());
    m.proc_id = Some("77".into());
    m.message = Some("peer \"10.0.0.2\" down\n".into());
    m.structured_data = StructuredData::from_elements([("origin@32473", [("ip", "10.0.0.1")])]);
    m.fields.push(("asn".into(), Value::I64(65001)));
    m.fields.push(("id".into(), Value::from("reserved")));
    m.fields.push(("bad name!".into(), Value::F64(0.5)));
    let mut out = Vec::new();
    gelf::encode(&mut out, &m, &[("serial_number", Value::from("SN123"))]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let want = serde_json::json!({
        "version": "1.1", "host": "leaf-01", "short_message": "peer \"10.0.0.2\" down\n",
        "timestamp": 1385053862.3072, "level": 2, "_facility": "auth", "_app_name": "bgpd",
        "_proc_id": "77", "_origin_32473_ip": "10.0.0.1", "_asn": 65001, "_id_": "reserved",
        "_bad_name_": 0.5, "_serial_number": "SN123"
    });
    assert_eq!(v, want);
    assert!(
        std::str::from_utf8(&out)
            .unwrap()
            .contains("\"timestamp\":1385053862.3072,")
    );
    // And it reads back into the same header.
    let back = gelf::parse(&out, Mode::Strict);
    assert_eq!(back.error, None);
    assert_eq!(
        (back.pri, back.app_name.as_deref(), back.proc_id.as_deref()),
        (m.pri, Some("bgpd"), Some("77"))
    );
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn chunks_reassemble_in_any_order_and_ignore_duplicates() {
    let data = payload(5000);
    let chunks = chunk::split(&data, 1000, [7; 8]).unwrap();
    assert_eq!(chunks.len(), 6);
    assert!(
        chunks
            .iter()
            .all(|c| c.len() <= 1000 && c[..2] == chunk::MAGIC)
    );
    let mut r = Reassembler::new(Limits::default());
    let now = Instant::now();
    let order = [5, 0, 3, 3, 1, 4, 0];
    for &i in &order {
        let got = r.push(&chunks[i], now);
        assert!(matches!(got, Push::Pending | Push::Duplicate), "{got:?}");
    }
    match r.push(&chunks[2], now) {
        Push::Complete(p) => assert_eq!(p.as_ref(), data.as_slice()),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.stats().duplicates, 2);
    assert_eq!(r.stats().completed, 1);
    assert_eq!((r.pending_messages(), r.pending_bytes()), (0, 0));
    // A late duplicate of a finished message starts a new partial that then expires.
    assert_eq!(r.push(&chunks[1], now), Push::Pending);
    r.expire(now + Duration::from_secs(6));
    assert_eq!(r.stats().expired, 1);
}

#[test]
fn unchunked_and_single_chunk_datagrams_pass_straight_through() {
    let mut r = Reassembler::new(Limits::default());
    let now = Instant::now();
    assert_eq!(
        r.push(b"{\"x\":1}", now),
        Push::Complete(b"{\"x\":1}"[..].into())
    );
    let mut one = chunk::MAGIC.to_vec();
    one.extend_from_slice(&[1; 8]);
    one.extend_from_slice(&[0, 1]);
    one.extend_from_slice(b"{}");
    assert_eq!(r.push(&one, now), Push::Complete(b"{}"[..].into()));
}

#[test]
fn incomplete_messages_expire_after_five_seconds() {
    let chunks = chunk::split(&payload(3000), 1000, [1; 8]).unwrap();
    let mut r = Reassembler::new(Limits::default());
    let t0 = Instant::now();
    assert_eq!(r.push(&chunks[0], t0), Push::Pending);
    assert_eq!(r.expire(t0 + Duration::from_millis(4900)), 0);
    assert_eq!(r.expire(t0 + Duration::from_millis(5000)), 1);
    assert_eq!(r.stats().expired, 1);
    assert_eq!(r.pending_bytes(), 0);
    // The rest arriving late starts over and does not complete the old message.
    assert_eq!(
        r.push(&chunks[1], t0 + Duration::from_secs(6)),
        Push::Pending
    );
    assert_eq!(
        r.push(&chunks[2], t0 + Duration::from_secs(6)),
        Push::Pending
    );
}

#[test]
fn limits_evict_the_oldest_partial_message_and_count_it() {
    let limits = Limits {
        max_messages: 2,
        max_bytes: 10_000,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    let now = Instant::now();
    for id in 0..3u8 {
        let chunks = chunk::split(&payload(1500), 1000, [id; 8]).unwrap();
        assert_eq!(r.push(&chunks[0], now), Push::Pending);
    }
    assert_eq!(r.stats().evicted, 1);
    assert_eq!(r.pending_messages(), 2);
    // Message 0 was evicted: its second chunk starts a new partial; 1 and 2 still complete.
    let c1 = chunk::split(&payload(1500), 1000, [1; 8]).unwrap();
    assert!(matches!(r.push(&c1[1], now), Push::Complete(_)));

    let limits = Limits {
        max_messages: 100,
        max_bytes: 2500,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    for id in 0..4u8 {
        let chunks = chunk::split(&payload(3000), 1000, [id; 8]).unwrap();
        r.push(&chunks[0], now);
    }
    assert!(r.pending_bytes() <= 2500);
    assert_eq!(r.stats().evicted, 2);
}

#[test]
fn impossible_chunk_headers_are_invalid() {
    let mut r = Reassembler::new(Limits::default());
    let now = Instant::now();
    let header = |seq: u8, count: u8| {
        let mut c = chunk::MAGIC.to_vec();
        c.extend_from_slice(&[9; 8]);
        c.extend_from_slice(&[seq, count]);
        c.extend_from_slice(b"data");
        c
    };
    assert_eq!(r.push(&header(0, 0), now), Push::Invalid);
    assert_eq!(r.push(&header(3, 3), now), Push::Invalid);
    assert_eq!(r.push(&header(0, 129), now), Push::Invalid);
    assert_eq!(r.push(&header(0, 3), now), Push::Pending);
    assert_eq!(r.push(&header(1, 4), now), Push::Invalid);
    assert_eq!(r.stats().invalid, 4);
}

#[test]
fn splitting_refuses_more_than_128_chunks() {
    assert_eq!(
        chunk::split(&payload(128 * 88), 100, [0; 8]).unwrap().len(),
        128
    );
    let err = chunk::split(&payload(128 * 88 + 1), 100, [0; 8]).unwrap_err();
    assert_eq!(err.max, 128 * 88);
    let mut ids = chunk::IdGenerator::default();
    assert_ne!(ids.next_id(), ids.next_id());
}

#[test]
fn compression_is_detected_and_inflation_is_bounded() {
    let json = SPEC_EXAMPLE.as_bytes();
    let gz = compress::gzip(json);
    let zl = compress::zlib(json);
    assert_eq!(compress::detect(&gz), Compression::Gzip);
    assert_eq!(compress::detect(&zl), Compression::Zlib);
    assert_eq!(compress::detect(json), Compression::None);
    assert_eq!(compress::decompress(&gz, 1 << 20).unwrap().as_ref(), json);
    assert_eq!(compress::decompress(&zl, 1 << 20).unwrap().as_ref(), json);
    assert_eq!(
        compress::decompress(&gz, 100).unwrap_err().name(),
        "payload_too_large"
    );
    let bomb = compress::gzip(&vec![b' '; 10 << 20]);
    assert_eq!(
        compress::decompress(&bomb, 1 << 20).unwrap_err().name(),
        "payload_too_large"
    );
    let mut broken = gz.clone();
    broken.truncate(gz.len() / 2);
    assert_eq!(
        compress::decompress(&broken, 1 << 20).unwrap_err().name(),
        "decompress_failed"
    );

    // The auto decoder inflates and decodes compressed GELF.
    let decoder = Decoder::new(
        FormatHint::Auto,
        Mode::Lenient,
        Context::utc(Timestamp::now()),
    );
    for packed in [&gz, &zl] {
        let m = decoder.decode(packed);
        assert_eq!(m.format, Format::Gelf);
        assert_eq!(m.hostname.as_deref(), Some("example.org"));
    }
}
