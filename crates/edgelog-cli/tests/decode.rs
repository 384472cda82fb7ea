//! `edgelog decode`, run as a real process: the contract's example, a mixed stream with nothing
//! skipped, strict mode's exit code and offsets, compressed GELF, bad usage, and a closed pipe.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn edgelog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgelog"))
}

fn decode(args: &[&str], input: &[u8]) -> (Output, Vec<Value>) {
    let mut child = edgelog()
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run edgelog");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let lines = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, lines)
}

#[test]
fn contract_example_prints_every_field_exactly() {
    let input = b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8";
    let (out, lines) = decode(&[], input);
    assert!(out.status.success());
    assert_eq!(
        lines,
        [json!({
            "format": "rfc5424", "pri": 34, "facility": "auth", "severity": "critical",
            "version": 1, "timestamp": "2003-10-11T22:14:15.003Z",
            "hostname": "mymachine.example.com", "app_name": "su", "proc_id": null,
            "msg_id": "ID47", "structured_data": null,
            "message": "'su root' failed for lonvick on /dev/pts/8", "fields": {}
        })]
    );
}

#[test]
fn mixed_stream_gives_one_line_per_frame_in_order() {
    let mut input = Vec::new();
    let counted =
        b"<165>1 2003-10-11T22:14:15.003Z host app - ID1 [x@1 a=\"1\"] counted\nwith newline";
    input.extend_from_slice(format!("{} ", counted.len()).as_bytes());
    input.extend_from_slice(counted);
    input.extend_from_slice(b"<13>Oct 11 22:14:15 host tag[1]: lf frame\n");
    input.extend_from_slice(b"\xff\xfe garbage \x01\n");
    input.extend_from_slice(&[b'z'; 300]);
    input.extend_from_slice(b"\n\n");
    input.extend_from_slice(
        b"{\"version\":\"1.1\",\"host\":\"g\",\"short_message\":\"gelf\",\"_n\":5}\n",
    );
    input.extend_from_slice(b"6,99,1000,-;kernel line\n");
    input.extend_from_slice(b"<13>Oct 11 22:14:16 host tag: last, unterminated");
    let (out, lines) = decode(
        &[
            "--max-frame",
            "200",
            "--timezone",
            "UTC",
            "--now",
            "2003-10-12T00:00:00Z",
        ],
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let formats: Vec<&str> = lines
        .iter()
        .map(|l| l["format"].as_str().unwrap())
        .collect();
    assert_eq!(
        formats,
        [
            "rfc5424", "rfc3164", "raw", "raw", "raw", "gelf", "kmsg", "rfc3164"
        ]
    );
    assert_eq!(lines[0]["message"], "counted\nwith newline");
    assert_eq!(lines[0]["structured_data"], json!({"x@1": {"a": "1"}}));
    assert_eq!(lines[1]["app_name"], "tag");
    assert_eq!(lines[1]["proc_id"], "1");
    assert_eq!(lines[1]["timestamp"], "2003-10-11T22:14:15Z");
    assert_eq!(lines[2]["message"], "\u{fffd}\u{fffd} garbage \u{1}");
    assert_eq!(lines[3]["message"].as_str().unwrap(), "z".repeat(200));
    assert!(
        lines[3]["diagnostics"]
            .as_array()
            .unwrap()
            .contains(&json!({"kind": "frame_truncated", "offset": 200}))
    );
    assert_eq!(lines[4]["message"], "");
    assert_eq!(
        lines[4]["diagnostics"],
        json!([{"kind": "empty_frame", "offset": 0}])
    );
    assert_eq!(lines[5]["fields"], json!({"n": 5}));
    assert_eq!(lines[6]["sequence"], 99);
    assert_eq!(lines[7]["message"], "last, unterminated");
}

#[test]
fn strict_mode_reports_offsets_and_exits_2() {
    let input = b"<34>1 2003-10-11T22:14:15.003Z host app - - - fine\n<34>1 2003-10-11T22:14:15.0030000Z host app - - - too precise\n<34>1 - host app - - [bad\n";
    let (out, lines) = decode(&["--strict", "--format", "rfc5424"], input);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 of 3 frames"));
    assert_eq!(lines.len(), 3);
    assert!(lines[0].get("error").is_none());
    assert_eq!(
        lines[1]["error"],
        json!({"kind": "timestamp_too_precise", "offset": 32})
    );
    // Fields before the error are kept, fields after it are null.
    assert_eq!(lines[1]["timestamp"], "2003-10-11T22:14:15.003Z");
    assert_eq!(lines[1]["hostname"], Value::Null);
    assert_eq!(
        lines[2]["error"],
        json!({"kind": "invalid_structured_data", "offset": 25})
    );
    assert_eq!(lines[2]["msg_id"], Value::Null);
    assert_eq!(lines[2]["app_name"], "app");
}

#[test]
fn lenient_mode_recovers_and_exits_0() {
    let (out, lines) = decode(
        &["--format", "rfc5424"],
        b"<34>1 2003-10-11T22:14:15.0030000Z host app - - - recovered\n",
    );
    assert!(out.status.success());
    assert_eq!(lines[0]["hostname"], "host");
    assert_eq!(lines[0]["message"], "recovered");
    assert_eq!(
        lines[0]["diagnostics"],
        json!([{"kind": "timestamp_too_precise", "offset": 32}])
    );
}

#[test]
fn compressed_gelf_in_octet_counted_frames() {
    use flate2::write::GzEncoder;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"version":"1.1","host":"leaf","short_message":"zipped","level":4}"#)
        .unwrap();
    let payload = gz.finish().unwrap();
    let mut input = format!("{} ", payload.len()).into_bytes();
    input.extend_from_slice(&payload);
    let (out, lines) = decode(&["--framing", "octet-counting", "--format", "gelf"], &input);
    assert!(out.status.success());
    assert_eq!(lines[0]["message"], "zipped");
    assert_eq!(lines[0]["severity"], "warning");
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    for args in [
        &["--format", "xml"][..],
        &["--framing", "cr"],
        &["--timezone", "Mars/Base"],
        &["--now", "soon"],
    ] {
        let out = edgelog()
            .arg("decode")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[1]), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let mut child = edgelog()
        .args(["decode"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..200_000 {
            if stdin
                .write_all(b"<13>Oct 11 22:14:15 host tag: line\n")
                .is_err()
            {
                break;
            }
        }
    });
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is dropped here: the next write gets EPIPE.
    let status = child.wait().unwrap();
    writer.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn raw_frames_flag_invalid_utf8_only_where_it_is() {
    let (out, lines) = decode(&["--format", "raw"], b"hello\nh\xffllo\n");
    assert!(out.status.success());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"], "hello");
    assert!(lines[0].get("diagnostics").is_none(), "{}", lines[0]);
    assert_eq!(lines[1]["message"], "h\u{fffd}llo");
    assert_eq!(
        lines[1]["diagnostics"],
        json!([{"kind": "invalid_utf8", "offset": 1}])
    );
}
