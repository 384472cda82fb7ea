//! A full run directory never kills the application (a sparse table page first written on a
//! full tmpfs is a SIGBUS). The `bgpd` example logs into a run directory on a small tmpfs that
//! this test mounts: it exits 0 whatever the space, the entries that fit read back whole, and
//! every enabled event is accounted for — in a table, counted as lost by the table, counted
//! as `no_space` by the table, or counted by the process when no table could be made.

#[path = "../../edgelog-core/tests/support/tmpfs.rs"]
mod tmpfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use edgelog_core::control::{Control, Scope};
use edgelog_core::maps;
use edgelog_core::table::{TableReader, find_tables};
use edgelog_core::{Level, LevelFilter};

use tmpfs::Tmpfs;

/// The example binary, built beside this test by `cargo test`.
fn bgpd() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("examples").join("bgpd")
}

/// Enabled events `bgpd --events n` sends to each table with every level on: five in six
/// events go to `bgp`, one in six to `rib`, and a text event every tenth to `bgp`.
fn expected(n: u64) -> [(&'static str, u64); 2] {
    let rib = (0..n).filter(|i| i % 6 == 5).count() as u64;
    [("bgp.bgpd.log", n - rib + n / 10), ("rib.bgpd.log", rib)]
}

/// What the run directory's tables hold, per table: (entries ever appended per lane, lost,
/// no_space), with every entry still held read back whole and formatted with its map.
fn tables(run: &Path) -> Vec<(String, Vec<u64>, u64, u64)> {
    let maps = maps::read_bd(run, "bgpd");
    find_tables(run)
        .unwrap()
        .into_iter()
        .map(|t| {
            let r = TableReader::open(&t.path).unwrap();
            let entries = r.all();
            assert_eq!(
                entries.len() as u64,
                r.entries(),
                "{}: a held entry unreadable",
                t.name
            );
            for e in &entries {
                let f = maps::format_entry(e, &maps);
                assert!(
                    !f.message.is_empty() && !f.message.contains('{') && !e.truncated(),
                    "{}: entry {} of lane {} is not whole: {:?}",
                    t.name,
                    e.seq,
                    e.lane,
                    f.message
                );
            }
            let c = r.counters();
            let appended = r.lanes().map(|l| r.head(l) - 1).collect();
            (t.name, appended, c.lost_busy + c.lost_lapped, c.no_space)
        })
        .collect()
}

/// The number `bgpd` said it dropped with no table to write to.
fn dropped_without_table(out: &Output) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("bgpd: ")?
                .split(" events had no table")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `bgpd` logging into `run`, with `args`.
fn bgpd_command(run: &Path, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bgpd());
    cmd.arg("--run-dir")
        .arg(run)
        .arg("--state-dir")
        .arg(state)
        .args(args);
    cmd
}

fn run_bgpd(run: &Path, state: &Path, args: &[&str]) -> Output {
    let out = bgpd_command(run, state, args).output().unwrap();
    assert!(
        out.status.success(),
        "bgpd failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn every_level_on(run: &Path, state: &Path) {
    Control::open(run, Some(state))
        .unwrap()
        .set(Scope::global(), LevelFilter::from(Level::Debug))
        .unwrap();
}

#[test]
fn a_full_run_directory_costs_entries_never_the_application() {
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let state = tempfile::tempdir().unwrap();
    let run = fs.path().join("run");
    every_level_on(&run, state.path());
    let bd_dir = run.join("bgpd");

    // Room for both tables' shared lanes and one own lane (1000 slots of 256 bytes each):
    // `rib`'s thread cannot reserve a lane of its own and writes to the shared one.
    let out = run_bgpd(
        &run,
        state.path(),
        &["--events", "100000", "--capacity", "1000"],
    );
    assert_eq!(dropped_without_table(&out), 0);
    let found = tables(&run);
    for ((name, appended, lost, no_space), (want_name, want)) in found.iter().zip(expected(100_000))
    {
        assert_eq!(name, want_name);
        assert_eq!(
            appended.iter().sum::<u64>() + lost + no_space,
            want,
            "{name}: {appended:?}"
        );
        assert_eq!(*no_space, 0, "{name}");
    }
    let rib = &found[1];
    assert_eq!(
        rib.1[1], 0,
        "rib's own lane should have had no room: {:?}",
        rib.1
    );
    assert_eq!(
        rib.1[0] + rib.2,
        expected(100_000)[1].1,
        "rib's events are in the shared lane"
    );

    // Room for the tables' headers only: every entry is counted as no_space, exactly.
    std::fs::remove_dir_all(&bd_dir).unwrap();
    let filler = fs.fill(48 << 10);
    let out = run_bgpd(
        &run,
        state.path(),
        &["--events", "100000", "--capacity", "1000"],
    );
    assert_eq!(dropped_without_table(&out), 0);
    let found = tables(&run);
    assert_eq!(found.len(), 2, "{found:?}");
    for ((name, appended, lost, no_space), (_, want)) in found.iter().zip(expected(100_000)) {
        assert_eq!(appended.iter().sum::<u64>(), 0, "{name}");
        assert_eq!(no_space + lost, want, "{name}");
    }

    // No room at all: no table is made, the process counts every event; then space returns
    // while it logs, and the tables are made and written from then on.
    std::fs::remove_dir_all(&bd_dir).unwrap();
    std::fs::remove_file(&filler).unwrap();
    let filler = fs.fill(0);
    let child = bgpd_command(
        &run,
        state.path(),
        &[
            "--events",
            "3000",
            "--interval-ms",
            "1",
            "--capacity",
            "1000",
        ],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::remove_file(&filler).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dropped = dropped_without_table(&out);
    let found = tables(&run);
    let kept: u64 = found
        .iter()
        .map(|(_, a, l, n)| a.iter().sum::<u64>() + l + n)
        .sum();
    let want: u64 = expected(3000).iter().map(|(_, n)| n).sum();
    assert!(dropped > 0, "the first second had no room");
    assert!(kept > 0, "space came back: tables should have been made");
    assert_eq!(
        kept + dropped,
        want,
        "tables {found:?}, dropped without a table {dropped}"
    );
}
