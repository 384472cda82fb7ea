//! The load generator and the sink agree: every record sent arrives, by sequence number, in
//! both framings and both formats, paced and at full speed; a gap is reported as lost; a
//! stalled sink gets everything after its pause; files written are counted with their
//! duplicates; a full datagram socket refuses non-blocking sends, counted.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_edgelog-load");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a sink expecting `expect`, then the sends; returns the sink's report.
fn run(expect: u64, sends: &[&[&str]]) -> serde_json::Value {
    run_with(expect, &[], sends)
}

/// The same with more sink arguments.
fn run_with(expect: u64, sink_args: &[&str], sends: &[&[&str]]) -> serde_json::Value {
    // A port free a moment ago may be taken by another test's listener before the sink binds
    // it: then the sink exits, and another port is tried.
    let (addr, sink) = (0..10)
        .find_map(|_| {
            let port = free_port();
            let addr = format!("tcp://127.0.0.1:{port}");
            let mut sink = Command::new(BIN)
                .args([
                    "sink",
                    "--listen",
                    &addr,
                    "--expect",
                    &expect.to_string(),
                    "--idle-seconds",
                    "2",
                ])
                .args(sink_args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                if sink.try_wait().unwrap().is_some() {
                    return None;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Still ours once connected to?
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    return sink.try_wait().unwrap().is_none().then_some((addr, sink));
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the sink did not listen"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
        .expect("no port for the sink");
    for args in sends {
        let out = Command::new(BIN)
            .args(["send", "--to", &addr])
            .args(*args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(report["sent"].as_u64().unwrap() > 0);
    }
    let out = sink.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_record_sent_is_counted_once() {
    let r = run(
        30_000,
        &[
            &["--count", "10000"],
            &[
                "--count",
                "10000",
                "--start",
                "10000",
                "--octet-counting",
                "--format",
                "rfc3164",
            ],
            &["--count", "10000", "--start", "20000", "--rate", "50000"],
        ],
    );
    assert_eq!(
        (
            r["distinct"].as_u64(),
            r["lost"].as_u64(),
            r["duplicates"].as_u64()
        ),
        (Some(30_000), Some(0), Some(0)),
        "{r}"
    );
}

#[test]
fn gaps_and_duplicates_are_reported() {
    let r = run(
        100,
        &[
            &["--count", "50"],
            &["--count", "40", "--start", "60"],
            &["--count", "5", "--start", "10"],
        ],
    );
    assert_eq!(r["distinct"], 90, "{r}");
    assert_eq!(r["lost"], 10, "{r}");
    assert_eq!(r["duplicates"], 5, "{r}");
    assert_eq!(r["first_missing"][0], 50, "{r}");
}

#[test]
fn a_stalled_sink_stops_reading_then_gets_everything() {
    let begun = std::time::Instant::now();
    let r = run_with(
        20_000,
        // Longer than the sink's idle timeout (2 s): a stall is not idleness.
        &["--stall-after", "1000", "--stall-seconds", "3"],
        &[&["--count", "20000"]],
    );
    assert_eq!(
        (r["distinct"].as_u64(), r["lost"].as_u64()),
        (Some(20_000), Some(0)),
        "{r}"
    );
    assert!(begun.elapsed() >= std::time::Duration::from_secs(3), "{r}");
    assert!(r["seconds"].as_f64().unwrap() >= 3.0, "{r}");
}

fn load(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn written_files_are_counted_with_their_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let f = file.to_str().unwrap();
    let w = load(&["write", "--file", f, "--count", "3000", "--rate", "100000"]);
    assert_eq!(w["written"], 3000);
    // The first ten again: duplicates.
    load(&["write", "--file", f, "--count", "10"]);
    let missing = dir.path().join("not-there.log");
    let r = load(&[
        "count",
        "--file",
        f,
        "--file",
        missing.to_str().unwrap(),
        "--expect",
        "3001",
    ]);
    assert_eq!(r["distinct"], 3000, "{r}");
    assert_eq!(r["duplicates"], 10, "{r}");
    assert_eq!(r["lost"], 1, "{r}");
    assert_eq!(r["first_missing"][0], 3000, "{r}");
}

#[test]
fn a_full_datagram_socket_refuses_nonblocking_sends_and_they_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    // Bound and never read: its queue fills.
    let _sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let to = format!("unix://{}", path.display());
    let r = load(&["send", "--to", &to, "--count", "5000", "--nonblocking"]);
    let (sent, refused) = (r["sent"].as_u64().unwrap(), r["refused"].as_u64().unwrap());
    assert_eq!(sent + refused, 5000, "{r}");
    assert!(refused > 0 && sent > 0, "{r}");
}
