//! RFC 3164: the document's examples, strict mode, year inference across New Year, zones, and
//! the formatter.

use edgelog_codec::rfc3164::{self, Context, FormatOptions};
use edgelog_codec::{Format, Message, Mode};
use edgelog_core::Timestamp;
use jiff::tz::{Offset, TimeZone};

fn at(now: &str) -> Context {
    Context::utc(now.parse().unwrap())
}

fn ts(m: &Message<'_>) -> Option<String> {
    m.timestamp.map(|t| t.to_string())
}

#[test]
fn rfc_example_1_is_valid_in_strict_mode() {
    let line = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8";
    let m = rfc3164::parse(line, &at("2003-10-12T00:00:00Z"), Mode::Strict);
    assert_eq!(m.error, None);
    assert_eq!(m.pri.unwrap().as_u8(), 34);
    assert_eq!(ts(&m).as_deref(), Some("2003-10-11T22:14:15Z"));
    assert_eq!(m.hostname.as_deref(), Some("mymachine"));
    assert_eq!(m.app_name.as_deref(), Some("su"));
    assert_eq!(
        m.message.as_deref(),
        Some("'su root' failed for lonvick on /dev/pts/8")
    );
}

#[test]
fn rfc_example_2_without_pri_is_raw_text() {
    let m = rfc3164::parse(b"Use the BFG!", &at("2003-10-12T00:00:00Z"), Mode::Lenient);
    assert_eq!(m.format, Format::Raw);
    assert_eq!(m.message.as_deref(), Some("Use the BFG!"));
    let m = rfc3164::parse(b"Use the BFG!", &at("2003-10-12T00:00:00Z"), Mode::Strict);
    assert_eq!(
        m.error.map(|e| (e.kind.name(), e.offset)),
        Some(("missing_pri", 0))
    );
}

#[test]
fn rfc_example_3_with_a_bad_timestamp_keeps_every_byte() {
    let line = b"<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK, Jelly_Injector=OK, Frier=OK # Transport: Conveyer1=OK, Conveyer2=OK # %%";
    let m = rfc3164::parse(line, &at("2003-08-25T00:00:00Z"), Mode::Lenient);
    assert_eq!(m.pri.unwrap().as_u8(), 165);
    assert_eq!(ts(&m).as_deref(), Some("2003-08-24T05:34:00Z"));
    // The bad timestamp's zone and year are read as rsyslog reads them: a host name and a tag.
    assert_eq!(
        (m.hostname.as_deref(), m.app_name.as_deref()),
        (Some("CST"), Some("1987"))
    );
    let rest = format!(
        "{} {} {}",
        m.hostname.as_deref().unwrap(),
        m.app_name.as_deref().unwrap(),
        m.message.as_deref().unwrap()
    );
    assert!(
        rest.starts_with("CST 1987 mymachine myproc[10]: %% It's time"),
        "{rest}"
    );
    assert!(rest.ends_with("Conveyer2=OK # %%"));
}

#[test]
fn rfc_example_4_year_first() {
    let line = b"<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!";
    let m = rfc3164::parse(line, &at("2024-01-01T00:00:00Z"), Mode::Lenient);
    assert_eq!(ts(&m).as_deref(), Some("1990-10-22T10:52:01Z"));
    assert!(m.message.unwrap().ends_with("sched[0]: That's All Folks!"));
}

#[test]
fn strict_requires_pri_and_the_rfc_timestamp() {
    let ctx = at("2024-06-15T12:00:00Z");
    let cases: [(&[u8], &str, usize); 5] = [
        (b"Jun 15 11:00:00 h t: m", "missing_pri", 0),
        (b"<13>Jun 05 11:00:00 h t: m", "invalid_timestamp", 4),
        (b"<13>2024-06-15T11:00:00Z h t: m", "invalid_timestamp", 4),
        (b"<13>Jun 15 11:00:00.123 h t: m", "invalid_timestamp", 4),
        (b"<13> h t: m", "missing_timestamp", 4),
    ];
    for (line, kind, offset) in cases {
        let m = rfc3164::parse(line, &ctx, Mode::Strict);
        assert_eq!(
            m.error.map(|e| (e.kind.name(), e.offset)),
            Some((kind, offset)),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    let m = rfc3164::parse(b"<13>Jun  5 11:00:00 h t: m", &ctx, Mode::Strict);
    assert_eq!(m.error, None);
}

#[test]
fn yearless_timestamps_take_the_latest_plausible_year() {
    let cases = [
        // Dec 31 read just after New Year: last year.
        (
            "2025-01-01T00:00:10Z",
            "Dec 31 23:59:59",
            "2024-12-31T23:59:59Z",
        ),
        // Jan 1 from a sender a few seconds ahead, read on Dec 31: next year.
        (
            "2024-12-31T23:59:59Z",
            "Jan  1 00:00:05",
            "2025-01-01T00:00:05Z",
        ),
        // A little ahead (clock skew, < 31 days): this year.
        (
            "2024-06-15T12:00:00Z",
            "Jul 10 00:00:00",
            "2024-07-10T00:00:00Z",
        ),
        // Far ahead: it must be last year's.
        (
            "2024-06-15T12:00:00Z",
            "Aug 10 00:00:00",
            "2023-08-10T00:00:00Z",
        ),
        // Feb 29 in a year without one: the leap year before.
        (
            "2025-03-01T00:00:00Z",
            "Feb 29 12:00:00",
            "2024-02-29T12:00:00Z",
        ),
        (
            "2024-03-01T00:00:00Z",
            "Feb 29 12:00:00",
            "2024-02-29T12:00:00Z",
        ),
    ];
    for (now, stamp, want) in cases {
        let line = format!("<13>{stamp} host app: x");
        let m = rfc3164::parse(line.as_bytes(), &at(now), Mode::Lenient);
        assert_eq!(ts(&m).as_deref(), Some(want), "{stamp} read at {now}");
    }
}

#[test]
fn zoneless_times_are_read_in_the_supplied_zone() {
    // Central European time with its DST rule, self-contained (no tz database needed).
    let cet = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    let ctx = Context::new("2024-06-15T12:00:00Z".parse().unwrap(), cet);
    let cases = [
        ("<13>Jun 15 11:58:00 h a: summer", "2024-06-15T09:58:00Z"),
        ("<13>Jan 15 11:58:00 h a: winter", "2024-01-15T10:58:00Z"),
        (
            "<13>2024-06-15T11:58:00 h a: iso without offset",
            "2024-06-15T09:58:00Z",
        ),
        (
            "<13>2024-06-15T11:58:00+00:00 h a: iso with offset",
            "2024-06-15T11:58:00Z",
        ),
        (
            "<189>Jun 15 10:30:01 UTC: %LINK-3-UPDOWN: named UTC",
            "2024-06-15T10:30:01Z",
        ),
        (
            "<189>Jun 15 10:30:01 CEST: %LINK-3-UPDOWN: other names use the zone",
            "2024-06-15T08:30:01Z",
        ),
    ];
    for (line, want) in cases {
        let m = rfc3164::parse(line.as_bytes(), &ctx, Mode::Lenient);
        assert_eq!(ts(&m).as_deref(), Some(want), "{line}");
    }
}

#[test]
fn formatter_writes_the_rfc_shape_in_a_zone() {
    let mut m = Message::new(Format::Rfc3164);
    m.pri = edgelog_codec::Pri::from_u8(34);
    m.timestamp = Some("2003-10-11T22:14:15.999Z".parse::<Timestamp>().unwrap());
    m.hostname = Some("mymachine".into());
    m.app_name = Some("su".into());
    m.proc_id = Some("42".into());
    m.message = Some("'su root' failed".into());
    let mut out = Vec::new();
    rfc3164::format(&mut out, &m, &FormatOptions::default());
    assert_eq!(
        out,
        b"<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed"
    );

    out.clear();
    let opts = FormatOptions {
        zone: TimeZone::fixed(Offset::from_hours(-7).unwrap()),
        hostname: false,
        pri: true,
        precise_time: false,
    };
    m.timestamp = Some("2003-10-05T02:00:00Z".parse::<Timestamp>().unwrap());
    rfc3164::format(&mut out, &m, &opts);
    assert_eq!(out, b"<34>Oct  4 19:00:00 su[42]: 'su root' failed");

    // The line of a traditional log file: no PRI.
    out.clear();
    let opts = FormatOptions {
        hostname: true,
        pri: false,
        ..opts
    };
    rfc3164::format(&mut out, &m, &opts);
    assert_eq!(out, b"Oct  4 19:00:00 mymachine su[42]: 'su root' failed");

    // rsyslog's default file line: the time in RFC 3339, microseconds and offset.
    out.clear();
    m.timestamp = Some("2003-10-05T02:00:00.25Z".parse::<Timestamp>().unwrap());
    let opts = FormatOptions {
        precise_time: true,
        ..opts
    };
    rfc3164::format(&mut out, &m, &opts);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2003-10-04T19:00:00.250000-07:00 mymachine su[42]: 'su root' failed"
    );
}

#[test]
fn a_tag_with_no_name_is_kept_as_syslog_tag_and_the_message_splits_as_rsyslogs() {
    let m = rfc3164::parse(
        "<30>Jun 15 11:58:12 host \u{feff}BOM then text".as_bytes(),
        &at("2024-06-16T00:00:00Z"),
        Mode::Lenient,
    );
    assert_eq!(m.hostname.as_deref(), Some("host"));
    assert_eq!(m.app_name, None);
    assert_eq!(m.message.as_deref(), Some("then text"));
    assert_eq!(
        m.fields,
        [(
            "syslog_tag".into(),
            edgelog_core::Value::Str("\u{feff}BOM".into())
        )]
    );
}
