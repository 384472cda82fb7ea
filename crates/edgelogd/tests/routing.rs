//! Routing by level and match, and the limits a TCP source keeps: connections, frame size,
//! idle time.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{Daemon, free_port, seqs};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn each_destination_gets_what_its_level_and_match_want() {
    let d = Daemon::start(Some(
        r#"
[sources.devlog]
type = "unix_datagram"
path = "log.sock"

[destinations.all]
type = "stdout"
format = "json"

[destinations.auth_warnings]
type = "file_store"
path = "auth"
format = "json"
level = "warning"
match = { facility = ["auth", "authpriv"] }

[destinations.bgpd]
type = "file_store"
path = "bgpd"
format = "json"
match = { app = ["bgpd"] }
"#,
    ));
    let sock = UnixDatagram::unbound().unwrap();
    let path = d.run_dir().join("log.sock");
    // (PRI, tag, seq): auth.err, auth.info, daemon.err from bgpd, authpriv.crit from bgpd
    let sent = [
        (35, "sshd", 0),
        (38, "sshd", 1),
        (27, "bgpd", 2),
        (82, "bgpd", 3),
    ];
    for (pri, tag, seq) in sent {
        sock.send_to(format!("<{pri}>{tag}: event seq={seq}").as_bytes(), &path)
            .unwrap();
    }
    assert_eq!(seqs(&d.records(4, WAIT)), [0, 1, 2, 3]);
    let (counters, dir) = d.stop();
    let stored = |name: &str| {
        let text =
            std::fs::read_to_string(dir.path().join("state").join(name).join("current.jsonl"))
                .unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        seqs(&records)
    };
    assert_eq!(stored("auth"), [0, 3]);
    assert_eq!(stored("bgpd"), [2, 3]);
    assert_eq!(counters["destinations"]["all"]["written"], 4);
    assert_eq!(counters["destinations"]["auth_warnings"]["written"], 2);
}

#[test]
fn tcp_limits_connections_frame_size_and_idle_time() {
    let port = free_port();
    let d = Daemon::start(Some(&format!(
        r#"
[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:{port}"
max_connections = 1
max_frame = "100B"
idle_timeout = "1s"

[destinations.out]
type = "stdout"
format = "json"
"#
    )));
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.write_all(b"<14>app: first seq=0\n").unwrap();
    assert_eq!(seqs(&d.records(1, WAIT)), [0]);

    // A second connection is closed at once and counted.
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    second.set_read_timeout(Some(WAIT)).unwrap();
    let _ = second.write_all(b"<14>app: refused seq=99\n");
    let mut buf = [0u8; 16];
    assert!(
        matches!(second.read(&mut buf), Ok(0) | Err(_)),
        "second connection stayed open"
    );

    // An oversize frame is cut to max_frame, flagged, and the rest discarded; the stream
    // goes on with the next frame.
    let long = format!("<14>app: long seq=1 {}\n", "x".repeat(300));
    first.write_all(long.as_bytes()).unwrap();
    first.write_all(b"<14>app: after seq=2\n").unwrap();
    let got = d.records(2, WAIT);
    assert_eq!(seqs(&got), [1, 2]);
    assert!(got[0]["message"].as_str().unwrap().len() < 100);
    assert!(
        got[0]["diagnostics"]
            .to_string()
            .contains("frame_truncated"),
        "{}",
        got[0]
    );

    // An idle connection is closed after idle_timeout.
    first.set_read_timeout(Some(WAIT)).unwrap();
    let started = Instant::now();
    assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(10));

    let (counters, _) = d.stop();
    let tcp = &counters["sources"]["tcp"];
    assert_eq!(tcp["dropped"]["connection_limit"], 1, "{tcp}");
    assert_eq!(tcp["truncated"], 1, "{tcp}");
    assert!(tcp["discarded_bytes"].as_u64().unwrap() > 200, "{tcp}");
    assert_eq!(tcp["connections"], 0, "{tcp}");
}

#[test]
fn the_daemon_tables_are_a_destination_with_their_own_level_and_match() {
    let config = |tables: &str| {
        format!(
            "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n\
             [destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n\n[tables]\n{tables}\n"
        )
    };
    let d = Daemon::start(Some(&config(
        "level = \"warning\"\nmatch = { app = [\"bgpd\", \"sshd\"] }",
    )));
    let sock = UnixDatagram::unbound().unwrap();
    let path = d.run_dir().join("log.sock");
    let send = |seqs: std::ops::Range<u64>| {
        for seq in seqs {
            // Per four: bgpd err, bgpd info, sshd warning, cron err.
            let (pri, tag) =
                [(27, "bgpd"), (30, "bgpd"), (36, "sshd"), (75, "cron")][seq as usize % 4];
            sock.send_to(format!("<{pri}>{tag}: event seq={seq}").as_bytes(), &path)
                .unwrap();
        }
    };
    send(0..8);
    assert_eq!(seqs(&d.records(8, WAIT)).len(), 8);
    // The tables took the warnings and worse from bgpd and sshd: 0, 2, 4, 6.
    d.wait_for_counters(WAIT, |c| c["destinations"]["tables"]["written"] == 4);
    let c = d.counters();
    assert_eq!(c["destinations"]["tables"]["written"], 4, "{c}");
    assert_eq!(c["tables"]["written"], 4, "{c}");
    assert_eq!(c["destinations"]["out"]["written"], 8, "{c}");

    // A reload applies a new [tables] at once: now everything.
    std::fs::write(d.config_path(), config("")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for_counters(WAIT, |_| {
        d.said("reload: destination \"tables\" started") > 0
    });
    send(8..16);
    d.wait_for_counters(WAIT, |c| c["destinations"]["out"]["written"] == 16);
    d.wait_for_counters(WAIT, |c| c["tables"]["written"] == 12);
    let (c, _) = d.stop();
    assert_eq!(c["tables"]["written"], 12, "{c}");
}
