//! A stalled receiver never hangs the box. With the default settings, a central server that
//! accepts the connection and then reads nothing must not stop the local store, must not
//! block the TCP senders or an application logging to a `/dev/log`-style socket with blocking
//! sends, and what it missed is delivered once it reads again or counted as evicted.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Daemon, free_port};

/// These tests time senders (a p99): they run one at a time, not beside each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records of [`offer_load`]: TCP, then datagrams.
const TCP: u64 = 150_000;
const DGRAMS: u64 = 30_000;

/// A TCP sender at 50,000 records/s, and an application sending datagrams at 10,000/s with
/// blocking sends, as glibc's syslog(3) does, for three seconds; neither may be held up: the
/// application's p99 send stays under 5 ms.
fn offer_load(d: &Daemon, port: u16) {
    let tcp = std::thread::spawn(move || {
        let started = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = Vec::new();
        for seq in 0..TCP {
            writeln!(buf, "<13>1 - h tcpapp - - - tcp seq={seq}").unwrap();
            if seq % 500 == 499 {
                s.write_all(&buf).unwrap();
                buf.clear();
                let due = started + Duration::from_micros(20 * seq);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        s.write_all(&buf).unwrap();
        started.elapsed()
    });
    let sock = UnixDatagram::unbound().unwrap();
    sock.connect(d.run_dir().join("log.sock")).unwrap();
    let mut waits = Vec::with_capacity(DGRAMS as usize);
    let start = Instant::now();
    for seq in 0..DGRAMS {
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
        tcp_took < Duration::from_secs(10),
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
        n(&c["destinations"]["store"]["written"]) + dropped == TCP + DGRAMS
    });
    let c = d.counters();
    let dg_dropped = n(&c["sources"]["devlog"]["dropped"]["queue_full"]);
    assert_eq!(dg_dropped, 0, "a pipeline with room dropped datagrams: {c}");

    // The healthy remote got everything, while the other one stalled.
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthy_lines.load(std::sync::atomic::Ordering::Relaxed) < TCP + DGRAMS {
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
    assert_eq!(
        d.stderr().matches("receiver stalled").count(),
        1,
        "{}",
        d.stderr()
    );

    // The receiver reads again: it gets every record, except those its queue evicted,
    // which are counted exactly.
    unstall.send(()).unwrap();
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = d.counters();
        let evicted = n(&c["destinations"]["central"]["dropped"]["evicted"]);
        while let Ok(line) = seen.try_recv() {
            got.insert(
                line.rsplit_once(" seq=")
                    .map(|(a, b)| format!("{}{b}", &a[a.len() - 3..]))
                    .unwrap(),
            );
        }
        // Records the queue evicted while they were on the wire are counted as evicted and
        // also arrive: at most a batch (500) is counted twice, never one lost uncounted.
        let accounted = got.len() as u64 + evicted;
        let queued = n(&c["destinations"]["central"]["network"]["queued"]["records"]);
        if queued == 0 && accounted >= TCP + DGRAMS {
            assert!(accounted - (TCP + DGRAMS) <= 500, "{accounted}: {c}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "central has {} distinct, {evicted} evicted, of {}: {c}",
            got.len(),
            TCP + DGRAMS
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        d.counters()["destinations"]["central"]["network"]["state"],
        "up"
    );
    let (_, dir) = d.stop();
    let store = std::fs::read_to_string(dir.path().join("state/store/current.log")).unwrap();
    assert_eq!(store.lines().count() as u64, TCP + DGRAMS - dg_dropped);
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
    assert!(d.stderr().contains("receiver stalled"), "{}", d.stderr());
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
        n(&c["destinations"]["store"]["written"]) == TCP + DGRAMS
    });
    let c = d.counters();
    let central = &c["destinations"]["central"];
    assert_eq!(central["network"]["state"], "down", "{c}");
    // Everything it could not send waits in its queue, or was evicted from it, counted.
    assert_eq!(
        n(&central["network"]["queued"]["records"]) + n(&central["dropped"]["evicted"]),
        TCP + DGRAMS,
        "{c}"
    );
    assert_eq!(
        n(&c["sources"]["devlog"]["dropped"]["queue_full"]),
        0,
        "{c}"
    );
}
