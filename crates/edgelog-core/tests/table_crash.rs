//! A process SIGKILLed in the middle of logging: its table, read afterwards by another
//! process, holds every entry the child reported as written, whole, and no torn or mixed
//! entry; a restarted writer marks the half-written slots torn and continues the sequence.
//!
//! The child is this test binary run again with `EDGELOG_TABLE_CHILD` set (see `child_writer`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgelog_core::Level;
use edgelog_core::table::args::{Arg, ArgWriter, decode};
use edgelog_core::table::{Slot, TableConfig, TableReader, TableWriter};

const THREADS: u64 = 2;
const PER_THREAD: u64 = 100_000;

fn config() -> TableConfig {
    TableConfig {
        capacity: 1 << 18,
        slot_size: 64,
        ..TableConfig::new("crashd", "core")
    }
}

fn args(t: u64, i: u64) -> Vec<u8> {
    let mut buf = [0u8; 40];
    let mut a = ArgWriter::new(&mut buf);
    a.u64(t);
    a.u64(i);
    a.u64(t.wrapping_mul(0x9e37_79b9) ^ i);
    a.as_bytes().to_vec()
}

/// Not a test of its own: the child process's body. Does nothing unless the parent set
/// `EDGELOG_TABLE_CHILD` to a table path.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var("EDGELOG_TABLE_CHILD") else {
        return;
    };
    let w = std::sync::Arc::new(TableWriter::open(path.as_ref(), &config()).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let w = std::sync::Arc::clone(&w);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut buf = [0u8; 40];
                    let mut a = ArgWriter::new(&mut buf);
                    a.u64(t);
                    a.u64(i);
                    a.u64(t.wrapping_mul(0x9e37_79b9) ^ i);
                    let seq = w.append(i as i64, t as u32, Level::Notice, 0, a.as_bytes());
                    // Report every 16th entry: the child spends its time appending, so the
                    // kill lands inside an append far more often than inside a print.
                    if let Some(seq) = seq.filter(|_| i % 16 == 0) {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "W {seq} {t} {i}");
                        let _ = out.flush();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    // Wait to be killed; the parent kills long before this ends.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_writer_killed_mid_logging_leaves_every_reported_entry_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.crashd.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("EDGELOG_TABLE_CHILD", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Every line the child printed is an entry it reported as written, even lines read after
    // the kill: drain them all, on a thread, until the pipe closes.
    let stdout = child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut reported = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut words = line.split(' ');
            if words.next() != Some("W") {
                continue;
            }
            let nums: Vec<u64> = words.filter_map(|p| p.parse().ok()).collect();
            if let [seq, t, i] = nums[..] {
                reported.push((seq, t, i));
            }
        }
        reported
    });
    // Kill at an arbitrary moment once the child is well into its work.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TableReader::open(&path).is_ok_and(|r| r.head() > 20_000) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let jitter = clock.subsec_nanos() % 2_000;
    std::thread::sleep(Duration::from_micros(u64::from(jitter)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let reported = drain.join().unwrap();
    assert!(
        reported.len() >= 1_000,
        "the child reported only {} entries",
        reported.len()
    );

    let r = TableReader::open(&path).unwrap();
    let check = |seq: u64| -> Option<(u64, u64)> {
        let Slot::Entry(e) = r.read(seq) else {
            return None;
        };
        let a: Vec<Arg<'_>> = decode(&e.args).collect();
        let [Arg::U64(t), Arg::U64(i), Arg::U64(c)] = a[..] else {
            panic!("entry {seq} is mixed: {a:?}")
        };
        assert_eq!(c, t.wrapping_mul(0x9e37_79b9) ^ i, "entry {seq} is mixed");
        assert_eq!(
            (e.log_id as u64, e.time.as_unix_nanos() as u64),
            (t, i),
            "entry {seq}"
        );
        Some((t, i))
    };
    for &(seq, t, i) in &reported {
        assert_eq!(
            check(seq),
            Some((t, i)),
            "reported entry {seq} is not intact"
        );
    }
    let mut busy = 0;
    for seq in r.oldest()..r.head() {
        match r.read(seq) {
            Slot::Entry(_) => {
                check(seq);
            }
            Slot::Busy => busy += 1,
            Slot::Missing | Slot::Torn | Slot::Overwritten => {}
        }
    }
    assert!(
        busy <= THREADS,
        "{busy} slots half-written by {THREADS} threads"
    );
    eprintln!("killed at head {}, {busy} slots half-written", r.head());

    // Restart: half-written slots become torn, the sequence continues, history stays.
    let head = r.head();
    let w = TableWriter::open(&path, &config()).unwrap();
    assert_eq!(w.counters().torn, busy);
    assert!((r.oldest()..r.head()).all(|s| r.read(s) != Slot::Busy));
    let seq = w.append(0, 9, Level::Notice, 0, &args(9, 0)).unwrap();
    assert_eq!(seq, head);
    assert_eq!(check(reported[0].0), Some((reported[0].1, reported[0].2)));
}
