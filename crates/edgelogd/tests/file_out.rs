//! The `file` destination: one plain file as rsyslog's omfile writes it, that follows
//! logrotate (moved away or deleted: a new file, nothing lost) with its mode and owner.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;

const WAIT: Duration = Duration::from_secs(15);

/// The `seq=N` of every line of the files, with how often each was seen.
fn seen(files: &[&Path]) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap_or_default().lines() {
            if let Some(n) = line.rsplit_once("seq=").and_then(|(_, n)| n.parse().ok()) {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// Waits until the files hold `n` distinct records.
fn wait_for(files: &[&Path], n: usize) -> BTreeMap<u64, usize> {
    let end = Instant::now() + WAIT;
    loop {
        let s = seen(files);
        if s.len() >= n || Instant::now() > end {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(sock: &UnixDatagram, path: &Path, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        let line = format!("<30>Dec  3 04:05:06 box1 ntpd[77]: clock synced seq={seq}");
        sock.send_to(line.as_bytes(), path).unwrap();
    }
}

#[test]
fn lines_are_rsyslogs_and_a_rotated_or_deleted_file_is_followed_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("log").join("syslog");
    let root = nix::unistd::geteuid().is_root();
    let owner = if root {
        "owner = \"nobody\"\ngroup = \"nogroup\"\n"
    } else {
        ""
    };
    let config = format!(
        r#"
[sources.devlog]
type = "unix_datagram"
path = "log.sock"

[destinations.syslog]
type = "file"
path = "{}"
mode = "0640"
{owner}
"#,
        out.display()
    );
    let d = Daemon::start_in(dir, Some(&config), std::process::Stdio::null());
    let sock = UnixDatagram::unbound().unwrap();
    let dev_log = d.run_dir().join("log.sock");

    send(&sock, &dev_log, 0..100);
    assert_eq!(wait_for(&[&out], 100).len(), 100);
    // rsyslog's traditional file format: no PRI, the sender's header as it was.
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "Dec  3 04:05:06 box1 ntpd[77]: clock synced seq=0"
    );
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    if root {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(meta.uid(), nobody.uid.as_raw());
    }

    // logrotate's default: rename, and the writer must create a new file at the path.
    let rotated = out.with_extension("1");
    std::fs::rename(&out, &rotated).unwrap();
    send(&sock, &dev_log, 100..200);
    // Within a second the path is checked and a new file created; records written before
    // that are in the rotated file.
    let end = Instant::now() + WAIT;
    while !out.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(out.exists(), "no new file after the rotation");
    send(&sock, &dev_log, 200..300);
    let both = wait_for(&[&rotated, &out], 300);
    assert_eq!(both.len(), 300, "missing: {:?}", missing(&both, 300));
    assert!(both.values().all(|&n| n == 1), "a record written twice");
    let in_new = seen(&[&out]);
    assert!((200..300).all(|s| in_new.contains_key(&s)), "{in_new:?}");
    let new = std::fs::metadata(&out).unwrap();
    assert_ne!(new.ino(), meta.ino());
    assert_eq!(new.mode() & 0o7777, 0o640);

    // Deleted outright: a new file again.
    std::fs::remove_file(&rotated).unwrap();
    std::fs::remove_file(&out).unwrap();
    let end = Instant::now() + WAIT;
    while !out.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    send(&sock, &dev_log, 300..320);
    let after = wait_for(&[&out], 20);
    assert!(
        (300..320).all(|s| after.contains_key(&s)),
        "not in the new file: {after:?}"
    );
    let (counters, _dir) = d.stop();
    let dest = &counters["destinations"]["syslog"];
    assert_eq!(dest["written"], 320, "{dest}");
}

fn missing(seen: &BTreeMap<u64, usize>, n: u64) -> Vec<u64> {
    (0..n).filter(|s| !seen.contains_key(s)).collect()
}

#[test]
fn an_owner_the_box_does_not_have_is_refused_by_the_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgelogd.toml");
    std::fs::write(
        &config,
        "[sources.a]\ntype = \"stdin\"\n\n[destinations.f]\ntype = \"file\"\npath = \"x.log\"\n\
         owner = \"no-such-user-here\"\nmode = \"0999\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgelogd"))
        .arg("--check-config")
        .arg("-c")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let shown = config.display();
    assert!(
        err.contains(&format!(
            "{shown}:7: destinations.f.owner: no user named \"no-such-user-here\" on this system"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{shown}:8: destinations.f.mode: invalid mode")),
        "{err}"
    );
}
