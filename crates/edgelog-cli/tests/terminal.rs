//! Messages come from anyone who can send to `/dev/log`; the operator's terminal must never
//! receive their control characters raw. A message with a window-title and a colour escape
//! sequence, logged through the library, is shown by `show log table` and `tail` with no ESC
//! byte, visibly escaped; `--json` keeps it exactly (JSON-escaped).

use std::process::Command;

use edgelog::{Level, Options};

const EVIL: &str = "\x1b]0;PWNED\x07\x1b[31mred\nsecond line";

#[test]
fn control_characters_in_messages_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    edgelog::init(
        "termd",
        Options::new()
            .run_dir(&run)
            .state_dir(dir.path().join("state")),
    )
    .unwrap();
    edgelog::log_text("evil", "x", Level::Error, EVIL);
    edgelog::log_text("a_module_with_a_long_name", "x", Level::Error, "plain");

    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_edgelog"))
            .arg("--run-dir")
            .arg(&run)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    for args in [&["show", "log", "table", "evil.termd.log"][..], &["tail"]] {
        let out = cli(args);
        assert!(
            !out.contains(&0x1b) && !out.contains(&0x07),
            "{args:?}: {out:?}"
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\\x1b]0;PWNED\\x07\\x1b[31mred\\nsecond line"),
            "{args:?}: {text}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
    }
    // `tail` keeps its columns aligned whatever the table names: the group column starts as
    // far from the table name on every line.
    let tail = String::from_utf8(cli(&["tail"])).unwrap();
    let offsets: Vec<usize> = tail
        .lines()
        .map(|l| {
            let table = l.find(".termd.log").unwrap();
            let start = l[..table].rfind(' ').unwrap() + 1;
            l[start..].find(" x ").unwrap()
        })
        .collect();
    assert_eq!(offsets.len(), 2, "{tail}");
    assert_eq!(offsets[0], offsets[1], "{tail}");
    let json = cli(&["show", "log", "table", "evil.termd.log", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["message"], EVIL);
}

#[test]
fn a_missing_table_or_run_directory_is_a_failed_operation() {
    let dir = tempfile::tempdir().unwrap();
    let run = |run_dir: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_edgelog"))
            .arg("--run-dir")
            .arg(run_dir)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(dir.path(), &["show", "log", "table", "nosuch.log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no table \"nosuch.log\""));
    let missing = dir.path().join("nonexistent");
    for args in [
        &["show", "log", "tables"][..],
        &["show", "log", "table", "x.log"],
    ] {
        let out = run(&missing, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no run directory"),
            "{args:?}"
        );
    }
}
