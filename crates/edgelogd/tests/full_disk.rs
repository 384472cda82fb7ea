//! Resources running out: a full run directory (tmpfs) costs the daemon's tables their
//! entries, never the daemon or a record; a full state directory pauses what can wait, counts
//! what cannot (`disk_full`), and recovers by itself. The tests mount a small tmpfs (CI runs
//! as root).

mod common;

#[path = "../../edgelog-core/tests/support/tmpfs.rs"]
mod tmpfs;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use common::{Daemon, free_port};
use tmpfs::Tmpfs;

fn send_tcp(port: u16, from: u64, n: u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = Vec::with_capacity(1 << 20);
    for seq in from..from + n {
        writeln!(
            buf,
            "<13>1 2026-12-02T10:00:00Z h app{} - - - seq={seq}",
            seq % 4
        )
        .unwrap();
        if buf.len() > (1 << 20) - 200 {
            s.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    s.write_all(&buf).unwrap();
}

/// The distinct `seq=N` numbers in the store's current file, in order.
fn store_seqs(dir: &std::path::Path) -> Vec<u64> {
    let store = std::fs::read_to_string(dir.join("state/store/current.log")).unwrap();
    let mut seqs: Vec<u64> = store
        .lines()
        .filter_map(|l| l.rsplit_once("seq=")?.1.parse().ok())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn a_full_run_directory_costs_the_daemon_tables_never_a_record() {
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fs.path(), dir.path().join("run")).unwrap();
    let filler = fs.fill(0);
    let port = free_port();
    let config = format!(
        r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[tables]
capacity = 200

[destinations.store]
type = "file_store"
max_file_size = "1GiB"
compress = false
"#
    );
    let d = Daemon::start_in(dir, Some(&config), std::process::Stdio::null());

    const N: u64 = 200_000;
    send_tcp(port, 0, N);
    d.wait_for_counters(Duration::from_secs(60), |c| {
        n(&c["destinations"]["store"]["written"]) == N
    });
    let c = d.counters();
    assert_eq!(n(&c["tables"]["dropped"]["no_space"]), N, "{c}");
    assert_eq!(n(&c["tables"]["written"]), 0, "{c}");
    assert!(
        d.stderr().matches("daemon tables: ").count() == 1,
        "said once:\n{}",
        d.stderr()
    );

    // Space returns: the tables are made, after the back-off, and written from then on.
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    send_tcp(port, N, 1000);
    d.wait_for_counters(Duration::from_secs(30), |c| {
        n(&c["destinations"]["store"]["written"]) == N + 1000
    });
    let c = d.counters();
    let tables = &c["tables"];
    assert_eq!(
        n(&tables["written"]) + n(&tables["dropped"]["no_space"]),
        N + 1000,
        "{c}"
    );
    assert!(n(&tables["written"]) > 0, "{c}");

    let (counters, dir) = d.stop();
    let seqs = store_seqs(dir.path());
    assert_eq!(seqs.len() as u64, N + 1000, "{counters}");
    assert_eq!(seqs.last(), Some(&(N + 999)));
}

#[test]
fn a_full_state_directory_pauses_a_file_source_and_loses_nothing() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fs.path(), dir.path().join("state")).unwrap();
    // The file the source reads lives elsewhere; the store and checkpoints are on the tmpfs,
    // which has 1 MiB left.
    let input = dir.path().join("input.log");
    const N: u64 = 100_000;
    let mut text = String::new();
    for seq in 0..N {
        text.push_str(&format!(
            "line with some words to fill the store seq={seq}\n"
        ));
    }
    std::fs::write(&input, text).unwrap();
    let filler = fs.fill(1 << 20);
    let config = format!(
        r#"
[sources.app]
type = "file"
paths = ["{}"]
start_at = "beginning"

[destinations.store]
type = "file_store"
max_file_size = "1GiB"
compress = false
"#,
        input.display()
    );
    let d = Daemon::start_in(dir, Some(&config), std::process::Stdio::null());
    // The disk fills: the destination holds on and says so; nothing is dropped.
    d.wait_for_counters(Duration::from_secs(30), |c| {
        c["destinations"]["store"]["disk_full"] == true
    });
    let c = d.counters();
    assert_eq!(
        n(&c["destinations"]["store"]["dropped"]["write_error"]),
        0,
        "{c}"
    );
    assert_eq!(d.said("disk full"), 1, "{}", d.stderr());
    let (_, status) = common::control_call(&d.run_dir(), "GET", "/v1/status");
    assert!(
        status.contains(r#""degraded":["destination store: disk full, holding records"]"#),
        "{status}"
    );
    // Room again: it goes on by itself, to the last line.
    std::fs::remove_file(&filler).unwrap();
    d.wait_for_counters(Duration::from_secs(60), |c| {
        n(&c["destinations"]["store"]["written"]) == N
    });
    let c = d.counters();
    assert_eq!(c["destinations"]["store"]["disk_full"], false, "{c}");
    let (_, dir) = d.stop();
    assert_eq!(store_seqs(dir.path()).len() as u64, N);
}

#[test]
fn a_full_state_directory_with_a_disk_queue_to_a_down_receiver_loses_nothing() {
    // The state directory is a 12 MiB tmpfs holding the store and a disk queue whose
    // receiver is down: 100,000 file records (about 8 MB in the store, 6 MB in the queue)
    // fill it. The file source pauses, its checkpoint never passes what is not durable, an
    // application's datagrams are dropped counted as `disk_full`, and once the receiver is
    // back and drains the queue, the room comes back and everything arrives.
    let Some(fs) = Tmpfs::mount("12m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fs.path(), dir.path().join("state")).unwrap();
    let input = dir.path().join("input.log");
    const N: u64 = 100_000;
    let text: String = (0..N)
        .map(|seq| format!("the file's line, record seq={seq}\n"))
        .collect();
    std::fs::write(&input, text).unwrap();
    let central = free_port();
    let config = format!(
        r#"
[sources.app]
type = "file"
paths = ["{}"]
start_at = "beginning"

[sources.devlog]
type = "unix_datagram"
path = "log.sock"

[destinations.store]
type = "file_store"
max_file_size = "1GiB"
compress = false

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
max_backoff = "200ms"
queue = {{ kind = "disk", max_bytes = "64MiB" }}
"#,
        input.display()
    );
    let d = Daemon::start_in(dir, Some(&config), std::process::Stdio::null());
    d.wait_for_counters(Duration::from_secs(60), |c| {
        c["destinations"]["central"]["disk_full"] == true
            || c["destinations"]["store"]["disk_full"] == true
    });
    // An application logs meanwhile: never blocked; what cannot be taken is counted for
    // the full disk.
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sock.connect(d.run_dir().join("log.sock")).unwrap();
    const DGRAMS: u64 = 10_000;
    for seq in 0..DGRAMS {
        sock.send(format!("<13>Dec  2 10:00:00 dgapp: dg seq={seq}").as_bytes())
            .unwrap();
    }
    d.wait_for_counters(Duration::from_secs(10), |c| {
        n(&c["sources"]["devlog"]["received"]) == DGRAMS
    });
    let c = d.counters();
    let dg_dropped = n(&c["sources"]["devlog"]["dropped"]["disk_full"]);
    assert!(dg_dropped > 0, "{c}");
    assert_eq!(
        n(&c["sources"]["devlog"]["dropped"]["queue_full"]),
        0,
        "{c}"
    );
    for dest in ["store", "central"] {
        assert_eq!(
            n(&c["destinations"][dest]["dropped"]["write_error"]),
            0,
            "{c}"
        );
    }
    let (_, status) = common::control_call(&d.run_dir(), "GET", "/v1/status");
    assert!(status.contains("disk full, holding records"), "{status}");

    // The receiver comes back: it drains the queue, which frees the room, and everything
    // goes on by itself.
    let rx = common::Central::start(central);
    let got = rx.distinct(N, Duration::from_secs(60));
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    d.wait_for_counters(Duration::from_secs(60), |c| {
        n(&c["destinations"]["store"]["written"]) == N + DGRAMS - dg_dropped
    });
    let c = d.counters();
    assert_eq!(c["destinations"]["store"]["disk_full"], false, "{c}");
    assert_eq!(c["destinations"]["central"]["disk_full"], false, "{c}");
    let (_, dir) = d.stop();
    let store = std::fs::read_to_string(dir.path().join("state/store/current.log")).unwrap();
    let file_lines = store.lines().filter(|l| l.contains(" record seq=")).count();
    assert_eq!(file_lines as u64, N);
}
