//! The memlogd source: descriptors passed over the logwrite socket as linuxkit's `logwrite`
//! passes them, `edgelog run`, and the query socket's dump, follow and dump+follow.

mod common;

use std::io::{BufRead as _, BufReader, IoSlice, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, edgelog_cli, seqs};
use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// Passes the far end of a new socket pair under `name` and returns our end.
fn logwrite(sock: &Path, name: &[u8]) -> UnixStream {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let fds = [theirs.as_raw_fd()];
    let dgram = UnixDatagram::unbound().unwrap();
    sendmsg(
        dgram.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(&UnixAddr::new(sock).unwrap()),
    )
    .unwrap();
    ours
}

fn query(path: &Path, mode: u8) -> BufReader<UnixStream> {
    let mut q = UnixStream::connect(path).unwrap();
    q.set_read_timeout(Some(WAIT)).unwrap();
    q.write_all(&[mode]).unwrap();
    BufReader::new(q)
}

fn next_line(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn passed_descriptors_edgelog_run_and_queries() {
    let d = Daemon::start(Some(
        "[sources.containers]\ntype = \"memlogd\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n",
    ));
    let lw = d.run_dir().join("linuxkit-external-logging.sock");
    let qs = d.run_dir().join("memlogdq.sock");

    // A follower from before anything was written sees only what comes after: once the
    // daemon counts it as open, it gets every line.
    let mut follower = query(&qs, 1);
    d.wait_for_counters(WAIT, |c| c["sources"]["containers"]["connections"] == 1);

    // As linuxkit's logwrite does it (the name may end in NUL).
    let mut svc = logwrite(&lw, b"svc.stdout\0");
    svc.write_all(b"line seq=0\nline seq=1\n").unwrap();
    drop(svc);
    let got = d.records(2, WAIT);
    assert_eq!(seqs(&got), [0, 1]);
    assert!(
        got.iter()
            .all(|r| r["app_name"] == "svc.stdout" && r["format"] == "raw")
    );
    assert_eq!(got[0]["message"], "line seq=0");

    if let Some(cli) = edgelog_cli() {
        let out = Command::new(cli)
            .arg("--run-dir")
            .arg(d.run_dir())
            .args([
                "run",
                "-n",
                "job",
                "--",
                "sh",
                "-c",
                "echo out seq=2; echo err seq=3 >&2; exit 3",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The terminal still sees the output.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out seq=2\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err seq=3\n");
        let mut got = d.records(2, WAIT);
        got.sort_by_key(|r| seqs(std::slice::from_ref(r)));
        assert_eq!(seqs(&got), [2, 3]);
        assert_eq!(got[0]["app_name"], "job.out");
        assert_eq!(got[1]["app_name"], "job");
    }

    // The follower saw every line since it connected, in order, in memlogd's shape.
    let first = next_line(&mut follower);
    assert_eq!(first["source"], "svc.stdout");
    assert_eq!(first["msg"], "line seq=0");
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Dump: everything in the ring, then the connection closes.
    let mut dump = query(&qs, 0);
    let mut all = Vec::new();
    let mut line = String::new();
    while dump.read_line(&mut line).unwrap() > 0 {
        all.push(
            serde_json::from_str::<Value>(&line).unwrap()["msg"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        line.clear();
    }
    let n = all.len();
    assert!(n == 2 || n == 4, "{all:?}");
    assert_eq!(all[..2], ["line seq=0", "line seq=1"]);

    // Dump and follow: the ring, then what comes next.
    let mut both = query(&qs, 2);
    for _ in 0..n {
        next_line(&mut both);
    }
    let mut late = logwrite(&lw, b"late");
    late.write_all(b"after the dump seq=9\n").unwrap();
    drop(late);
    let next = next_line(&mut both);
    assert_eq!(
        (next["source"].as_str(), next["msg"].as_str()),
        (Some("late"), Some("after the dump seq=9"))
    );
    assert_eq!(seqs(&d.records(1, WAIT)), [9]);
    d.stop();
}

#[test]
fn edgelog_run_is_captured_by_the_embedded_default() {
    let Some(cli) = edgelog_cli() else { return };
    let d = Daemon::start(None);
    let out = Command::new(cli)
        .arg("--run-dir")
        .arg(d.run_dir())
        .args([
            "run",
            "-n",
            "nightly",
            "--",
            "sh",
            "-c",
            "echo captured seq=7",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("without capture"), "{err}");
    let store = d.state_dir().join("store/current.log");
    let deadline = std::time::Instant::now() + WAIT;
    let line = loop {
        let text = std::fs::read_to_string(&store).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("captured seq=7")) {
            break l.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not in the store:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(line.contains(" nightly.out "), "{line}");
    d.stop();
}
