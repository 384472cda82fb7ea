//! RFC 5424: the document's own examples, then a table of grammar violations with the offset
//! strict mode must report, then lenient recovery of the same inputs.

use edgelog_codec::{Format, Message, Mode, rfc5424};

fn strict(input: &[u8]) -> Message<'_> {
    rfc5424::parse(input, Mode::Strict)
}

fn lenient(input: &[u8]) -> Message<'_> {
    rfc5424::parse(input, Mode::Lenient)
}

fn sd(m: &Message<'_>) -> Vec<(String, Vec<(String, String)>)> {
    m.structured_data
        .iter()
        .flat_map(|sd| sd.elements())
        .map(|e| {
            let params = e
                .params()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (e.id.to_string(), params)
        })
        .collect()
}

#[test]
fn rfc_example_1_su_with_bom() {
    let m = strict(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8");
    assert_eq!(m.error, None);
    let pri = m.pri.unwrap();
    assert_eq!(
        (pri.facility.name(), pri.severity.name()),
        ("auth", "critical")
    );
    assert_eq!(m.version, Some(1));
    assert_eq!(m.timestamp.unwrap().to_string(), "2003-10-11T22:14:15.003Z");
    assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
    assert_eq!(m.app_name.as_deref(), Some("su"));
    assert_eq!(m.proc_id, None);
    assert_eq!(m.msg_id.as_deref(), Some("ID47"));
    assert_eq!(m.structured_data, None);
    assert_eq!(
        m.message.as_deref(),
        Some("'su root' failed for lonvick on /dev/pts/8")
    );
}

#[test]
fn rfc_example_2_offset_and_microseconds() {
    let m = strict(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
    assert_eq!(m.error, None);
    assert_eq!(m.pri.unwrap().as_u8(), 165);
    assert_eq!(
        m.timestamp.unwrap().to_string(),
        "2003-08-24T12:14:15.000003Z"
    );
    assert_eq!(m.hostname.as_deref(), Some("192.0.2.1"));
    assert_eq!(m.proc_id.as_deref(), Some("8710"));
    assert_eq!(m.msg_id, None);
    assert_eq!(
        m.message.as_deref(),
        Some("%% It's time to make the do-nuts.")
    );
}

#[test]
fn rfc_example_3_structured_data_and_message() {
    let m = strict(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...");
    assert_eq!(m.error, None);
    assert_eq!(
        sd(&m),
        [(
            "exampleSDID@32473".into(),
            vec![
                ("iut".into(), "3".into()),
                ("eventSource".into(), "Application".into()),
                ("eventID".into(), "1011".into())
            ]
        )]
    );
    assert_eq!(
        m.message.as_deref(),
        Some("An application event log entry...")
    );
}

#[test]
fn rfc_example_4_two_elements_no_message() {
    let m = strict(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]");
    assert_eq!(m.error, None);
    let ids: Vec<String> = sd(&m).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["exampleSDID@32473", "examplePriority@32473"]);
    assert_eq!(m.message, None);
}

#[test]
fn rfc_timestamp_examples() {
    let valid = [
        ("1985-04-12T23:20:50.52Z", "1985-04-12T23:20:50.520Z"),
        ("1985-04-12T19:20:50.52-04:00", "1985-04-12T23:20:50.520Z"),
        ("2003-10-11T22:14:15.003Z", "2003-10-11T22:14:15.003Z"),
        (
            "2003-08-24T05:14:15.000003-07:00",
            "2003-08-24T12:14:15.000003Z",
        ),
    ];
    for (ts, want) in valid {
        let line = format!("<13>1 {ts} h a p m -");
        let m = strict(line.as_bytes());
        assert_eq!(m.error, None, "{ts}");
        assert_eq!(m.timestamp.unwrap().to_string(), want, "{ts}");
    }
    // Nanoseconds are not allowed (RFC 5424 §6.2.3.1 example 5).
    let m = strict(b"<13>1 2003-08-24T05:14:15.000000003-07:00 h a p m -");
    assert_eq!(
        m.error.map(|e| (e.kind.name(), e.offset)),
        Some(("timestamp_too_precise", 32))
    );
    let m = lenient(b"<13>1 2003-08-24T05:14:15.000000003-07:00 h a p m -");
    assert_eq!(
        m.timestamp.unwrap().to_string(),
        "2003-08-24T12:14:15.000000003Z"
    );
}

#[test]
fn rfc_structured_data_examples() {
    // A space between elements ends the structured data: the rest is the message.
    let m = strict(
        b"<13>1 - h a p m [exampleSDID@32473 iut=\"3\"] [examplePriority@32473 class=\"high\"]",
    );
    assert_eq!(m.error, None);
    assert_eq!(sd(&m).len(), 1);
    assert_eq!(
        m.message.as_deref(),
        Some("[examplePriority@32473 class=\"high\"]")
    );
    // A space after '[' is not an SD-ID.
    let m = strict(b"<13>1 - h a p m [ exampleSDID@32473 iut=\"3\"]");
    assert_eq!(
        m.error.map(|e| (e.kind.name(), e.offset)),
        Some(("invalid_structured_data", 17))
    );
}

#[test]
fn param_value_escapes_are_undone_and_unknown_escapes_kept() {
    let m = strict(br#"<13>1 - h a p m [id p="a\"b\\c\]d\x" q="plain"] msg"#);
    assert_eq!(m.error, None);
    assert_eq!(
        sd(&m)[0].1,
        [
            ("p".to_string(), r#"a"b\c]d\x"#.to_string()),
            ("q".into(), "plain".into())
        ]
    );
    assert_eq!(m.message.as_deref(), Some("msg"));
}

#[test]
fn strict_reports_the_first_violation_and_its_offset() {
    let long_host = format!("<13>1 - {} a p m -", "h".repeat(256));
    let long_app = format!("<13>1 - h {} p m -", "a".repeat(49));
    let long_msgid = format!("<13>1 - h a p {} -", "m".repeat(33));
    let cases: Vec<(Vec<u8>, &str, usize)> = vec![
        (b"".to_vec(), "empty_frame", 0),
        (b"13>1 - - - - - -".to_vec(), "missing_pri", 0),
        (b"<192>1 - - - - - -".to_vec(), "invalid_pri", 1),
        (b"<1234>1 - - - - - -".to_vec(), "invalid_pri", 4),
        (b"<13 1 - - - - - -".to_vec(), "invalid_pri", 3),
        (b"<13>1000 - - - - - -".to_vec(), "invalid_version", 4),
        (b"<13>01 - - - - - -".to_vec(), "invalid_version", 4),
        (b"<13>1- - - - - -".to_vec(), "invalid_version", 4),
        (
            b"<13>1 2003-02-30T00:00:00Z h a p m -".to_vec(),
            "invalid_timestamp",
            6,
        ),
        (
            b"<13>1 2003-10-11T24:00:00Z h a p m -".to_vec(),
            "invalid_timestamp",
            6,
        ),
        (
            b"<13>1 2003-10-11T23:59:60Z h a p m -".to_vec(),
            "invalid_timestamp",
            6,
        ),
        (
            b"<13>1 2003-10-11 22:14:15Z h a p m -".to_vec(),
            "invalid_timestamp",
            16,
        ),
        (
            b"<13>1 2003-10-11T22:14:15 h a p m -".to_vec(),
            "invalid_timestamp",
            25,
        ),
        (
            b"<13>1 2003-10-11T22:14:15+0200 h a p m -".to_vec(),
            "invalid_timestamp",
            28,
        ),
        (
            b"<13>1 2003-10-11T22:14:15. h a p m -".to_vec(),
            "invalid_timestamp",
            26,
        ),
        // RFC 5424 §6.2.3: "T" and "Z" are upper case.
        (
            b"<13>1 2003-10-11t22:14:15Z h a p m -".to_vec(),
            "invalid_timestamp",
            16,
        ),
        (
            b"<13>1 2003-10-11T22:14:15.003z h a p m -".to_vec(),
            "invalid_timestamp",
            29,
        ),
        (long_host.into_bytes(), "field_too_long", 263),
        (long_app.into_bytes(), "field_too_long", 58),
        (long_msgid.into_bytes(), "field_too_long", 46),
        (
            "<13>1 - h \u{e9}pp p m -".as_bytes().to_vec(),
            "invalid_character",
            10,
        ),
        (b"<13>1 - h  p m -".to_vec(), "empty_field", 10),
        (b"<13>1 - h a p m".to_vec(), "truncated", 15),
        (b"<13>1 - h a".to_vec(), "truncated", 11),
        (b"<13>1 - h a p m -msg".to_vec(), "missing_space", 17),
        (b"<13>1 - h a p m x".to_vec(), "invalid_structured_data", 16),
        (
            br#"<13>1 - h a p m [id p="x]y"]"#.to_vec(),
            "invalid_structured_data",
            24,
        ),
        (
            br#"<13>1 - h a p m [id p="x"#.to_vec(),
            "invalid_structured_data",
            24,
        ),
        (
            br#"<13>1 - h a p m [id p=x]"#.to_vec(),
            "invalid_structured_data",
            22,
        ),
        (
            br#"<13>1 - h a p m [id p="1"][id q="2"]"#.to_vec(),
            "duplicate_sd_id",
            27,
        ),
        (
            format!("<13>1 - h a p m [{} p=\"1\"]", "i".repeat(33)).into_bytes(),
            "invalid_structured_data",
            49,
        ),
        (
            b"<13>1 - h a p m [id p=\"\xff\"]".to_vec(),
            "invalid_utf8",
            23,
        ),
        (
            b"<13>1 - h a p m - \xEF\xBB\xBFcaf\xe9".to_vec(),
            "invalid_utf8",
            24,
        ),
    ];
    for (input, kind, offset) in &cases {
        let m = strict(input);
        let got = m.error.map(|e| (e.kind.name(), e.offset));
        assert_eq!(
            got,
            Some((*kind, *offset)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert!(m.diagnostics.is_empty());
    }
}

#[test]
fn strict_keeps_only_what_was_parsed_before_the_error() {
    let m = strict(b"<13>1 2003-10-11T22:14:15Z host app 12 ID1 x trailing");
    assert_eq!(m.error.unwrap().kind.name(), "invalid_structured_data");
    assert_eq!(m.hostname.as_deref(), Some("host"));
    assert_eq!(m.msg_id.as_deref(), Some("ID1"));
    assert_eq!(m.message, None);
    let m = strict(b"<13>1 2003-10-11T22:14:15Z h\xc3\xa9st app 12 ID1 - msg");
    assert_eq!(m.error.unwrap().kind.name(), "invalid_character");
    assert!(m.timestamp.is_some());
    assert_eq!(m.hostname, None);
    assert_eq!(m.app_name, None);
}

#[test]
fn lenient_recovers_and_lists_what_it_recovered_from() {
    // Over-long and non-ASCII fields are kept.
    let host = "h".repeat(300);
    let line = format!("<13>1 - {host} \u{e9}pp p m - text");
    let m = lenient(line.as_bytes());
    assert_eq!(m.hostname.as_deref(), Some(host.as_str()));
    assert_eq!(m.app_name.as_deref(), Some("\u{e9}pp"));
    assert_eq!(m.message.as_deref(), Some("text"));
    let kinds: Vec<&str> = m.diagnostics.iter().map(|d| d.kind.name()).collect();
    assert_eq!(kinds, ["field_too_long", "invalid_character"]);

    // Broken structured data stays in the message, verbatim.
    let m = lenient(br#"<13>1 - h a p m [id p="x] rest of it"#);
    assert_eq!(m.structured_data, None);
    assert_eq!(m.message.as_deref(), Some(r#"[id p="x] rest of it"#));
    assert_eq!(m.diagnostics[0].kind.name(), "invalid_structured_data");

    // An invalid timestamp becomes null; the header goes on.
    let m = lenient(b"<13>1 yesterday h a p m - ok");
    assert_eq!(m.timestamp, None);
    assert_eq!(m.hostname.as_deref(), Some("h"));
    assert_eq!(m.message.as_deref(), Some("ok"));

    // A frame that ends early keeps what it had.
    let m = lenient(b"<13>1 - h a");
    assert_eq!(m.app_name.as_deref(), Some("a"));
    assert_eq!(m.diagnostics[0].kind.name(), "truncated");

    // An unescaped ']' inside quotes is unambiguous: kept.
    let m = lenient(br#"<13>1 - h a p m [id p="x]y"] m"#);
    assert_eq!(sd(&m)[0].1[0].1, "x]y");
    assert_eq!(m.message.as_deref(), Some("m"));

    // Invalid UTF-8 is replaced and reported, never dropped.
    let m = lenient(b"<13>1 - h a p m - caf\xe9 au lait");
    assert_eq!(m.message.as_deref(), Some("caf\u{FFFD} au lait"));
    assert_eq!(
        (m.diagnostics[0].kind.name(), m.diagnostics[0].offset),
        ("invalid_utf8", 21)
    );

    // No version at all: the rest is the message.
    let m = lenient(b"<13>hello");
    assert_eq!(m.format, Format::Rfc5424);
    assert_eq!(m.message.as_deref(), Some("hello"));
    assert!(m.error.is_none());
}

#[test]
fn diagnostics_are_bounded() {
    let mut line = b"<13>1 - h a p m ".to_vec();
    for i in 0..50 {
        line.extend_from_slice(format!("[id{i} p=\"]\"]").as_bytes());
    }
    let m = lenient(&line);
    assert_eq!(m.diagnostics.len(), edgelog_codec::MAX_DIAGNOSTICS);
    assert_eq!(
        m.diagnostics.last().unwrap().kind.name(),
        "too_many_diagnostics"
    );
}

#[test]
fn formatter_escapes_and_sanitises() {
    let mut m = lenient(br#"<13>1 2003-10-11T22:14:15.123456789Z h a p m [id p="a\"b\\c\]d"] msg"#);
    m.hostname = Some("bad host".into());
    m.app_name = Some("".into());
    let mut out = Vec::new();
    rfc5424::format(&mut out, &m, rfc5424::FormatOptions::default());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"<13>1 2003-10-11T22:14:15.123456Z bad_host - p m [id p="a\"b\\c\]d"] msg"#
    );
    let mut out = Vec::new();
    rfc5424::format(&mut out, &m, rfc5424::FormatOptions { bom: true });
    assert!(out.ends_with(b"] \xEF\xBB\xBFmsg"));
}

#[test]
fn versions_two_to_999_are_valid_and_read_by_version_ones_grammar() {
    for v in ["2", "10", "999"] {
        let line = format!("<13>{v} 2003-10-11T22:14:15.003Z host app 77 ID1 [a b=\"c\"] text");
        for m in [strict(line.as_bytes()), lenient(line.as_bytes())] {
            assert_eq!(m.error, None, "{line}");
            assert_eq!(m.version, Some(v.parse().unwrap()));
            assert_eq!(
                (
                    m.hostname.as_deref(),
                    m.app_name.as_deref(),
                    m.proc_id.as_deref()
                ),
                (Some("host"), Some("app"), Some("77"))
            );
            assert_eq!(m.message.as_deref(), Some("text"));
            let diags: Vec<_> = m.diagnostics.iter().map(|d| d.kind.name()).collect();
            assert_eq!(diags, ["unsupported_version"], "{line}");
        }
    }
    // Lenient mode takes lower-case "t" and "z" as RFC 3339 does.
    let m = lenient(b"<13>1 2003-10-11t22:14:15z h a p m -");
    assert_eq!(m.error, None);
    assert!(m.diagnostics.is_empty(), "{:?}", m.diagnostics);
    assert!(m.timestamp.is_some());
}

#[test]
fn lenient_structured_data_takes_spaces_around_the_equals_sign_as_rsyslog_does() {
    let line = br#"<13>1 - h a p m [id a= "b" c ="d"][two x="y"] msg"#;
    let m = lenient(line);
    assert_eq!(
        sd(&m),
        [
            (
                "id".to_string(),
                vec![("a".to_string(), "b".to_string()), ("c".into(), "d".into())]
            ),
            ("two".into(), vec![("x".into(), "y".into())]),
        ]
    );
    assert_eq!(
        m.structured_data.as_ref().map(|s| s.as_wire()),
        Some(r#"[id a="b" c="d"][two x="y"]"#)
    );
    assert_eq!(m.message.as_deref(), Some("msg"));
    let diags: Vec<_> = m
        .diagnostics
        .iter()
        .map(|d| (d.kind.name(), d.offset))
        .collect();
    assert_eq!(
        diags,
        [
            ("invalid_structured_data", 22),
            ("invalid_structured_data", 28)
        ]
    );
    // Strict mode holds to the ABNF.
    let m = strict(line);
    assert_eq!(
        m.error.map(|e| (e.kind.name(), e.offset)),
        Some(("invalid_structured_data", 22))
    );
}
