//! A process SIGKILLed in the middle of logging: its table, read afterwards by another
//! process, holds every entry the child reported as written, whole, and no torn or mixed
//! entry; a restarted writer marks the half-written slots torn and continues each lane's
//! sequence. Four writer threads on three lanes: two threads in lanes of their own, two
//! sharing lane 0, so both protocols are killed mid-write.
//!
//! The child is this test binary run again with `EDGELOG_TABLE_CHILD` set (see `child_writer`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgelog_core::Level;
use edgelog_core::table::args::{Arg, ArgWriter, decode};
use edgelog_core::table::{Slot, TableConfig, TableReader, TableWriter};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 100_000;

fn config() -> TableConfig {
    TableConfig {
        capacity: 1 << 18,
        slot_size: 64,
        lanes: 3,
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
                    let at = w.append(i as i64, t as u32, Level::Notice, 0, a.as_bytes());
                    // Report every 16th entry: the child spends its time appending, so the
                    // kill lands inside an append far more often than inside a print.
                    if let Some(at) = at.filter(|_| i % 16 == 0) {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "W {} {} {t} {i}", at.lane, at.seq);
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
            if let [lane, seq, t, i] = nums[..] {
                reported.push((lane as u32, seq, t, i));
            }
        }
        reported
    });
    // Kill at an arbitrary moment once the child is well into its work.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TableReader::open(&path).is_ok_and(|r| r.entries() > 20_000) {
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
    let check = |lane: u32, seq: u64| -> Option<(u64, u64)> {
        let Slot::Entry(e) = r.read(lane, seq) else {
            return None;
        };
        let a: Vec<Arg<'_>> = decode(&e.args).collect();
        let [Arg::U64(t), Arg::U64(i), Arg::U64(c)] = a[..] else {
            panic!("entry {lane}/{seq} is mixed: {a:?}")
        };
        assert_eq!(
            c,
            t.wrapping_mul(0x9e37_79b9) ^ i,
            "entry {lane}/{seq} is mixed"
        );
        assert_eq!(
            (e.log_id as u64, e.time.as_unix_nanos() as u64),
            (t, i),
            "entry {lane}/{seq}"
        );
        Some((t, i))
    };
    for &(lane, seq, t, i) in &reported {
        assert_eq!(
            check(lane, seq),
            Some((t, i)),
            "reported entry {lane}/{seq} is not intact"
        );
    }
    let lanes_used: std::collections::BTreeSet<u32> = reported.iter().map(|r| r.0).collect();
    assert!(lanes_used.len() >= 2, "lanes written: {lanes_used:?}");
    let mut busy = 0;
    for lane in r.lanes() {
        // Up to the head itself: an own-lane writer marks its slot busy before it moves the
        // head, so one that died mid-entry left the slot at its head busy.
        for seq in r.oldest(lane)..=r.head(lane) {
            match r.read(lane, seq) {
                Slot::Entry(_) => {
                    check(lane, seq);
                }
                Slot::Busy => busy += 1,
                Slot::Missing | Slot::Torn | Slot::Overwritten => {}
            }
        }
    }
    assert!(
        busy <= THREADS,
        "{busy} slots half-written by {THREADS} threads"
    );
    eprintln!(
        "killed with {} entries in lanes {lanes_used:?}, {busy} slots half-written",
        r.entries()
    );

    // Restart: half-written slots become torn, each lane's sequence continues, history stays.
    let heads: Vec<u64> = r.lanes().map(|l| r.head(l)).collect();
    let w = TableWriter::open(&path, &config()).unwrap();
    assert_eq!(w.counters().torn, busy);
    for lane in r.lanes() {
        assert!((r.oldest(lane)..r.head(lane)).all(|s| r.read(lane, s) != Slot::Busy));
    }
    let at = w.append(0, 9, Level::Notice, 0, &args(9, 0)).unwrap();
    assert_eq!(at.seq, heads[at.lane as usize]);
    let (lane, seq, t, i) = reported[0];
    assert_eq!(check(lane, seq), Some((t, i)));
}
