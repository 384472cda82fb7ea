//! A stalled receiver never hangs the box. With the default settings, a central server that
//! accepts the connection and then reads nothing (or refuses it) must not stop the local
//! store or another remote, must not block the TCP senders or an application logging to a
//! `/dev/log`-style socket with blocking sends; its backlog spills from memory to disk, and
//! what it missed is delivered once it reads again or counted as `quota`, exactly.
//!
//! The load is 3 s by default; `EDGELOG_ISOLATION_SECS=60` runs the long version (300,000
//! TCP records and 50,000 datagrams over a minute), kept out of CI.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Central, Daemon, free_port, send_tcp};

/// These tests time senders (a p99): they run one at a time, not beside each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long [`offer_load`] offers records: 3 s, or `EDGELOG_ISOLATION_SECS`.
fn load_secs() -> u64 {
    std::env::var("EDGELOG_ISOLATION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// Records of [`offer_load`]: TCP (50,000 a second for 3 s, 300,000 over a long run), then
/// datagrams (10,000 a second, at most 50,000).
fn tcp_records() -> u64 {
    if load_secs() <= 3 { 150_000 } else { 300_000 }
}

fn dgram_records() -> u64 {
    (load_secs() * 10_000).min(50_000)
}

/// A TCP sender paced over the load's seconds, and an application sending datagrams at
/// 10,000/s with blocking sends, as glibc's syslog(3) does; neither may be held up: the
/// application's p99 send stays under 5 ms.
fn offer_load(d: &Daemon, port: u16) {
    let (tcp_n, dgrams) = (tcp_records(), dgram_records());
    let pace = Duration::from_secs(load_secs()).as_nanos() as u64 / tcp_n;
    let tcp = std::thread::spawn(move || {
        let started = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = Vec::new();
        for seq in 0..tcp_n {
            writeln!(buf, "<13>1 - h tcpapp - - - tcp seq={seq}").unwrap();
            if seq % 500 == 499 {
                s.write_all(&buf).unwrap();
                buf.clear();
                let due = started + Duration::from_nanos(pace * seq);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        s.write_all(&buf).unwrap();
        started.elapsed()
    });
    let sock = UnixDatagram::unbound().unwrap();
    sock.connect(d.run_dir().join("log.sock")).unwrap();
    let mut waits = Vec::with_capacity(dgrams as usize);
    let start = Instant::now();
    for seq in 0..dgrams {
        let due = start + Duration::from_micros(100 * seq);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let msg = format!("<13>Dec  2 10:00:00 dgapp: dg seq={seq}");
        let t = Instant::now();
        sock.send(msg.as_bytes()).unwrap();
        waits.push(t.elapsed());
    }
    let tcp_took = tcp.join().unwrap();
    waits.sort_unstable();
    let p99 = waits[waits.len() * 99 / 100];
    assert!(p99 < Duration::from_millis(5), "send p99 {p99:?}");
    assert!(
        tcp_took < Duration::from_secs(load_secs() + 7),
        "the TCP sender was held up: {tcp_took:?}"
    );
}

/// The config of these tests: `/dev/log`-style and TCP sources, a store, and `remotes`.
fn config(port: u16, remotes: &str) -> String {
    format!(
        r#"
[sources.devlog]
type = "unix_datagram"
path = "log.sock"

[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.store]
type = "file_store"
compress = false
max_file_size = "1GiB"
{remotes}"#
    )
}

/// At exit every record a destination took is accounted for: acknowledged by the receiver,
/// kept in its queue on disk, or dropped by reason.
fn assert_accounted(counters: &serde_json::Value, dest: &str) {
    let d = &counters["destinations"][dest];
    let dropped: u64 = d["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap_or(0))
        .sum();
    let kept = n(&d["network"]["queued"]["records"]);
    assert_eq!(
        n(&d["written"]),
        n(&d["network"]["acknowledged"]) + kept + dropped,
        "{dest}: {counters}"
    );
}

fn total() -> u64 {
    tcp_records() + dgram_records()
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn a_stalled_receiver_stops_no_other_destination_and_no_sender() {
    let _serial = one_at_a_time();
    // The central server: accepts, then reads nothing until told to.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let central = listener.local_addr().unwrap().port();
    let (unstall, stalled) = mpsc::channel::<()>();
    let (seen_tx, seen) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let _ = stalled.recv();
        listener.set_nonblocking(true).unwrap();
        let mut conns = vec![conn];
        // A reconnect while stalled is accepted and read too.
        while let Ok((c, _)) = listener.accept() {
            conns.push(c);
        }
        for c in conns {
            let tx = seen_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(c).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
    });

    // A healthy second remote, reading everything.
    let healthy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let healthy = healthy_listener.local_addr().unwrap().port();
    let healthy_lines = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let lines = healthy_lines.clone();
        std::thread::spawn(move || {
            for c in healthy_listener.incoming() {
                let Ok(c) = c else { break };
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for _ in BufReader::new(c).lines().map_while(Result::ok) {
                        lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
    }

    let port = free_port();
    let d = Daemon::start(Some(&config(
        port,
        &format!(
            r#"
[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
stall_after = "1s"
stall_timeout = "10m"

[destinations.healthy]
type = "syslog_tcp"
address = "127.0.0.1:{healthy}"
framing = "lf"
"#
        ),
    )));

    offer_load(&d, port);

    // The store got everything the daemon took; what the datagram source could not take at
    // once is counted, never silently lost.
    d.wait_for_counters(Duration::from_secs(30), |c| {
        let dropped = n(&c["sources"]["devlog"]["dropped"]["queue_full"]);
        n(&c["destinations"]["store"]["written"]) + dropped == total()
    });
    let c = d.counters();
    let dg_dropped = n(&c["sources"]["devlog"]["dropped"]["queue_full"]);
    assert_eq!(dg_dropped, 0, "a pipeline with room dropped datagrams: {c}");

    // The healthy remote got everything, while the other one stalled.
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthy_lines.load(std::sync::atomic::Ordering::Relaxed) < total() {
        assert!(
            Instant::now() < deadline,
            "the healthy remote was held up: {}",
            d.counters()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The stall is shown, and said once.
    d.wait_for_counters(Duration::from_secs(10), |c| {
        c["destinations"]["central"]["network"]["state"] == "stalled"
    });
    assert_eq!(d.said("receiver stalled"), 1, "{}", d.stderr());

    // Its backlog went past the memory queue (100,000 records) and spilled to disk.
    let c = d.counters();
    assert!(
        n(&c["destinations"]["central"]["network"]["spilled"]["records"]) > 0,
        "{c}"
    );
    assert_eq!(d.said("spilling to disk"), 1, "{}", d.stderr());

    // The receiver reads again: it gets every record, except those the spill quota evicted,
    // which are counted exactly (a record evicted on its way and then taken is delivered,
    // not counted).
    unstall.send(()).unwrap();
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = d.counters();
        let quota = n(&c["destinations"]["central"]["dropped"]["quota"]);
        while let Ok(line) = seen.try_recv() {
            got.insert(
                line.rsplit_once(" seq=")
                    .map(|(a, b)| format!("{}{b}", &a[a.len() - 3..]))
                    .unwrap(),
            );
        }
        let queued = n(&c["destinations"]["central"]["network"]["queued"]["records"]);
        if queued == 0 && got.len() as u64 + quota >= total() {
            assert_eq!(got.len() as u64 + quota, total(), "{c}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "central has {} distinct, {quota} over quota, of {}: {c}",
            got.len(),
            total()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d.said("spilled records all sent") >= 1, "{}", d.stderr());
    assert_eq!(
        d.counters()["destinations"]["central"]["network"]["state"],
        "up"
    );
    let (_, dir) = d.stop();
    let store = std::fs::read_to_string(dir.path().join("state/store/current.log")).unwrap();
    assert_eq!(store.lines().count() as u64, total() - dg_dropped);
}

#[test]
fn a_receiver_that_takes_nothing_is_dropped_and_dialled_again_after_stall_timeout() {
    let _serial = one_at_a_time();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let central = listener.local_addr().unwrap().port();
    let (accepted_tx, accepted) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            let Ok(c) = c else { break };
            held.push(c); // never read
            if accepted_tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    let port = free_port();
    let d = Daemon::start(Some(&format!(
        r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
stall_after = "500ms"
stall_timeout = "2s"
"#
    )));
    // Enough to fill the kernel's buffers towards the receiver, so a write blocks.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let line = format!("<13>1 - h app - - - {}\n", "x".repeat(1000));
    for _ in 0..20_000 {
        s.write_all(line.as_bytes()).unwrap();
    }
    let first = accepted.recv_timeout(Duration::from_secs(10)).unwrap();
    let second = accepted.recv_timeout(Duration::from_secs(15)).unwrap();
    let gap = second - first;
    assert!(gap >= Duration::from_secs(2), "redialled after {gap:?}");
    assert!(d.said("receiver stalled") >= 1, "{}", d.stderr());
    assert!(
        d.stderr().contains("took nothing for 2s: reconnecting"),
        "{}",
        d.stderr()
    );
    drop(d);
}

#[test]
fn a_receiver_that_refuses_connections_stops_nothing_else() {
    let _serial = one_at_a_time();
    // A port nobody listens on.
    let refused = free_port();
    let port = free_port();
    let d = Daemon::start(Some(&config(
        port,
        &format!(
            "[destinations.central]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{refused}\"\n"
        ),
    )));
    offer_load(&d, port);
    d.wait_for_counters(Duration::from_secs(30), |c| {
        n(&c["destinations"]["store"]["written"]) == total()
    });
    let c = d.counters();
    let central = &c["destinations"]["central"];
    assert_eq!(central["network"]["state"], "down", "{c}");
    // Everything it could not send waits in its queue — past the memory part, on disk — or
    // went over the spill quota, counted.
    assert!(n(&central["network"]["spilled"]["records"]) > 0, "{c}");
    assert_eq!(
        n(&central["network"]["queued"]["records"]) + n(&central["dropped"]["quota"]),
        total(),
        "{c}"
    );
    assert_eq!(
        n(&c["sources"]["devlog"]["dropped"]["queue_full"]),
        0,
        "{c}"
    );
    let (counters, _) = d.stop();
    assert_accounted(&counters, "central");
    assert_eq!(
        n(&counters["destinations"]["central"]["dropped"]["shutdown"]),
        0,
        "a spill queue keeps what memory held: {counters}"
    );
}

#[test]
fn past_the_spill_quota_the_oldest_spilled_records_go_and_are_counted_exactly() {
    let _serial = one_at_a_time();
    const N: u64 = 50_000;
    let (port, central) = (free_port(), free_port());
    let d = Daemon::start(Some(&format!(
        r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
max_backoff = "200ms"
queue = {{ max_records = 1000, spill_max_bytes = "1MiB" }}
"#
    )));
    // Nobody listens: 1,000 wait in memory, the disk part takes what its quota holds, the
    // oldest of the disk part go.
    send_tcp(port, N);
    d.wait_for_counters(Duration::from_secs(30), |c| {
        let central = &c["destinations"]["central"];
        n(&central["network"]["queued"]["records"]) + n(&central["dropped"]["quota"]) == N
    });
    let quota = n(&d.counters()["destinations"]["central"]["dropped"]["quota"]);
    assert!(quota > 0, "{}", d.counters());
    assert_eq!(
        d.counters()["destinations"]["central"]["network"]["state"],
        "down"
    );

    let rx = Central::start(central);
    let got = rx.distinct(N - quota, Duration::from_secs(30));
    d.wait_for_counters(Duration::from_secs(10), |c| {
        n(&c["destinations"]["central"]["network"]["queued"]["records"]) == 0
    });
    let c = d.counters();
    // Exactly: delivered + over quota = sent. The memory part (the oldest 1,000) arrived
    // whole; of the disk part, the newest.
    assert_eq!(n(&c["destinations"]["central"]["dropped"]["quota"]), quota);
    assert_eq!(got.len() as u64 + quota, N, "{c}");
    let expected: Vec<u64> = (0..1000).chain(1000 + quota..N).collect();
    assert_eq!(got, expected, "{c}");
    assert_eq!(c["destinations"]["central"]["network"]["state"], "up");
    assert_eq!(
        n(&c["destinations"]["central"]["dropped"]["evicted"]),
        0,
        "{c}"
    );
}

#[test]
fn a_backlog_in_memory_at_stop_is_kept_on_disk_and_sent_after_the_restart() {
    let _serial = one_at_a_time();
    const N: u64 = 5_000;
    let (port, central) = (free_port(), free_port());
    let cfg = format!(
        r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
max_backoff = "200ms"
"#
    );
    let d = Daemon::start(Some(&cfg));
    send_tcp(port, N);
    d.wait_for_counters(Duration::from_secs(30), |c| {
        n(&c["destinations"]["central"]["network"]["queued"]["records"]) == N
    });
    // All in memory (under the memory part's bound): nothing spilled yet.
    assert_eq!(
        n(&d.counters()["destinations"]["central"]["network"]["spilled"]["records"]),
        0
    );
    let (counters, dir) = d.stop();
    assert_eq!(
        n(&counters["destinations"]["central"]["dropped"]["shutdown"]),
        0,
        "{counters}"
    );

    let rx = Central::start(central);
    let d = Daemon::start_in(dir, Some(&cfg), std::process::Stdio::null());
    let got = rx.distinct(N, Duration::from_secs(30));
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    let (counters, _) = d.stop();
    assert_eq!(
        n(&counters["destinations"]["central"]["network"]["queued"]["records"]),
        0,
        "{counters}"
    );
}

#[test]
fn block_pauses_tcp_but_never_a_datagram_sender() {
    let _serial = one_at_a_time();
    let (port, central) = (free_port(), free_port());
    let d = Daemon::start(Some(&config(
        port,
        &format!(
            r#"
[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
max_backoff = "200ms"
queue = {{ kind = "memory", max_records = 1000, when_full = "block" }}
"#
        ),
    )));
    // The receiver is down: the queue fills, and `block` holds up the pipeline.
    const N: u64 = 20_000;
    let tcp = std::thread::spawn(move || send_tcp(port, N));
    d.wait_for_counters(Duration::from_secs(10), |c| {
        n(&c["destinations"]["central"]["network"]["queued"]["records"]) == 1000
    });
    // An application logging to the datagram socket meanwhile is never blocked; what the
    // pipeline cannot take is counted.
    let sock = UnixDatagram::unbound().unwrap();
    sock.connect(d.run_dir().join("log.sock")).unwrap();
    let mut waits = Vec::new();
    for seq in 0..10_000u64 {
        let t = Instant::now();
        sock.send(format!("<13>Dec  2 10:00:00 dgapp: dg seq={seq}").as_bytes())
            .unwrap();
        waits.push(t.elapsed());
    }
    waits.sort_unstable();
    let p99 = waits[waits.len() * 99 / 100];
    assert!(p99 < Duration::from_millis(5), "send p99 {p99:?}");
    d.wait_for_counters(Duration::from_secs(10), |c| {
        n(&c["sources"]["devlog"]["dropped"]["queue_full"]) > 0
    });
    // The control socket still answers, and the TCP source is paused: the store waits too
    // (the documented cost of `block`).
    assert!(n(&d.counters()["destinations"]["store"]["written"]) < N);

    // The receiver comes back: everything TCP sent reaches it and the store.
    let rx = Central::start(central);
    let got = rx.distinct(N, Duration::from_secs(60));
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    tcp.join().unwrap();
    let c = d.counters();
    let dg_dropped = n(&c["sources"]["devlog"]["dropped"]["queue_full"]);
    d.wait_for_counters(Duration::from_secs(30), |c| {
        n(&c["destinations"]["store"]["written"]) + dg_dropped == N + 10_000
    });
    let (counters, _) = d.stop();
    assert_eq!(
        n(&counters["sources"]["devlog"]["received"]),
        10_000,
        "{counters}"
    );
    assert_accounted(&counters, "central");
}

#[test]
fn at_exit_a_memory_queue_accounts_for_every_record() {
    let _serial = one_at_a_time();
    // A receiver that takes nothing and a memory queue: at SIGTERM, after the grace period,
    // what is left is counted `shutdown`, the rest `evicted`, never lost uncounted.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let central = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().map_while(Result::ok) {
            held.push(c);
        }
    });
    let port = free_port();
    let d = Daemon::start(Some(&format!(
        r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
queue = {{ kind = "memory", max_records = 20000 }}
"#
    )));
    // More than the kernel's socket buffers towards the receiver hold (a few MB).
    const N: u64 = 300_000;
    send_tcp(port, N);
    d.wait_for_counters(Duration::from_secs(30), |c| {
        n(&c["destinations"]["central"]["written"]) == N
    });
    let (counters, _) = d.stop();
    assert_accounted(&counters, "central");
    let dropped = &counters["destinations"]["central"]["dropped"];
    assert!(
        n(&dropped["shutdown"]) > 0 && n(&dropped["evicted"]) > 0,
        "{counters}"
    );
}
