//! The library's clock through real clock steps: an application (this test binary run again)
//! logs under libfaketime (Debian's `faketime`, installed by the test command) while its
//! real-time clock is stepped from 1970 to now (a box without an RTC meeting NTP), then a day
//! forward, then an hour back. One thread logs at full speed, one paced. Every entry's time is
//! within 2 ms of `CLOCK_REALTIME` read around the event, except in the re-anchor period right
//! after a step (at most a second); re-anchors stay at about one per second per thread; each
//! step is seen once.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edgelog::{Event, Level, Options, event};
use edgelog_core::table::{TableReader, args};

#[path = "../../edgelog-core/tests/support/faketime.rs"]
mod faketime;
use faketime::{LIBFAKETIME, set_offset};

static TICK: Event = Event::new("clock", "tick", "TICK", Level::Error, "{th} {n}");

/// The phases: libfaketime offsets, each held for [`PHASE`]. 20,454 days back is early 1970.
const SCHEDULE: [&str; 4] = ["-20454d", "+0", "+1d", "+23h"];
const PHASE: Duration = Duration::from_millis(1500);
/// After a step, entries may carry the old time line until their thread re-anchors.
const SETTLE_NS: i64 = 1_100_000_000;
const BOUND_NS: i64 = 2_000_000;

fn realtime() -> i64 {
    edgelog_core::Timestamp::now().as_unix_nanos()
}

/// The application; does nothing unless the parent set `EDGELOG_CLOCK_CHILD`.
#[test]
fn child_app() {
    let Ok(dir) = std::env::var("EDGELOG_CLOCK_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let offsets = PathBuf::from(std::env::var("FAKETIME_TIMESTAMP_FILE").unwrap());
    edgelog::init(
        "clockd",
        Options::new()
            .run_dir(dir.join("run"))
            .state_dir(dir.join("state"))
            .capacity(1 << 19)
            .slot_size(64)
            .events(&[&TICK]),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let logger = |th: u64, pace: Option<Duration>| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let before = realtime();
                event!(TICK, th = th, n = n);
                let after = realtime();
                samples.push((th, n, before, after));
                n += 1;
                if let Some(p) = pace {
                    std::thread::sleep(p);
                }
            }
            samples
        })
    };
    let threads = [logger(0, None), logger(1, Some(Duration::from_millis(1)))];
    let mut out = std::fs::File::create(dir.join("samples.txt")).unwrap();
    for (k, spec) in SCHEDULE.iter().enumerate() {
        if k > 0 {
            set_offset(&offsets, spec);
        }
        let (start, at_start) = (realtime(), edgelog::clock_stats());
        std::thread::sleep(PHASE);
        let (end, at_end) = (realtime(), edgelog::clock_stats());
        writeln!(
            out,
            "phase {start} {end} {} {}",
            at_end.reanchors - at_start.reanchors,
            at_end.steps
        )
        .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        for (th, n, before, after) in t.join().unwrap() {
            writeln!(out, "sample {th} {n} {before} {after}").unwrap();
        }
    }
}

#[test]
fn entry_times_stay_within_2ms_of_the_real_time_clock_through_steps() {
    if !faketime::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let offsets = dir.path().join("faketime");
    set_offset(&offsets, SCHEDULE[0]);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_app", "--test-threads=1", "--nocapture"])
        .env("EDGELOG_CLOCK_CHILD", dir.path())
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &offsets)
        .env("FAKETIME_NO_CACHE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("samples.txt")).unwrap();
    let mut phases = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        let f: Vec<i64> = line
            .split(' ')
            .skip(1)
            .map(|w| w.parse().unwrap())
            .collect();
        if line.starts_with("phase") {
            phases.push((f[0], f[1], f[2] as u64, f[3] as u64));
        } else {
            samples.push((f[0] as u64, f[1] as u64, f[2], f[3]));
        }
    }
    assert_eq!(phases.len(), SCHEDULE.len());
    // The steps happened: each phase's time line is far from the one before.
    for w in phases.windows(2) {
        assert!((w[1].0 - w[0].1).abs() > 3_000_000_000_000, "{phases:?}");
    }
    // Each step is seen, once: three steps, plus at most one that libfaketime itself makes
    // (it can show a process the real clock at one of its first reads).
    for w in phases.windows(2) {
        assert!(w[1].3 > w[0].3, "a step went unseen: {phases:?}");
    }
    let seen = phases.last().unwrap().3;
    assert!((3..=4).contains(&seen), "{seen} steps seen: {phases:?}");
    for (k, (_, _, reanchors, _)) in phases.iter().enumerate() {
        // Two threads, ~1.5 s, plus one re-anchor each after a step.
        assert!(
            *reanchors <= 10,
            "phase {k}: {reanchors} re-anchors: {phases:?}"
        );
    }

    // Noted in the control block, for `edgelog show log tables`.
    let control = edgelog_core::control::Control::open_read_only(&dir.path().join("run"))
        .unwrap()
        .unwrap();
    let noted = control.clock_steps().expect("the steps are noted");
    assert_eq!(noted.count, phases.last().unwrap().3);
    assert!(
        (noted.last_by_ns + 3_600_000_000_000).abs() < 100_000_000,
        "{noted:?}"
    );

    let table = dir.path().join("run/clockd/clock.clockd.log");
    let reader = TableReader::open(&table).unwrap();
    let mut times = std::collections::HashMap::new();
    for e in reader.all() {
        let v: Vec<u64> = args::decode(&e.args)
            .map(|a| match a {
                args::Arg::U64(n) => n,
                other => panic!("unexpected argument {other:?}"),
            })
            .collect();
        let (th, n) = (v[0], v[1]);
        times.insert((th, n), e.time.as_unix_nanos());
    }
    let mut checked = [0u64; 2];
    for (th, n, before, after) in samples {
        let Some(&(start, end, _, _)) = phases
            .iter()
            .find(|p| before >= p.0 && after <= p.1 && before <= after)
        else {
            continue; // straddles a step
        };
        if before < start + SETTLE_NS {
            continue;
        }
        let Some(&time) = times.get(&(th, n)) else {
            panic!("entry {th}/{n} is missing");
        };
        assert!(
            time >= before - BOUND_NS && time <= after + BOUND_NS,
            "thread {th} entry {n}: {time} is not within 2 ms of [{before}, {after}] \
             (off by {} ms) in phase {start}..{end}",
            (time - before) as f64 / 1e6
        );
        checked[th as usize] += 1;
    }
    assert!(checked[0] > 1000 && checked[1] > 100, "checked {checked:?}");
}
