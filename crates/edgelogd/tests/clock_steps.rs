//! The daemon through clock steps: edgelogd runs under libfaketime (Debian's `faketime`,
//! installed by the test command) and its real-time clock is stepped a day forward and two
//! days back while it relays paced TCP records to a receiver and rotates its store by age.
//! Every duration it measures is on the monotonic clock, so no record is lost or delayed past
//! the batch wait, and the store rotates by age as before — no stall, no burst of rotations.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Daemon, free_port};

#[path = "../../edgelog-core/tests/support/faketime.rs"]
mod faketime;
use faketime::{LIBFAKETIME, set_offset};

#[test]
fn relaying_through_clock_steps_loses_and_delays_nothing() {
    if !faketime::available() {
        return;
    }
    // The receiver, in this process (real clock): when each sequence number arrived.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let out_port = listener.local_addr().unwrap().port();
    let (arrived_tx, arrived) = mpsc::channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        for line in BufReader::new(conn).lines() {
            let Ok(line) = line else { break };
            if let Some(seq) = line.rsplit_once("seq=").and_then(|(_, n)| n.parse().ok()) {
                let _ = arrived_tx.send((seq, Instant::now()));
            }
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let offsets = dir.path().join("faketime");
    set_offset(&offsets, "+0");
    let in_port = free_port();
    let config = format!(
        r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{in_port}"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{out_port}"
framing = "lf"
batch = {{ max_records = 100, max_wait = "200ms" }}

[destinations.store]
type = "file_store"
max_file_age = "2s"
compress = false
"#
    );
    let d = Daemon::start_with_env(
        dir,
        Some(&config),
        std::process::Stdio::null(),
        &[
            ("LD_PRELOAD", LIBFAKETIME.as_ref()),
            ("FAKETIME_TIMESTAMP_FILE", offsets.as_os_str()),
            ("FAKETIME_NO_CACHE", "1".as_ref()),
            ("DONT_FAKE_MONOTONIC", "1".as_ref()),
        ],
    );

    // 100 records a second for 6 s; a day forward after 2 s, two days back after 4 s.
    const N: u64 = 600;
    let mut sender = TcpStream::connect(("127.0.0.1", in_port)).unwrap();
    let start = Instant::now();
    let mut sent = Vec::new();
    for seq in 0..N {
        if seq == 200 {
            set_offset(&offsets, "+1d");
        }
        if seq == 400 {
            set_offset(&offsets, "-1d");
        }
        let due = start + Duration::from_millis(10 * seq);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        writeln!(sender, "<13>1 - h app - - - seq={seq}").unwrap();
        sent.push(Instant::now());
    }
    let mut got = vec![None; N as usize];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((seq, at)) = arrived.recv_timeout(left) else {
            break;
        };
        got[seq as usize].get_or_insert(at);
    }
    let missing: Vec<usize> = (0..N as usize).filter(|&i| got[i].is_none()).collect();
    assert!(missing.is_empty(), "never arrived: {missing:?}");
    // Delayed by at most the batch wait, with room for a loaded machine.
    let worst = (0..N as usize)
        .map(|i| got[i].unwrap().saturating_duration_since(sent[i]))
        .max()
        .unwrap();
    assert!(
        worst < Duration::from_millis(1200),
        "a record took {worst:?}"
    );

    let (_, dir) = d.stop();
    // About three rotations by age in 6 s: no burst when the clock jumped a day either way.
    let closed = std::fs::read_dir(dir.path().join("state/store"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with("current"))
        })
        .count();
    assert!(
        (1..=5).contains(&closed),
        "{closed} files rotated by age in 6 s"
    );
    let mut seqs: Vec<u64> = std::fs::read_dir(dir.path().join("state/store"))
        .unwrap()
        .flat_map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| l.rsplit_once("seq=")?.1.parse().ok())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, N, "the store has every record");
}
