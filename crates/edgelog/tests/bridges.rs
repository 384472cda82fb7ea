//! Existing `log` and `tracing` calls land in the tables, target → module and group, filtered
//! by the same level rules as declared events.
#![cfg(all(feature = "log", feature = "tracing"))]

use edgelog::{Level, LevelFilter, Options};
use edgelog_core::control::{Control, Scope};
use edgelog_core::maps;
use edgelog_core::table::TableReader;
use edgelog_core::table::args::{Arg, decode};
use tracing_subscriber::layer::SubscriberExt as _;

fn texts(path: &std::path::Path) -> Vec<(Level, String, u32)> {
    let r = TableReader::open(path).unwrap();
    r.all()
        .into_iter()
        .filter_map(|e| match decode(&e.args).next() {
            Some(Arg::Str(t)) => Some((e.level, t.to_string(), e.log_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn log_and_tracing_records_are_written_by_target_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    edgelog::init(
        "appd",
        Options::new()
            .run_dir(&run)
            .state_dir(dir.path().join("state")),
    )
    .unwrap();
    edgelog::bridge::Logger::install().unwrap();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(edgelog::bridge::TablesLayer),
    )
    .unwrap();

    log::error!(target: "rib::fib", "FIB full at {} entries", 1_000_000);
    log::info!(target: "rib::fib", "not at the default level");
    tracing::warn!(target: "ospf::nbr", peer = "10.0.0.9", "neighbor down");
    let control = Control::open(&run, None).unwrap();
    let rib = Scope {
        module: Some("rib".into()),
        ..Scope::default()
    };
    control
        .set(rib, LevelFilter::from_level(Level::Info))
        .unwrap();
    log::info!(target: "rib::fib", "after the change");
    log::trace!(target: "rib::fib", "trace maps to debug: still off");
    tracing::error!(target: "ospf::nbr", area = 0, "adjacency lost");
    tracing::info!(target: "ospf::nbr", "info: off for ospf");
    log::error!(target: "weird target!", "names are made valid");

    let rib = texts(&run.join("appd/rib.appd.log"));
    assert_eq!(
        rib.iter()
            .map(|(l, t, _)| (l.name(), t.as_str()))
            .collect::<Vec<_>>(),
        [
            ("error", "FIB full at 1000000 entries"),
            ("info", "after the change")
        ]
    );
    assert_eq!(rib[0].2, maps::text_id("rib", "fib"));
    let ospf = texts(&run.join("appd/ospf.appd.log"));
    assert_eq!(
        ospf.iter()
            .map(|(l, t, _)| (l.name(), t.as_str()))
            .collect::<Vec<_>>(),
        [("error", "adjacency lost area=0")]
    );
    let weird = texts(&run.join("appd/weird_target_.appd.log"));
    assert_eq!(weird.len(), 1);
    let published = maps::read(&run.join("appd").join(maps::FILE_NAME)).unwrap();
    assert!(
        published
            .iter()
            .any(|m| m.module == "ospf" && m.group == "nbr" && m.name == "TEXT")
    );
}
