//! `edgelog logger` against util-linux `logger` (a real peer): for the same options, both send
//! records that decode to the same fields, over a unix datagram socket, UDP and TCP (LF and
//! octet-counted framing). Timestamps and process ids differ by nature; their presence is
//! compared.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Framer, Framing, Mode};
use edgelog_core::Timestamp;

/// The util-linux `logger`, or `None` outside CI when it is missing (CI must have it:
/// `scripts/test` installs it).
fn util_linux_logger() -> Option<&'static str> {
    let found = Command::new("logger")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "util-linux logger is missing under CI"
        );
        eprintln!("skipping: util-linux logger is not installed");
        return None;
    }
    Some("logger")
}

/// The fields both senders must agree on.
fn fields(frame: &[u8]) -> String {
    let ctx = Context::utc(Timestamp::now());
    let m = Decoder::new(FormatHint::Auto, Mode::Lenient, ctx).decode(frame);
    let sd: Vec<&str> = m
        .structured_data
        .iter()
        .flat_map(|sd| sd.elements())
        .map(|e| e.id)
        .collect();
    format!(
        "format={} pri={:?} ts={} host={:?} app={:?} pid={} msgid={:?} sd={sd:?} msg={:?} problems={}",
        m.format,
        m.pri.map(|p| p.as_u8()),
        m.timestamp.is_some(),
        m.hostname,
        m.app_name,
        m.proc_id.is_some(),
        m.msg_id,
        m.message,
        m.diagnostics.len()
    )
}

fn run(program: &str, args: &[&str]) {
    let mut cmd = if program == "edgelog" {
        let mut c = Command::new(env!("CARGO_BIN_EXE_edgelog"));
        c.arg("logger");
        c
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const OPTION_SETS: &[&[&str]] = &[
    &["-t", "demo", "hello world"],
    &["--rfc3164", "-i", "-t", "demo", "-p", "daemon.err", "x"],
    &[
        "--rfc5424",
        "--msgid",
        "ID7",
        "-i",
        "-t",
        "demo",
        "-p",
        "local3.warning",
        "y",
    ],
    &[
        "--rfc5424=notq,notime",
        "-p",
        "auth.crit",
        "-t",
        "demo",
        "z",
    ],
    &["--rfc5424=nohost", "-t", "demo", "-p", "7", "no host"],
];

/// Sends every option set with both loggers, each with `prefix` before the options, and
/// compares the decoded fields of what `recv` gets.
fn compare(
    logger: &str,
    options: &[&[&str]],
    prefix: &[&str],
    mut recv: impl FnMut(&mut [u8]) -> usize,
) {
    let mut buf = vec![0u8; 8192];
    for opts in options {
        let mut got = Vec::new();
        for program in [logger, "edgelog"] {
            let args: Vec<&str> = prefix.iter().chain(opts.iter()).copied().collect();
            run(program, &args);
            let n = recv(&mut buf);
            got.push(fields(&buf[..n]));
        }
        assert_eq!(got[0], got[1], "{opts:?}");
    }
}

#[test]
fn same_fields_as_util_linux_over_a_unix_socket() {
    let Some(logger) = util_linux_logger() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    compare(
        logger,
        OPTION_SETS,
        &["-u", path.to_str().unwrap()],
        |buf| sock.recv(buf).unwrap(),
    );
}

#[test]
fn same_fields_as_util_linux_over_udp() {
    let Some(logger) = util_linux_logger() else {
        return;
    };
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let prefix = ["-n", "127.0.0.1", "-P", &port, "-d"];
    compare(logger, &OPTION_SETS[1..], &prefix, |buf| {
        sock.recv(buf).unwrap()
    });
}

#[test]
fn same_frames_and_fields_as_util_linux_over_tcp() {
    let Some(logger) = util_linux_logger() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for framing in [&[][..], &["--octet-count"][..]] {
        let mut got = Vec::new();
        for program in [logger, "edgelog"] {
            let mut args = vec![
                "-n",
                "127.0.0.1",
                "-P",
                &port,
                "-T",
                "--rfc5424",
                "-t",
                "demo",
            ];
            args.extend_from_slice(framing);
            args.push("over tcp");
            run(program, &args);
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut bytes = Vec::new();
            conn.read_to_end(&mut bytes).unwrap();
            let explicit = if framing.is_empty() {
                Framing::Lf
            } else {
                Framing::OctetCounting
            };
            let (n, frame) = Framer::new(explicit, 65536).next_frame(&bytes, true);
            let frame = frame.unwrap();
            assert_eq!(n, bytes.len(), "one frame, nothing else: {bytes:?}");
            assert_eq!(frame.octet_counted, !framing.is_empty());
            got.push(fields(frame.data));
        }
        assert_eq!(got[0], got[1], "{framing:?}");
    }
}

#[test]
fn one_message_per_stdin_line_and_bad_priorities_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .args(["logger", "-u", path.to_str().unwrap(), "-t", "pipe"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"first\n\nsecond\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut buf = vec![0u8; 1024];
    for want in ["first", "second"] {
        let n = sock.recv(&mut buf).unwrap();
        assert!(fields(&buf[..n]).contains(&format!("msg=Some({want:?})")));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .args([
            "logger",
            "-u",
            path.to_str().unwrap(),
            "-p",
            "local9.info",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("local9"));
}
