//! The sources with positions and the local ones: watched files (rotation both ways, resume
//! after `kill -9`), the kernel log, library tables, stdin.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Daemon, append, seqs};
use edgelog_core::Level;
use edgelog_core::maps::{self, LogMap};
use edgelog_core::table::args::ArgWriter;
use edgelog_core::table::{TableConfig, TableWriter};

const WAIT: Duration = Duration::from_secs(15);

fn file_config(dir: &Path, start_at: &str) -> String {
    format!(
        r#"
[sources.vm]
type = "file"
paths = ["{}/logs/*.log"]
app_name = "qemu-dm-{{file}}"
start_at = "{start_at}"
poll_interval = "50ms"

[destinations.out]
type = "stdout"
format = "json"
"#,
        dir.display()
    )
}

fn lines(range: std::ops::Range<u64>) -> String {
    range.map(|i| format!("guest line seq={i}\n")).collect()
}

#[test]
fn files_are_followed_through_rename_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    append(&logs.join("vm1.log"), &lines(0..100));
    let d = Daemon::start_in(
        tempfile::tempdir().unwrap(),
        Some(&file_config(dir.path(), "beginning")),
        Stdio::null(),
    );
    let first = d.records(100, WAIT);
    assert_eq!(seqs(&first), (0..100).collect::<Vec<_>>());
    assert!(
        first
            .iter()
            .all(|r| r["app_name"] == "qemu-dm-vm1" && r["format"] == "raw"),
        "{:?}",
        first[0]
    );
    assert_eq!(first[0]["message"], "guest line seq=0");

    // The writer's file is renamed away and written to once more; a new one takes its name.
    std::fs::rename(logs.join("vm1.log"), logs.join("vm1.log.1")).unwrap();
    append(&logs.join("vm1.log.1"), &lines(100..150));
    append(&logs.join("vm1.log"), &lines(150..200));
    let mut rest = seqs(&d.records(100, WAIT));
    rest.sort_unstable();
    assert_eq!(rest, (100..200).collect::<Vec<_>>());
    assert!(
        d.more_records(Duration::from_millis(300)).is_empty(),
        "read twice"
    );
    let (counters, _) = d.stop();
    assert_eq!(counters["sources"]["vm"]["received"], 200);
}

/// A file with more than one round's share (256 KiB) is read on at once, not one share per
/// poll interval: with an hour between polls, the whole file still arrives.
#[test]
fn a_large_file_is_read_on_without_waiting_for_the_next_poll() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    const N: u64 = 60_000; // about 1.4 MiB: six rounds
    append(&logs.join("big.log"), &lines(0..N));
    let config = file_config(dir.path(), "beginning")
        .replace("poll_interval = \"50ms\"", "poll_interval = \"1h\"");
    let d = Daemon::start_in(tempfile::tempdir().unwrap(), Some(&config), Stdio::null());
    let got = seqs(&d.records(N as usize, WAIT));
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    d.stop();
}

#[test]
fn files_are_followed_through_copy_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    append(&logs.join("hv.log"), "");
    let d = Daemon::start_in(
        tempfile::tempdir().unwrap(),
        Some(&file_config(dir.path(), "end")),
        Stdio::null(),
    );
    append(&logs.join("hv.log"), &lines(0..50));
    assert_eq!(seqs(&d.records(50, WAIT)), (0..50).collect::<Vec<_>>());
    // logrotate's copytruncate: copy, then cut the file to nothing; the writer goes on.
    std::fs::copy(logs.join("hv.log"), dir.path().join("hv.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(logs.join("hv.log"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    append(&logs.join("hv.log"), &lines(50..60));
    assert_eq!(seqs(&d.records(10, WAIT)), (50..60).collect::<Vec<_>>());
    let (counters, _) = d.stop();
    assert_eq!(
        counters["sources"]["vm"]["dropped"]["file_truncated"], 1,
        "{counters}"
    );
}

#[test]
fn file_positions_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // There before the first start, and start_at = "end": not read.
    append(&logs.join("xen.log"), "old line seq=999\n");
    let cfg = file_config(dir.path(), "end");
    let d = Daemon::start_in(tempfile::tempdir().unwrap(), Some(&cfg), Stdio::null());
    append(&logs.join("xen.log"), &lines(0..100));
    assert_eq!(seqs(&d.records(100, WAIT)), (0..100).collect::<Vec<_>>());
    // Let a poll pass, so the position of what was handed on is saved.
    std::thread::sleep(Duration::from_millis(500));
    let state = d.kill9();
    append(&logs.join("xen.log"), &lines(100..200));
    let d = Daemon::start_in(state, Some(&cfg), Stdio::null());
    let again = d.records(100, WAIT);
    assert_eq!(
        seqs(&again),
        (100..200).collect::<Vec<_>>(),
        "resumed at the wrong place"
    );
    assert!(d.more_records(Duration::from_millis(300)).is_empty());
    d.stop();
}

#[test]
fn kernel_records_from_a_kmsg_file() {
    let dir = tempfile::tempdir().unwrap();
    let kmsg = dir.path().join("kmsg");
    append(
        &kmsg,
        "6,1,1000000,-;eth0: link up seq=0\n\
         3,2,2000000,-;eth0: tx timeout seq=1\n SUBSYSTEM=net\n DEVICE=+net:eth0\n\
         4,5,3000000,-;after a gap seq=2\n",
    );
    let d = Daemon::start_in(
        tempfile::tempdir().unwrap(),
        Some(&format!(
            "[sources.kernel]\ntype = \"kmsg\"\npath = \"{}\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n",
            kmsg.display()
        )),
        Stdio::null(),
    );
    let got = d.records(3, WAIT);
    assert_eq!(seqs(&got), [0, 1, 2]);
    let sev: Vec<&str> = got
        .iter()
        .map(|r| r["severity"].as_str().unwrap())
        .collect();
    assert_eq!(sev, ["info", "error", "warning"]);
    for r in &got {
        assert_eq!(r["app_name"], "kernel");
        assert_eq!(r["facility"], "kern");
        assert_eq!(r["format"], "kmsg");
        assert!(r["timestamp"].is_string());
    }
    assert_eq!(got[1]["fields"]["SUBSYSTEM"], "net", "{}", got[1]);
    assert_eq!(got[1]["sequence"], 2);
    // A record appended later is picked up.
    append(&kmsg, "5,6,4000000,-;later seq=3\n");
    assert_eq!(seqs(&d.records(1, WAIT)), [3]);
    let (counters, _) = d.stop();
    assert_eq!(
        counters["sources"]["kernel"]["dropped"]["kernel_gap"], 2,
        "{counters}"
    );
}

/// Writes entries into a library table the way the `edgelog` library does.
fn write_bgp_events(run_dir: &Path, bd: &str, from: u64, to: u64) {
    let bd_dir = run_dir.join(bd);
    std::fs::create_dir_all(&bd_dir).unwrap();
    let id = maps::log_id("bgp", "BGP_PEER_UP");
    maps::write(
        &bd_dir.join(maps::FILE_NAME),
        &[LogMap {
            id,
            level: Level::Notice,
            module: "bgp".into(),
            group: "peer".into(),
            name: "BGP_PEER_UP".into(),
            template: "peer {peer} (AS {asn}) is up seq={n}".into(),
        }],
    )
    .unwrap();
    let cfg = TableConfig::new(bd, "bgp");
    let table = TableWriter::open(&bd_dir.join(cfg.file_name()), &cfg).unwrap();
    for n in from..to {
        let mut buf = [0u8; 128];
        let mut w = ArgWriter::new(&mut buf);
        w.ip("10.0.0.2".parse().unwrap());
        w.u64(65001);
        w.u64(n);
        let len = w.as_bytes().len();
        let now = edgelog_core::Timestamp::now().as_unix_nanos();
        table
            .append(now, id, Level::Notice, 0, &buf[..len])
            .unwrap();
    }
}

#[test]
fn library_tables_are_tailed_with_their_maps_and_resumed() {
    let cfg = "[sources.tables]\ntype = \"tables\"\npoll_interval = \"50ms\"\n\n[sources.in]\ntype = \"stdin\"\napp_name = \"pipe\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n";
    let state = tempfile::tempdir().unwrap();
    write_bgp_events(&state.path().join("run"), "bgpd", 0, 3);
    let d = Daemon::start_in(state, Some(cfg), Stdio::null());
    let got = d.records(3, WAIT);
    assert_eq!(seqs(&got), [0, 1, 2]);
    let r = &got[0];
    assert_eq!(r["app_name"], "bgpd");
    assert_eq!(r["msg_id"], "BGP_PEER_UP");
    assert_eq!(r["severity"], "notice");
    assert_eq!(r["message"], "peer 10.0.0.2 (AS 65001) is up seq=0");
    assert_eq!(r["fields"]["module"], "bgp");
    assert_eq!(r["fields"]["group"], "peer");
    assert_eq!(r["fields"]["peer"], "10.0.0.2");
    assert_eq!(r["fields"]["asn"], 65001);
    assert_eq!(r["fields"]["log_id"], maps::log_id("bgp", "BGP_PEER_UP"));
    // A new BD appears without a restart; the daemon's own tables are not read back.
    write_bgp_events(&d.run_dir(), "bgpd2", 10, 11);
    let other = d.records(1, WAIT);
    assert_eq!(seqs(&other), [10], "{}", d.stderr());
    assert_eq!(other[0]["app_name"], "bgpd2");
    assert!(d.run_dir().join("edgelogd").exists());
    let (_, state) = d.stop();

    // Restarted: what was delivered is not delivered again; what came meanwhile is.
    write_bgp_events(&state.path().join("run"), "bgpd", 3, 5);
    let d = Daemon::start_in(state, Some(cfg), Stdio::null());
    assert_eq!(seqs(&d.records(2, WAIT)), [3, 4]);
    assert!(d.more_records(Duration::from_millis(400)).is_empty());
    d.stop();
}

/// A table with more entries than one round takes (256) is read on at once: with an hour
/// between polls, every entry still arrives.
#[test]
fn a_busy_table_is_read_on_without_waiting_for_the_next_poll() {
    let cfg = "[sources.tables]\ntype = \"tables\"\npoll_interval = \"1h\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n";
    let state = tempfile::tempdir().unwrap();
    write_bgp_events(&state.path().join("run"), "bgpd", 0, 3000);
    let d = Daemon::start_in(state, Some(cfg), Stdio::null());
    assert_eq!(seqs(&d.records(3000, WAIT)), (0..3000).collect::<Vec<_>>());
    d.stop();
}

#[test]
fn stdin_lines_are_records() {
    let mut child_stdin = tempfile::tempfile().unwrap();
    use std::io::{Seek as _, Write as _};
    writeln!(child_stdin, "plain line seq=0").unwrap();
    writeln!(
        child_stdin,
        "<11>Nov 22 08:00:00 box crond[9]: job failed seq=1"
    )
    .unwrap();
    write!(child_stdin, "no newline at the end seq=2").unwrap();
    child_stdin.rewind().unwrap();
    let d = Daemon::start_in(
        tempfile::tempdir().unwrap(),
        Some(
            "[sources.in]\ntype = \"stdin\"\napp_name = \"pipe\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n",
        ),
        Stdio::from(child_stdin),
    );
    let got = d.records(3, WAIT);
    assert_eq!(seqs(&got), [0, 1, 2]);
    assert_eq!(got[0]["app_name"], "pipe");
    assert_eq!(got[1]["app_name"], "crond");
    assert_eq!(got[1]["severity"], "error");
    let (counters, _) = d.stop();
    assert_eq!(counters["sources"]["in"]["received"], 3);
}
