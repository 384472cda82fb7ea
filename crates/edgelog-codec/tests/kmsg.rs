//! `/dev/kmsg` records: header, dictionary, escapes, and sequence gaps.

use edgelog_codec::kmsg::{self, SequenceTracker};
use edgelog_codec::{Format, Mode};
use edgelog_core::{Timestamp, Value};

#[test]
fn record_with_dictionary_and_escapes() {
    let rec = b"6,1234,5678901,-;usb 1-1: new device \\x22x\\x22\n SUBSYSTEM=usb\n DEVICE=c189:1\n";
    let boot: Timestamp = "2024-06-15T00:00:00Z".parse().unwrap();
    let m = kmsg::parse(rec, Some(boot), Mode::Strict);
    assert_eq!(m.error, None);
    assert_eq!(m.format, Format::Kmsg);
    let pri = m.pri.unwrap();
    assert_eq!((pri.facility.name(), pri.severity.name()), ("kern", "info"));
    assert_eq!(m.sequence, Some(1234));
    assert_eq!(m.monotonic_usec, Some(5_678_901));
    assert_eq!(
        m.timestamp.unwrap().to_string(),
        "2024-06-15T00:00:05.678901Z"
    );
    assert_eq!(m.message.as_deref(), Some("usb 1-1: new device \"x\""));
    let fields: Vec<(String, String)> = m
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        fields,
        [
            ("SUBSYSTEM".into(), "usb".into()),
            ("DEVICE".into(), "c189:1".into())
        ]
    );
}

#[test]
fn userspace_facility_continuation_flag_and_caller_field() {
    let m = kmsg::parse(
        b"14,7,100,c,caller=T42;hello from userspace",
        None,
        Mode::Strict,
    );
    let pri = m.pri.unwrap();
    assert_eq!((pri.facility.name(), pri.severity.name()), ("user", "info"));
    assert_eq!(m.timestamp, None);
    assert_eq!(m.field("FLAGS").and_then(Value::as_str), Some("c"));
    assert_eq!(m.field("caller").and_then(Value::as_str), Some("T42"));
}

#[test]
fn a_bad_header_is_kept_raw_in_lenient_mode() {
    let m = kmsg::parse(b"not a kmsg record", None, Mode::Lenient);
    assert_eq!(m.format, Format::Raw);
    assert_eq!(m.message.as_deref(), Some("not a kmsg record"));
    assert_eq!(m.diagnostics[0].kind.name(), "invalid_kmsg_header");
    let m = kmsg::parse(b"6,x,1,-;msg", None, Mode::Strict);
    assert_eq!(m.error.unwrap().kind.name(), "invalid_kmsg_header");
    let m = kmsg::parse(b"3000,1,1,-;msg", None, Mode::Lenient);
    assert_eq!(m.pri, None);
    assert_eq!(m.message.as_deref(), Some("msg"));
}

#[test]
fn sequence_gaps_are_counted_as_lost_records() {
    let mut t = SequenceTracker::new();
    assert_eq!(t.observe(10), 0);
    assert_eq!(t.observe(11), 0);
    assert_eq!(t.observe(15), 3);
    assert_eq!(t.observe(16), 0);
    // Reopened at the start of the ring: not a loss.
    assert_eq!(t.observe(2), 0);
    assert_eq!(t.observe(5), 2);
    assert_eq!(t.lost(), 5);
}

#[test]
fn an_absurd_ts_usec_leaves_the_timestamp_empty_instead_of_overflowing() {
    // Found by the kmsg fuzz target: TS_USEC * 1000 overflowed an i64.
    let rec = b"6,481,28888888888888888888,-;message";
    let m = kmsg::parse(rec, Some(Timestamp::EPOCH), Mode::Lenient);
    assert_eq!(m.timestamp, None);
    assert_eq!(m.monotonic_usec, None);
    let m = kmsg::parse(
        b"6,481,18446744073709551,-;message",
        Some(Timestamp::EPOCH),
        Mode::Lenient,
    );
    assert_eq!(m.timestamp, None);
    assert_eq!(m.monotonic_usec, Some(18_446_744_073_709_551));
    assert_eq!(m.message.as_deref(), Some("message"));
}
