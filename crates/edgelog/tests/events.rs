//! The library in one process: events land in their module's table with typed arguments and
//! format through the published log maps; levels decide what is recorded, most specific rule
//! first, and a change applies at the next event; module defaults; dynamic text; truncation.

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use edgelog::{Event, Level, LevelFilter, Options, event, text};
use edgelog_core::control::{Control, Scope};
use edgelog_core::maps;
use edgelog_core::table::TableReader;
use edgelog_core::table::args::decode;

static PEER_UP: Event = Event::new(
    "bgp",
    "peer",
    "BGP_PEER_UP",
    Level::Notice,
    "peer {peer} (AS {asn}) is up",
);
static PEER_DOWN: Event = Event::new(
    "bgp",
    "peer",
    "BGP_PEER_DOWN",
    Level::Error,
    "peer {peer} is down: {reason}",
);
static ROUTE_ADD: Event = Event::new(
    "bgp",
    "route",
    "BGP_ROUTE_ADD",
    Level::Debug,
    "route {prefix} via {nexthop}",
);
static CHATTER: Event = Event::new("noisy", "x", "NOISY_TICK", Level::Error, "tick {n}");

fn formatted(reader: &TableReader, maps: &[maps::LogMap]) -> Vec<String> {
    reader
        .all()
        .into_iter()
        .map(|e| {
            let args: Vec<_> = decode(&e.args).collect();
            let m = maps.iter().find(|m| m.id == e.log_id);
            let template = m.map_or("{text}", |m| m.template.as_str());
            format!("{} {}", e.level, maps::format(template, &args))
        })
        .collect()
}

#[test]
fn events_are_recorded_by_level_and_formatted_with_their_maps() {
    let run = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // Before init nothing is recorded, and nothing breaks.
    event!(PEER_DOWN, peer = "x", reason = "before init");

    edgelog::init(
        "bgpd",
        Options::new()
            .run_dir(run.path())
            .state_dir(state.path())
            .capacity(64)
            .slot_size(64)
            .module_default("noisy", LevelFilter::NONE)
            .events(&[&PEER_UP, &PEER_DOWN, &ROUTE_ADD]),
    )
    .unwrap();
    let again = edgelog::init("bgpd", Options::new().run_dir(run.path()));
    assert!(again.unwrap_err().to_string().contains("already"));

    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    // Default level: error. PEER_DOWN (error) is recorded, PEER_UP (notice) is not.
    event!(PEER_UP, peer = peer, asn = 65001u32);
    event!(PEER_DOWN, peer = peer, reason = "hold timer expired");
    event!(CHATTER, n = 1);

    let control = Control::open(run.path(), None).unwrap();
    let generation = control.generation().load(Ordering::Relaxed);
    control
        .set(
            Scope {
                module: Some("bgp".into()),
                group: Some("peer".into()),
                ..Scope::default()
            },
            LevelFilter::ALL,
        )
        .unwrap();
    assert!(control.generation().load(Ordering::Relaxed) > generation);
    // The change applies at the next event, without a restart.
    event!(PEER_UP, peer = peer, asn = 65001u32);
    event!(ROUTE_ADD, prefix = "192.0.2.0/24", nexthop = peer);
    // The route group is still at the default; the noisy module stays off under a BD rule.
    control
        .set(
            Scope {
                bd: Some("bgpd".into()),
                ..Scope::default()
            },
            LevelFilter::ALL,
        )
        .unwrap();
    event!(CHATTER, n = 2);
    event!(ROUTE_ADD, prefix = "198.51.100.0/24", nexthop = peer);
    text!("bgp", "peer", Level::Warning, "free text {}", 42);
    // Long arguments are cut to the slot and flagged.
    event!(PEER_DOWN, peer = peer, reason = "x".repeat(500));

    let dir = run.path().join("bgpd");
    let maps = maps::read(&dir.join(maps::FILE_NAME)).unwrap();
    assert_eq!(maps.len(), 4, "{maps:?}");
    let text = maps.iter().find(|m| m.name == "TEXT").unwrap();
    assert_eq!((text.module.as_str(), text.group.as_str()), ("bgp", "peer"));
    let up = maps.iter().find(|m| m.name == "BGP_PEER_UP").unwrap();
    assert_eq!(
        (up.id, up.module.as_str(), up.group.as_str()),
        (PEER_UP.id(), "bgp", "peer")
    );

    let bgp = TableReader::open(&dir.join("bgp.bgpd.log")).unwrap();
    let lines = formatted(&bgp, &maps);
    assert_eq!(
        lines[..4],
        [
            "error peer 10.0.0.2 is down: hold timer expired",
            "notice peer 10.0.0.2 (AS 65001) is up",
            "debug route 198.51.100.0/24 via 10.0.0.2",
            "warning free text 42",
        ]
    );
    assert_eq!(lines.len(), 5);
    let Some(last) = bgp.newest() else { panic!() };
    assert!(last.truncated());
    assert!(
        !dir.join("noisy.bgpd.log").exists() || {
            let t = TableReader::open(&dir.join("noisy.bgpd.log")).unwrap();
            t.entries() == 0
        }
    );
}
