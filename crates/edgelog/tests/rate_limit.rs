//! Per-group rate limits: the excess is counted, and summarised in one entry when the window
//! (a wall-clock second) ends or on flush; other groups are untouched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgelog::{Event, Level, LevelFilter, Options, event};
use edgelog_core::control::{Control, Scope};
use edgelog_core::maps;
use edgelog_core::table::args::decode;
use edgelog_core::table::{TableReader, flags};

static FLAP: Event = Event::new(
    "bgp",
    "peer",
    "BGP_PEER_FLAP",
    Level::Warning,
    "peer {peer} flapped",
);
static ROUTE: Event = Event::new("bgp", "route", "BGP_ROUTE_ADD", Level::Warning, "route {n}");

/// Waits until early in a wall-clock second, so a burst does not straddle two windows.
fn start_of_second() {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    std::thread::sleep(Duration::from_millis(u64::from(1_010 - into)));
}

#[test]
fn a_burst_over_the_limit_is_cut_and_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    Control::open(&run, None)
        .unwrap()
        .set(Scope::global(), LevelFilter::ALL)
        .unwrap();
    edgelog::init(
        "bgpd",
        Options::new()
            .run_dir(&run)
            .state_dir(dir.path().join("state"))
            .rate_limit("bgp", "peer", 10)
            .events(&[&FLAP, &ROUTE]),
    )
    .unwrap();

    start_of_second();
    for _ in 0..100 {
        event!(FLAP, peer = "10.0.0.2");
    }
    for n in 0..30u32 {
        event!(ROUTE, n = n);
    }
    edgelog::flush_rate_limits();
    // The next window: a burst, then its summary is written by the first event after it.
    start_of_second();
    for _ in 0..15 {
        event!(FLAP, peer = "10.0.0.3");
    }
    start_of_second();
    event!(FLAP, peer = "10.0.0.4");

    let published = maps::read(&run.join("bgpd").join(maps::FILE_NAME)).unwrap();
    let r = TableReader::open(&run.join("bgpd/bgp.bgpd.log")).unwrap();
    let mut lines = Vec::new();
    for e in r.all() {
        let args: Vec<_> = decode(&e.args).collect();
        let map = published.iter().find(|m| m.id == e.log_id).unwrap();
        lines.push((
            e.flags & flags::SUMMARY != 0,
            maps::format(&map.template, &args),
        ));
    }
    let count = |text: &str| lines.iter().filter(|(_, l)| l == text).count();
    assert_eq!(count("peer 10.0.0.2 flapped"), 10);
    assert_eq!(
        lines
            .iter()
            .filter(|(_, l)| l.starts_with("route "))
            .count(),
        30
    );
    assert_eq!(count("suppressed 90 events of group peer"), 1);
    assert_eq!(count("peer 10.0.0.3 flapped"), 10);
    assert_eq!(count("suppressed 5 events of group peer"), 1);
    assert_eq!(count("peer 10.0.0.4 flapped"), 1);
    let summaries: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(summaries.len(), 2);
    // The second summary comes right before the event that rolled the window.
    assert_eq!(lines[summaries[1] + 1].1, "peer 10.0.0.4 flapped");
}
