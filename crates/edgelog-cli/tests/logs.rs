//! `edgelog set log level` / `show log …` as real processes against a running application:
//! the application is this test binary run again with `EDGELOG_CLI_CHILD` set, linking the
//! library and logging in a loop; everything else goes through the `edgelog` binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgelog::{Event, Level, Options, event};
use serde_json::{Value, json};

static TICK: Event = Event::new(
    "rib",
    "fib",
    "RIB_FIB_TICK",
    Level::Info,
    "tick {n} on {table}",
);

/// The application's body; does nothing unless the parent set `EDGELOG_CLI_CHILD`.
#[test]
fn child_app() {
    let Ok(dir) = std::env::var("EDGELOG_CLI_CHILD") else {
        return;
    };
    let dir = Path::new(&dir);
    edgelog::init(
        "ribd",
        Options::new()
            .run_dir(dir.join("run"))
            .state_dir(dir.join("state"))
            .events(&[&TICK]),
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let mut n = 0u64;
    while Instant::now() < end {
        event!(TICK, n = n, table = "default");
        n += 1;
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn edgelog(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn set_log_level_changes_what_a_running_app_records_and_show_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_app", "--test-threads=1"])
        .env("EDGELOG_CLI_CHILD", dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let entries = || {
        let out = edgelog(dir.path(), &["show", "log", "tables", "--json"]);
        json_lines(&out)
            .first()
            .map_or(0, |t| t["entries"].as_u64().unwrap())
    };
    wait_until("the app created its table", || {
        dir.path().join("run/ribd/rib.ribd.log").exists()
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(entries(), 0, "info recorded at the default level (error)");

    let out = edgelog(
        dir.path(),
        &[
            "set", "log", "level", "info", "--bd", "ribd", "--module", "rib",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "log level of bd=ribd module=rib set to info\n"
    );
    wait_until("ticks are recorded", || entries() >= 10);

    let rows = json_lines(&edgelog(
        dir.path(),
        &[
            "show",
            "log",
            "table",
            "rib.ribd.log",
            "--limit",
            "3",
            "--json",
        ],
    ));
    assert_eq!(rows.len(), 3);
    let r = &rows[2];
    let n = r["args"]["n"].as_u64().unwrap();
    assert_eq!(r["message"], format!("tick {n} on default"));
    assert_eq!(
        (
            r["level"].clone(),
            r["table"].clone(),
            r["bd"].clone(),
            r["module"].clone(),
            r["group"].clone()
        ),
        (
            json!("info"),
            json!("rib.ribd.log"),
            json!("ribd"),
            json!("rib"),
            json!("fib")
        )
    );
    assert_eq!(r["log_id"], TICK.id());
    assert!(rows[0]["seq"].as_u64() < rows[2]["seq"].as_u64());

    // Filters: severity, text, time.
    let table = |extra: &[&str]| {
        let mut args = vec!["show", "log", "table", "rib.ribd.log", "--json"];
        args.extend_from_slice(extra);
        json_lines(&edgelog(dir.path(), &args))
    };
    assert!(
        table(&["--level", "warning"]).is_empty(),
        "info entries passed --level warning"
    );
    assert!(!table(&["--level", "info"]).is_empty());
    // A tick known to be in the table, and no other.
    let pattern = format!("^tick {n} on");
    let grep = table(&["--grep", &pattern]);
    assert_eq!(grep.len(), 1, "{grep:?}");
    assert_eq!(grep[0]["args"]["n"], n);
    assert!(table(&["--since", "1h"]).len() >= 10);
    assert!(table(&["--until", "1h"]).is_empty());
    assert!(table(&["--since", "2000-01-01T00:00:00Z", "--limit", "2"]).len() == 2);
    let bad = edgelog(
        dir.path(),
        &["show", "log", "table", "rib.ribd.log", "--since", "soon"],
    );
    assert_eq!(bad.status.code(), Some(2));

    let levels = json_lines(&edgelog(dir.path(), &["show", "log", "levels", "--json"]));
    assert!(levels.contains(&json!({"kind": "effective", "bd": "ribd", "module": "rib", "group": "fib", "level": "info", "from": "rule bd=ribd module=rib"})), "{levels:?}");
    let text = edgelog(
        dir.path(),
        &["show", "log", "table", "rib.ribd.log", "--limit", "1"],
    );
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.starts_with("TIME") && text.contains("RIB_FIB_TICK") && text.contains("tick "),
        "{text}"
    );

    // Level none: recording stops at the app's next event.
    assert!(
        edgelog(
            dir.path(),
            &[
                "set", "log", "level", "none", "--bd", "ribd", "--module", "rib"
            ]
        )
        .status
        .success()
    );
    // An event that passed its level check just before the change may still land; give it
    // time (generously: CI machines are loaded), then nothing more may come.
    std::thread::sleep(Duration::from_millis(300));
    let stopped = entries();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(entries(), stopped);
    child.kill().unwrap();
    child.wait().unwrap();
    let persisted = std::fs::read_to_string(dir.path().join("state/levels.conf")).unwrap();
    assert!(persisted.contains("none bd=ribd module=rib"), "{persisted}");
}

#[test]
fn bad_levels_and_scopes_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["set", "log", "level", "loud"], "loud"),
        (
            &["set", "log", "level", "debug", "--group", "peer"],
            "--module",
        ),
        (
            &["set", "log", "level", "debug", "--bd", "a b"],
            "invalid bd name",
        ),
    ];
    for (args, why) in cases {
        let out = edgelog(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // A table that is not there is a failed operation (1), and so is a run directory that
    // is not there; an empty one is an empty view.
    let out = edgelog(dir.path(), &["show", "log", "table", "nope.x.log"]);
    assert_eq!(out.status.code(), Some(1));
    let out = edgelog(dir.path(), &["show", "log", "tables"]);
    assert_eq!(out.status.code(), Some(1));
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let out = edgelog(dir.path(), &["show", "log", "tables"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn tail_follow_shows_new_entries_of_a_running_app_within_a_second() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let mut app = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_app", "--test-threads=1"])
        .env("EDGELOG_CLI_CHILD", dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the app created its table", || {
        dir.path().join("run/ribd/rib.ribd.log").exists()
    });
    let mut tail = Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .args([
            "tail", "-f", "-n", "0", "--json", "--module", "rib", "--grep", "^tick",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing is recorded until the level allows it; then the first tick reaches tail.
    std::thread::sleep(Duration::from_millis(200));
    let set_at = Instant::now();
    let out = edgelog(
        dir.path(),
        &["set", "log", "level", "info", "--module", "rib"],
    );
    assert!(out.status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("tail -f showed nothing");
    let elapsed = set_at.elapsed();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        (v["table"].clone(), v["group"].clone()),
        (json!("rib.ribd.log"), json!("fib"))
    );
    assert!(v["message"].as_str().unwrap().starts_with("tick "));
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    // Entries keep coming, in order.
    let next: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    assert!(next["seq"].as_u64() > v["seq"].as_u64());
    for p in [&mut tail, &mut app] {
        p.kill().unwrap();
        p.wait().unwrap();
    }
}

#[test]
fn show_log_levels_uses_the_defaults_an_application_published() {
    use edgelog_core::control::{self, Control, Scope};
    use edgelog_core::maps::{self, LogMap};
    use edgelog_core::table::{TableConfig, TableWriter};

    let dir = tempfile::tempdir().unwrap();
    let bd = dir.path().join("run/lbd");
    std::fs::create_dir_all(&bd).unwrap();
    let map = |module: &str| LogMap {
        id: maps::log_id(module, "X"),
        level: Level::Info,
        module: module.into(),
        group: "g".into(),
        name: "X".into(),
        template: "x".into(),
    };
    maps::write(&bd.join(maps::FILE_NAME), &[map("noisy"), map("quiet")]).unwrap();
    control::write_module_defaults(
        &bd.join(control::DEFAULTS_NAME),
        &[("noisy".into(), edgelog::LevelFilter::NONE)],
    )
    .unwrap();
    TableWriter::open(&bd.join("noisy.lbd.log"), &TableConfig::new("lbd", "noisy")).unwrap();
    Control::open(&dir.path().join("run"), None)
        .unwrap()
        .set(Scope::global(), edgelog::LevelFilter::ALL)
        .unwrap();

    let levels = json_lines(&edgelog(dir.path(), &["show", "log", "levels", "--json"]));
    assert!(levels.contains(&json!({"kind": "effective", "bd": "lbd", "module": "noisy", "group": "g", "level": "none", "from": "module default"})), "{levels:?}");
    assert!(levels.contains(&json!({"kind": "effective", "bd": "lbd", "module": "quiet", "group": "g", "level": "debug", "from": "rule global"})), "{levels:?}");
}

#[test]
fn delete_log_level_and_set_log_level_default_remove_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| edgelog(dir.path(), args);
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        run(&["set", "log", "level", "debug", "--bd", "bgpd"])
            .status
            .success()
    );
    assert!(
        run(&[
            "set", "log", "level", "info", "--module", "rib", "--group", "fib"
        ])
        .status
        .success()
    );

    let out = run(&["delete", "log", "level", "--bd", "bgpd"]);
    assert!(out.status.success(), "{}", err(&out));
    assert_eq!(
        text(&out),
        "log level rule of bd=bgpd removed: it follows the next matching setting\n"
    );
    let levels = json_lines(&run(&["show", "log", "levels", "--json"]));
    let rules: Vec<&Value> = levels.iter().filter(|v| v["kind"] == "rule").collect();
    assert_eq!(rules.len(), 1, "{levels:?}");
    assert_eq!(
        (&rules[0]["bd"], &rules[0]["module"], &rules[0]["group"]),
        (&json!(null), &json!("rib"), &json!("fib"))
    );
    let persisted = std::fs::read_to_string(dir.path().join("state/levels.conf")).unwrap();
    assert!(!persisted.contains("bd=bgpd"), "{persisted}");

    // `set log level default` is the same; a scope without a rule is a failed operation.
    let out = run(&[
        "set", "log", "level", "default", "--module", "rib", "--group", "fib",
    ]);
    assert!(out.status.success(), "{}", err(&out));
    let out = run(&[
        "delete", "log", "level", "--module", "rib", "--group", "fib",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err(&out).contains("no log level rule for module=rib group=fib"),
        "{}",
        err(&out)
    );
    let out = run(&["delete", "log", "level", "--plugin-alias", "central"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("has no export level"), "{}", err(&out));
    let out = run(&["set", "log", "level", "loud"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("or default"), "{}", err(&out));
}
