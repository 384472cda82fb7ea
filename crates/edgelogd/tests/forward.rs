//! Network destinations against a real `rsyslogd` receiver: TCP (RFC 5424, octet counting, and
//! RFC 3164 with LF framing), UDP and RELP in both formats, every sequence number checked; a receiver that is not
//! there yet gets everything the disk queue kept once it comes up.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Daemon, Rsyslogd, free_port, have};

/// An `rsyslogd` receiving on `port` (TCP and UDP) and writing one line per message:
/// `hostname|app-name|severity|msg`.
struct Receiver {
    rsyslogd: Rsyslogd,
    out: PathBuf,
    work: tempfile::TempDir,
}

impl Receiver {
    fn start(port: u16) -> Receiver {
        Receiver::start_in(tempfile::tempdir().unwrap(), port, false)
    }

    /// An `rsyslogd` with `imrelp` on `port`, writing into `work` (kept across restarts).
    fn start_in(work: tempfile::TempDir, port: u16, relp: bool) -> Receiver {
        let out = work.path().join("received.log");
        let inputs = if relp {
            format!(
                r#"module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="{port}" ruleset="in")"#
            )
        } else {
            format!(
                r#"module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="in")
input(type="imudp" address="127.0.0.1" port="{port}" ruleset="in")"#
            )
        };
        let conf = format!(
            r#"
global(workDirectory="{work}")
template(name="fields" type="string" string="%hostname%|%app-name%|%syslogseverity-text%|%msg%\n")
ruleset(name="in") {{ action(type="omfile" file="{out}" template="fields" flushOnTXEnd="on" asyncWriting="off") }}
{inputs}
"#,
            work = work.path().display(),
            out = out.display()
        );
        let rsyslogd = Rsyslogd::start(work.path(), &conf);
        // Ready when the TCP port answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Receiver {
            rsyslogd,
            out,
            work,
        }
    }

    /// The received lines once `n` arrived (or the time is up).
    fn lines(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the receiver the way an operator does (SIGTERM: it finishes what it took) and
    /// hands back its directory.
    fn stop(self) -> tempfile::TempDir {
        self.rsyslogd.terminate();
        self.work
    }
}

fn seq_of(line: &str) -> Option<u64> {
    let at = line.find("seq=")?;
    line[at + 4..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn send(sock: &Path, from: u64, n: u64) {
    let s = UnixDatagram::unbound().unwrap();
    for i in from..from + n {
        s.send_to(
            format!("<11>forwardtest[42]: forwarded seq={i}").as_bytes(),
            sock,
        )
        .unwrap();
    }
}

fn config(dest: &str) -> String {
    format!(
        "[device]\nhostname = \"leaf-01\"\n\n[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n{dest}"
    )
}

fn check(lines: &[String], n: u64, severity: &str) {
    let mut seqs: Vec<u64> = lines.iter().filter_map(|l| seq_of(l)).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (0..n).collect::<Vec<_>>(),
        "lost or duplicated:\n{}",
        lines.join("\n")
    );
    for l in lines {
        let f: Vec<&str> = l.splitn(4, '|').collect();
        assert_eq!(f[0], "leaf-01", "{l}");
        assert_eq!(f[1], "forwardtest", "{l}");
        assert_eq!(f[2], severity, "{l}");
        assert!(f[3].trim_start().starts_with("forwarded seq="), "{l}");
    }
}

#[test]
fn syslog_tcp_udp_and_relp_into_rsyslog() {
    if !have("rsyslogd") || !have_imrelp() {
        return;
    }
    for (ty, format, framing) in [
        ("syslog_tcp", "rfc5424", "octet-counting"),
        ("syslog_tcp", "rfc3164", "lf"),
        ("syslog_udp", "rfc3164", "lf"),
        ("syslog_udp", "rfc5424", "lf"),
        ("relp", "rfc5424", "-"),
        ("relp", "rfc3164", "-"),
    ] {
        let port = free_port();
        let rx = Receiver::start_in(tempfile::tempdir().unwrap(), port, ty == "relp");
        let framing_key = if ty == "syslog_tcp" {
            format!("framing = \"{framing}\"\n")
        } else {
            String::new()
        };
        let d = Daemon::start(Some(&config(&format!(
            "[destinations.central]\ntype = \"{ty}\"\naddress = \"127.0.0.1:{port}\"\nformat = \"{format}\"\n{framing_key}"
        ))));
        assert!(
            d.stderr().contains(&format!("127.0.0.1:{port} ({format}")),
            "{}",
            d.stderr()
        );
        const N: u64 = 500;
        // UDP has no back-pressure: send in steps the receiver can keep up with.
        for k in 0..10 {
            send(&d.run_dir().join("log.sock"), k * N / 10, N / 10);
            if ty == "syslog_udp" {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let lines = rx.lines(N as usize, Duration::from_secs(20));
        check(&lines, N, "err");
        let (counters, _) = d.stop();
        let net = &counters["destinations"]["central"]["network"];
        assert_eq!(net["acknowledged"], N, "{ty} {format}: {counters}");
        assert_eq!(net["queued"]["records"], 0, "{counters}");
        assert_eq!(net["up"], true);
    }
}

#[test]
fn a_receiver_that_comes_late_gets_what_the_disk_queue_kept() {
    if !have("rsyslogd") {
        return;
    }
    let port = free_port();
    let d = Daemon::start(Some(&config(&format!(
        "[destinations.central]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\nqueue = {{ kind = \"disk\", fsync = \"always\" }}\n"
    ))));
    const N: u64 = 300;
    send(&d.run_dir().join("log.sock"), 0, N);
    // Nobody listens: the records wait in the disk queue, the receiver is reported down.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.stderr().contains("receiver down") {
        assert!(Instant::now() < deadline, "{}", d.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let queue_dir = d.state_dir().join("queues/central");
    assert!(queue_dir.join("cursors/send").exists());
    std::thread::sleep(Duration::from_millis(500));
    let rx = Receiver::start(port);
    let lines = rx.lines(N as usize, Duration::from_secs(40));
    check(&lines, N, "err");
    let (counters, _) = d.stop();
    let c = &counters["destinations"]["central"];
    assert!(c["network"]["retried"].as_u64().unwrap() > 0, "{c}");
    assert!(
        c["last_error"].as_str().unwrap().contains("127.0.0.1"),
        "{c}"
    );
    assert_eq!(c["network"]["acknowledged"], N);
}

#[test]
fn with_block_a_stalled_receiver_backs_up_the_pipeline_and_datagrams_are_dropped_counted() {
    // A receiver that accepts connections into its backlog and never reads.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dest = stalled.local_addr().unwrap().port();
    let port = free_port();
    let d = Daemon::start(Some(&format!(
        r#"
[sources.udp]
type = "syslog_udp"
address = "127.0.0.1:{port}"
receive_buffer = "64KiB"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{dest}"
queue = {{ kind = "memory", max_records = 100, when_full = "block" }}
"#
    )));
    // Far more than the kernel's buffers towards the receiver hold, paced so the source can
    // take it while the path is open: the queue fills, then the pipeline backs up.
    const N: u64 = 30_000;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let line = format!("<14>1 - h app - - - {}", "x".repeat(1000));
    for i in 0..N {
        udp.send_to(line.as_bytes(), ("127.0.0.1", port)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Stopping with a receiver that takes nothing still ends, within the grace periods.
    let started = Instant::now();
    let (counters, _) = d.stop();
    assert!(started.elapsed() < Duration::from_secs(20));
    let src = &counters["sources"]["udp"];
    let received = src["received"].as_u64().unwrap();
    let overflow = src["dropped"]["socket_overflow"].as_u64().unwrap_or(0);
    // A datagram source is never held up by a blocked pipeline: it drops what the pipeline
    // cannot take (queue_full) and keeps reading.
    let queue_full = src["dropped"]["queue_full"].as_u64().unwrap_or(0);
    assert!(queue_full > 0, "the pipeline never backed up: {counters}");
    assert_eq!(
        received + overflow,
        N,
        "a datagram went missing uncounted: {counters}"
    );
    // Everything the source took and did not drop reached the destination, and the
    // destination accounts for all of it: taken into the receiver's buffers, still queued at
    // exit, or dropped at stop.
    let dst = &counters["destinations"]["central"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert_eq!(n(&dst["written"]) + queue_full, received, "{counters}");
    let net = &dst["network"];
    assert_eq!(
        n(&net["acknowledged"]) + n(&net["queued"]["records"]) + n(&dst["dropped"]["shutdown"]),
        received - queue_full,
        "{counters}"
    );
    assert!(
        n(&dst["dropped"]["shutdown"]) > 0,
        "never backed up: {counters}"
    );
    // What the memory queue still held at exit is counted as dropped, not left as queued.
    assert_eq!(n(&net["queued"]["records"]), 0, "{counters}");
    drop(stalled);
}

fn have_imrelp() -> bool {
    common::have_rsyslog_module("imrelp", "rsyslog-relp")
}

#[test]
fn relp_into_rsyslog_survives_a_receiver_outage_without_loss() {
    if !have("rsyslogd") || !have_imrelp() {
        return;
    }
    let port = free_port();
    let rx = Receiver::start_in(tempfile::tempdir().unwrap(), port, true);
    let d = Daemon::start(Some(&config(&format!(
        "[destinations.central]\ntype = \"relp\"\naddress = \"127.0.0.1:{port}\"\nmax_backoff = \"1s\"\nqueue = {{ kind = \"disk\" }}\n"
    ))));
    assert!(
        d.stderr().contains(&format!("relp 127.0.0.1:{port}")),
        "{}",
        d.stderr()
    );
    let sock = d.run_dir().join("log.sock");
    const N: u64 = 3000;
    // A steady stream; the receiver is stopped a third of the way in and is away for 30 s.
    let sender = {
        let sock = sock.clone();
        std::thread::spawn(move || {
            for k in 0..30 {
                send(&sock, k * N / 30, N / 30);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    let work = rx.stop();
    std::thread::sleep(Duration::from_secs(30));
    sender.join().unwrap();
    let rx = Receiver::start_in(work, port, true);
    let lines = rx.lines(N as usize, Duration::from_secs(60));
    let mut seqs: Vec<u64> = lines.iter().filter_map(|l| seq_of(l)).collect();
    let total = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs,
        (0..N).collect::<Vec<_>>(),
        "records lost across the outage"
    );
    // RELP's at-least-once: what the receiver took but had not answered, at most a window.
    assert!(
        total - seqs.len() <= 128,
        "{} duplicates",
        total - seqs.len()
    );
    let (counters, _) = d.stop();
    let c = &counters["destinations"]["central"];
    assert!(c["network"]["retried"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(c["network"]["queued"]["records"], 0, "{c}");
}

#[test]
fn sigkill_mid_stream_loses_nothing_between_a_file_and_the_receiver() {
    if !have("rsyslogd") || !have_imrelp() {
        return;
    }
    let port = free_port();
    let rx = Receiver::start_in(tempfile::tempdir().unwrap(), port, true);
    let files = tempfile::tempdir().unwrap();
    let log = files.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = format!(
        r#"
[device]
hostname = "leaf-01"

[sources.app]
type = "file"
paths = ["{}"]
app_name = "forwardtest"
start_at = "beginning"
poll_interval = "50ms"

[destinations.central]
type = "relp"
address = "127.0.0.1:{port}"
format = "rfc3164"
queue = {{ kind = "disk", fsync = "always" }}
"#,
        log.display()
    );
    const N: u64 = 4000;
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                common::append(&log, &format!("<11>forwardtest: forwarded seq={i}\n"));
                if i % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    let d = Daemon::start(Some(&cfg));
    std::thread::sleep(Duration::from_millis(800));
    let state = d.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let d = Daemon::start_in(state, Some(&cfg), Stdio::null());
    writer.join().unwrap();
    // Wait for every distinct record (duplicates make the line count run ahead).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (total, seqs) = loop {
        let lines = rx.lines(0, Duration::ZERO);
        let mut seqs: Vec<u64> = lines.iter().filter_map(|l| seq_of(l)).collect();
        let total = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        if seqs.len() as u64 >= N || Instant::now() > deadline {
            break (total, seqs);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let missing: Vec<u64> = (0..N).filter(|s| seqs.binary_search(s).is_err()).collect();
    assert!(missing.is_empty(), "lost across kill -9: {missing:?}");
    // Duplicates: what was durable downstream but not yet checkpointed or answered.
    assert!(
        total - seqs.len() <= 500,
        "{} duplicates",
        total - seqs.len()
    );
    d.stop();
}

#[test]
fn quota_while_the_receiver_is_down_evicts_the_oldest_and_says_how_many() {
    if !have("rsyslogd") || !have_imrelp() {
        return;
    }
    let port = free_port();
    let d = Daemon::start(Some(&config(&format!(
        "[destinations.central]\ntype = \"relp\"\naddress = \"127.0.0.1:{port}\"\nmax_backoff = \"500ms\"\nqueue = {{ kind = \"disk\", max_bytes = \"64KiB\", when_full = \"drop_oldest\" }}\n"
    ))));
    const N: u64 = 2000;
    // Nobody listens: the queue fills and evicts its oldest segments.
    for k in 0..20 {
        send(&d.run_dir().join("log.sock"), k * 100, 100);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let rx = Receiver::start_in(tempfile::tempdir().unwrap(), port, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let mut s: Vec<u64> = rx
            .lines(0, Duration::ZERO)
            .iter()
            .filter_map(|l| seq_of(l))
            .collect();
        s.sort_unstable();
        s.dedup();
        if s.last() == Some(&(N - 1)) || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (counters, _) = d.stop();
    let evicted = counters["destinations"]["central"]["dropped"]["evicted"]
        .as_u64()
        .unwrap();
    assert!(evicted > 0, "{counters}");
    // Exactly the newest records arrived, and the evicted count is the rest.
    assert_eq!(got.first(), Some(&evicted), "{counters}");
    assert_eq!(got.len() as u64, N - evicted, "{counters}");
}

/// One `/dev/log` datagram carrying a newline and a complete RFC 5424 record after it, as a
/// local user can send: it must stay one record on every LF-framed output.
const FORGING: &str = "<13>Dec  2 10:00:00 h app: first line\n<10>1 2026-12-02T10:00:00Z \
                       forged-host sshd 1 - - Accepted password for root from 6.6.6.6";
const FORGED_TEXT: &str = "first line\n<10>1 2026-12-02T10:00:00Z forged-host sshd 1 - - \
                           Accepted password for root from 6.6.6.6";

/// The store's lines once the daemon stopped.
fn store_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("state/store/current.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_newline_in_a_datagram_is_one_record_in_the_store_of_the_embedded_default() {
    let d = Daemon::start(None);
    let s = UnixDatagram::unbound().unwrap();
    s.send_to(FORGING.as_bytes(), d.run_dir().join("log.sock"))
        .unwrap();
    d.wait_for_counters(Duration::from_secs(10), |c| {
        c["destinations"]["store"]["written"] == 1
    });
    let (counters, dir) = d.stop();
    assert_eq!(
        counters["destinations"]["store"]["escaped"], 1,
        "{counters}"
    );
    let lines = store_lines(dir.path());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let (_, msg) = lines[0].split_once(" first line").unwrap();
    assert!(msg.starts_with("#012<10>1 "), "{}", lines[0]);
    let text = format!("first line{msg}");
    let raw =
        edgelog_codec::escape::unescape(text.as_bytes(), edgelog_codec::escape::Escape::Octal);
    assert_eq!(String::from_utf8(raw).unwrap(), FORGED_TEXT);
}

#[test]
fn a_newline_in_a_datagram_is_one_record_at_rsyslog_over_lf_framed_tcp() {
    if !have("rsyslogd") {
        return;
    }
    let port = free_port();
    let rx = Receiver::start(port);
    let d = Daemon::start(Some(&config(&format!(
        "[destinations.central]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         framing = \"lf\"\nformat = \"rfc3164\"\n\n[destinations.store]\ntype = \"file_store\"\n"
    ))));
    let s = UnixDatagram::unbound().unwrap();
    s.send_to(FORGING.as_bytes(), d.run_dir().join("log.sock"))
        .unwrap();
    s.send_to(b"<13>app: after it", d.run_dir().join("log.sock"))
        .unwrap();
    let lines = rx.lines(2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let lines_after = rx.lines(3, Duration::from_millis(10));
    assert_eq!(lines_after.len(), 2, "{lines_after:#?}");
    let f: Vec<&str> = lines[0].splitn(4, '|').collect();
    assert_eq!(&f[..3], ["h", "app", "notice"], "{}", lines[0]);
    let raw = edgelog_codec::escape::unescape(
        f[3].trim_start().as_bytes(),
        edgelog_codec::escape::Escape::Octal,
    );
    assert_eq!(String::from_utf8(raw).unwrap(), FORGED_TEXT);
    assert_eq!(lines[1].rsplit('|').next().map(str::trim), Some("after it"));
    assert!(lines.iter().all(|l| !l.starts_with("forged-host")));
    let (_, dir) = d.stop();
    assert_eq!(store_lines(dir.path()).len(), 2);
    rx.stop();
}
