//! The library's hot path against `tracing` (fmt layer into an in-memory sink) and `log` (a
//! simple logger formatting into an in-memory sink), on the same three-argument event.
//!
//! Run: `cargo bench -p edgelog --bench events`

use std::hint::black_box;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgelog::{Event, Level, LevelFilter, Options, event, text};
use edgelog_core::control::{Control, Scope};

static PEER_UP: Event = Event::new(
    "bgp",
    "peer",
    "BGP_PEER_UP",
    Level::Notice,
    "peer {peer} (AS {asn}) up after {ms} ms",
);
static ROUTE_ADD: Event = Event::new(
    "bgp",
    "route",
    "BGP_ROUTE_ADD",
    Level::Debug,
    "route {prefix} via {nexthop}",
);

fn setup() -> tempfile::TempDir {
    // Tables live on tmpfs in production (`/run`); on a disk file system every page the ring
    // dirties is tracked for writeback, which is not what a device pays.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let run = dir.path().join("run");
    let control = Control::open(&run, None).unwrap();
    control
        .set(
            Scope {
                module: Some("bgp".into()),
                group: Some("peer".into()),
                ..Scope::default()
            },
            LevelFilter::from_level(Level::Info),
        )
        .unwrap();
    edgelog::init(
        "benchd",
        Options::new()
            .run_dir(&run)
            .state_dir(dir.path().join("state"))
            .events(&[&PEER_UP, &ROUTE_ADD]),
    )
    .unwrap();
    dir
}

/// Per-event time with `threads` threads logging at once.
fn threaded(iters: u64, threads: u64, f: impl Fn(u64) + Send + Sync + 'static) -> Duration {
    let f = Arc::new(f);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                for i in 0..iters {
                    f(i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

thread_local! {
    /// The in-memory sink the `log` baseline formats into.
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct SinkLogger;

impl log::Log for SinkLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            BUF.with_borrow_mut(|buf| {
                buf.clear();
                let now = edgelog_core::Timestamp::now();
                let _ = writeln!(buf, "{now} {} {}: {}", r.level(), r.target(), r.args());
                black_box(&buf);
            });
        }
    }
    fn flush(&self) {}
}

fn benches(c: &mut Criterion) {
    let _dir = setup();
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("edgelog_enabled_3_args", |b| {
        b.iter(|| {
            event!(
                PEER_UP,
                peer = black_box(peer),
                asn = black_box(65001u32),
                ms = black_box(12u64)
            )
        })
    });
    g.bench_function("edgelog_enabled_3_args_2_threads", |b| {
        b.iter_custom(|iters| {
            threaded(iters, 2, move |i| {
                event!(PEER_UP, peer = peer, asn = 65001u32, ms = i)
            })
        })
    });
    g.bench_function("edgelog_disabled", |b| {
        b.iter(|| {
            event!(
                ROUTE_ADD,
                prefix = black_box("192.0.2.0/24"),
                nexthop = black_box(peer)
            )
        })
    });
    g.bench_function("edgelog_dynamic_text", |b| {
        b.iter(|| {
            text!(
                "bgp",
                "peer",
                Level::Notice,
                "peer {} (AS {}) up",
                black_box(peer),
                black_box(65001)
            )
        })
    });

    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .finish(),
    )
    .unwrap();
    g.bench_function("tracing_fmt_3_args", |b| {
        b.iter(|| tracing::info!(peer = %black_box(peer), asn = black_box(65001u32), ms = black_box(12u64), "peer up"))
    });
    g.bench_function("tracing_disabled", |b| {
        b.iter(|| tracing::debug!(prefix = black_box("192.0.2.0/24"), "route"))
    });

    log::set_logger(&SinkLogger).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    g.bench_function("log_simple_3_args", |b| {
        b.iter(|| {
            log::info!(
                "peer {} (AS {}) up after {} ms",
                black_box(peer),
                black_box(65001u32),
                black_box(12u64)
            )
        })
    });
    g.finish();
}

criterion_group! {
    name = events;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(50);
    targets = benches
}
criterion_main!(events);
