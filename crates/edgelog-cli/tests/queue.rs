//! `edgelog queue verify`: a sound queue is `ok` (exit 0); a corrupt record and a torn tail are
//! named with their file and record (exit 1); the JSON agrees; bad usage exits 2.

use std::path::Path;
use std::process::{Command, Output};

use edgelog_queue::disk::{DiskOptions, Fsync};
use edgelog_queue::{DiskQueue, Queue, WhenFull};

fn edgelog(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .args(args)
        .arg(dir)
        .output()
        .unwrap()
}

fn make_queue(dir: &Path) {
    let opts = DiskOptions {
        segment_bytes: 2048,
        fsync: Fsync::Always,
        when_full: WhenFull::Block,
        ..DiskOptions::default()
    };
    let (mut q, _) = DiskQueue::open(dir, opts, &["central", "graylog"]).unwrap();
    let data: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("<14>1 - h app - - - record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    q.append(&refs).unwrap();
    q.ack(0, &(1..=40).collect::<Vec<_>>()).unwrap();
}

#[test]
fn verify_reports_a_sound_queue_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    make_queue(dir.path());

    let out = edgelog(&["queue", "verify"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("100 records"), "{text}");
    assert!(text.contains("records 1 to 100"), "{text}");
    assert!(
        text.contains("consumer central          acknowledged up to 40"),
        "{text}"
    );
    assert!(
        text.contains("consumer graylog          acknowledged up to 0"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("ok"), "{text}");

    // Damage a record in the first segment and leave half a record at the end of the last.
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    let mut first = std::fs::read(&segs[0]).unwrap();
    first[32 + 16 + 3] ^= 1;
    std::fs::write(&segs[0], first).unwrap();
    let last = segs.last().unwrap();
    let mut tail = std::fs::read(last).unwrap();
    tail.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    std::fs::write(last, tail).unwrap();

    let out = edgelog(&["queue", "verify"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.contains(&format!(
            "{}: record 1: checksum mismatch after 0 good records (corrupt",
            name(&segs[0])
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}: record", name(last))) && text.contains("torn tail"),
        "{text}"
    );

    let out = edgelog(&["queue", "verify", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["cursors"]["central"]["acked"], 40);
    assert_eq!(v["segments"][0]["records"], 0);
}

#[test]
fn verify_refuses_what_is_not_a_queue() {
    let out = edgelog(&["queue", "verify"], Path::new("/nonexistent/queue"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/queue: not a directory"));
    let out = Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .args(["queue", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
