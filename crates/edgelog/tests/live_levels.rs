//! A level set from another process changes what a running application records, at its next
//! event, and persists: the application is a child process (this test binary run again with
//! `EDGELOG_LIVE_CHILD` set) logging in a loop; the parent changes levels through the control
//! block, exactly as `edgelog set log level` does.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgelog::{Event, Level, LevelFilter, Options, event};
use edgelog_core::control::{Control, Scope};
use edgelog_core::table::TableReader;

static TICK: Event = Event::new("rib", "fib", "RIB_FIB_TICK", Level::Info, "tick {n}");

/// The child's body; does nothing unless the parent set `EDGELOG_LIVE_CHILD`.
#[test]
fn child_app() {
    let Ok(dir) = std::env::var("EDGELOG_LIVE_CHILD") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
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
        event!(TICK, n = n);
        n += 1;
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_level_set_by_another_process_applies_at_the_next_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_app", "--test-threads=1"])
        .env("EDGELOG_LIVE_CHILD", dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let table = dir.path().join("run/ribd/rib.ribd.log");
    wait_until("the child opened its table", || table.exists());
    let reader = TableReader::open(&table).unwrap();
    // info is below the default (error): nothing recorded.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(reader.head(), 1, "recorded at the default level");

    let control = Control::open(&dir.path().join("run"), Some(&dir.path().join("state"))).unwrap();
    let rib = Scope {
        bd: Some("ribd".into()),
        module: Some("rib".into()),
        ..Scope::default()
    };
    control
        .set(rib.clone(), LevelFilter::from_level(Level::Info))
        .unwrap();
    wait_until("ticks are recorded", || reader.head() > 20);

    control.set(rib, LevelFilter::NONE).unwrap();
    // Let an event in flight land, then nothing more may come.
    std::thread::sleep(Duration::from_millis(50));
    let stopped = reader.head();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(reader.head(), stopped, "events recorded after level none");
    child.kill().unwrap();
    child.wait().unwrap();

    // The rules were persisted to the state dir.
    let persisted = std::fs::read_to_string(dir.path().join("state/levels.conf")).unwrap();
    assert!(persisted.contains("none bd=ribd module=rib"), "{persisted}");
}
