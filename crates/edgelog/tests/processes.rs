//! Network daemons fork, pre-fork workers, and overlap old and new instances in a restart:
//! several processes write one table. Each scenario runs in a process of its own (this test
//! binary run again with `EDGELOG_PROCESS_CHILD=<scenario>:<dir>`), and the test reads the
//! table back: every writer's entries are there, whole, each lane's entries of one writer in
//! order with no gap, and LOST and TORN say exactly what was overwritten or torn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use edgelog::{Event, Level, Options, event};
use edgelog_core::table::{TableReader, args};

static TICK: Event = Event::new("proc", "tick", "PROC_TICK", Level::Error, "{who} {n}");

/// Events each writer logs after a fork.
const FORKED_EVENTS: u64 = 2_000_000;

fn init(dir: &Path, lanes: u32, capacity: u64) {
    edgelog::init(
        "procd",
        Options::new()
            .run_dir(dir.join("run"))
            .state_dir(dir.join("state"))
            .lanes(lanes)
            .capacity(capacity)
            .slot_size(64)
            .events(&[&TICK]),
    )
    .unwrap();
}

fn log(who: u64, n: u64) {
    for i in 0..n {
        event!(TICK, who = who, n = i);
    }
}

/// Forks; the child runs `body` and exits without running anything of the parent's.
fn fork(body: impl FnOnce()) -> nix::unistd::Pid {
    // SAFETY: the child only logs (atomics and stores into the mapped table, the library's
    // own lock, which no other thread holds in these scenarios at the fork) and then exits
    // with `_exit`.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            body();
            // SAFETY: ends the child at once, as a forked child of a test process should.
            unsafe { nix::libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    }
}

fn reap(pid: nix::unistd::Pid) {
    let status = nix::sys::wait::waitpid(pid, None).unwrap();
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
}

/// The scenarios, run in a child process of the test.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var("EDGELOG_PROCESS_CHILD") else {
        return;
    };
    let (scenario, dir) = spec.split_once(':').unwrap();
    let dir = Path::new(dir);
    match scenario {
        "fork" => {
            init(dir, 4, 10_000);
            event!(TICK, who = 9u64, n = 0u64); // the parent holds a lane before it forks
            let child = fork(|| log(1, FORKED_EVENTS));
            log(0, FORKED_EVENTS);
            reap(child);
        }
        "prefork" => {
            init(dir, 8, 10_000);
            let workers: Vec<_> = (0..4)
                .map(|w| fork(move || log(w, FORKED_EVENTS / 4)))
                .collect();
            workers.into_iter().for_each(reap);
        }
        "threads" => {
            init(dir, 8, 10_000);
            let threads: Vec<_> = (10..12)
                .map(|w| std::thread::spawn(move || log(w, FORKED_EVENTS / 4)))
                .collect();
            std::thread::sleep(Duration::from_millis(20));
            let child = fork(|| log(1, FORKED_EVENTS / 4));
            threads.into_iter().for_each(|t| t.join().unwrap());
            reap(child);
        }
        instance => {
            // `instance-K-MS`: instance K of the BD: 1,000 events, then one a millisecond
            // until MS milliseconds have passed.
            let mut parts = instance.split('-').skip(1);
            let who: u64 = parts.next().unwrap().parse().unwrap();
            let ms: u64 = parts.next().unwrap().parse().unwrap();
            init(dir, 4, 20_000);
            let end = Instant::now() + Duration::from_millis(ms);
            log(who, 1000);
            let mut n = 1000u64;
            while Instant::now() < end {
                event!(TICK, who = who, n = n);
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn spawn(scenario: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(
            "EDGELOG_PROCESS_CHILD",
            format!("{scenario}:{}", dir.display()),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn run(scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = spawn(scenario, dir.path()).wait().unwrap();
    assert!(status.success(), "{scenario}: {status}");
    dir
}

/// Per writer (`who`): the lanes it wrote, each with the `n` of its entries there, in order.
type Writers = BTreeMap<u64, Vec<(u32, Vec<u64>)>>;

/// What the table holds, checked: per writer, its entries by lane. Within a lane a writer's
/// entries have consecutive sequence numbers and consecutive `n` (none mixed with another
/// writer's, none torn); the table's counters are returned as (lost, torn).
fn entries(dir: &Path) -> (Writers, (u64, u64)) {
    let path: PathBuf = dir.join("run/procd/proc.procd.log");
    let r = TableReader::open(&path).unwrap();
    let mut by_lane: BTreeMap<u32, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for e in r.all() {
        let v: Vec<u64> = args::decode(&e.args)
            .map(|a| match a {
                args::Arg::U64(n) => n,
                other => panic!("entry {} of lane {}: argument {other:?}", e.seq, e.lane),
            })
            .collect();
        assert_eq!(
            v.len(),
            2,
            "entry {} of lane {} is not whole",
            e.seq,
            e.lane
        );
        by_lane.entry(e.lane).or_default().push((e.seq, v[0], v[1]));
    }
    let mut writers = Writers::new();
    for (lane, mut es) in by_lane {
        es.sort_unstable();
        let mut runs: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        for (seq, who, n) in es {
            runs.entry(who).or_default().push((seq, n));
        }
        for (who, run) in runs {
            if lane != 0 {
                for w in run.windows(2) {
                    assert_eq!(
                        w[1].0,
                        w[0].0 + 1,
                        "lane {lane}: writer {who}'s entries are interleaved with another's"
                    );
                    assert_eq!(
                        w[1].1,
                        w[0].1 + 1,
                        "lane {lane}: writer {who} skips from {} to {}",
                        w[0].1,
                        w[1].1
                    );
                }
            } else {
                assert!(
                    run.windows(2).all(|w| w[1].1 > w[0].1),
                    "lane 0: writer {who} out of order"
                );
            }
            writers
                .entry(who)
                .or_default()
                .push((lane, run.into_iter().map(|(_, n)| n).collect()));
        }
    }
    let c = r.counters();
    (writers, (c.lost_busy + c.lost_lapped, c.torn))
}

#[test]
fn a_parent_and_its_forked_child_each_keep_their_own_entries_whole() {
    let dir = run("fork");
    let (writers, (lost, torn)) = entries(dir.path());
    assert_eq!((lost, torn), (0, 0));
    for who in [0, 1] {
        let lanes = &writers[&who];
        assert_eq!(
            lanes.len(),
            1,
            "writer {who} in one lane: {:?}",
            lanes.iter().map(|l| l.0).collect::<Vec<_>>()
        );
        let (lane, ns) = &lanes[0];
        assert_ne!(*lane, 0);
        // Its newest 10,000, exactly.
        assert_eq!(ns.len(), 10_000, "writer {who}");
        assert_eq!(ns.last(), Some(&(FORKED_EVENTS - 1)));
    }
    assert_ne!(
        writers[&0][0].0, writers[&1][0].0,
        "parent and child share a lane"
    );
}

#[test]
fn pre_forked_workers_each_write_a_lane_of_their_own() {
    let dir = run("prefork");
    let (writers, (lost, torn)) = entries(dir.path());
    assert_eq!((lost, torn), (0, 0));
    let lanes: Vec<u32> = (0..4).map(|w| writers[&w][0].0).collect();
    for w in 0..4u64 {
        let (lane, ns) = &writers[&w][0];
        assert!(
            *lane != 0 && ns.len() == 10_000,
            "worker {w}: lane {lane}, {} entries",
            ns.len()
        );
        assert_eq!(ns.last(), Some(&(FORKED_EVENTS / 4 - 1)));
    }
    let mut distinct = lanes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{lanes:?}");
}

#[test]
fn a_fork_in_a_multithreaded_parent_shares_no_lane() {
    let dir = run("threads");
    let (writers, (lost, torn)) = entries(dir.path());
    assert_eq!((lost, torn), (0, 0));
    let lanes: Vec<u32> = [10, 11, 1].iter().map(|w| writers[w][0].0).collect();
    let mut distinct = lanes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{lanes:?}");
    for w in [10, 11, 1] {
        assert_eq!(
            writers[&w][0].1.last(),
            Some(&(FORKED_EVENTS / 4 - 1)),
            "writer {w}"
        );
    }
}

#[test]
fn sixteen_instances_started_at_once_all_init_and_all_log() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..16)
        .map(|k| spawn(&format!("instance-{k}-0"), dir.path()))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let (writers, (lost, _)) = entries(dir.path());
    assert_eq!(
        writers.keys().copied().collect::<Vec<_>>(),
        (0..16).collect::<Vec<_>>()
    );
    // Three get own lanes, thirteen share lane 0, where writers that collide lose the entry
    // and count it: every event is held or counted.
    let held: u64 = writers
        .values()
        .flatten()
        .map(|(_, ns)| ns.len() as u64)
        .sum();
    assert_eq!(held + lost, 16 * 1000, "held {held}, lost {lost}");
}

#[test]
fn a_restart_that_overlaps_the_old_instance_keeps_both_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = spawn("instance-1-2000", dir.path());
    std::thread::sleep(Duration::from_millis(1000));
    let mut new = spawn("instance-2-1000", dir.path());
    assert!(old.wait().unwrap().success());
    assert!(new.wait().unwrap().success());
    let (writers, (lost, torn)) = entries(dir.path());
    assert_eq!((lost, torn), (0, 0));
    let (old_lane, new_lane) = (writers[&1][0].0, writers[&2][0].0);
    assert!(
        old_lane != 0 && new_lane != 0 && old_lane != new_lane,
        "{old_lane} {new_lane}"
    );
}
