//! HTTP sources are bounded against hostile or broken clients: slow bodies share one budget
//! (beyond it: 503 with Retry-After, counted), a body that does not arrive in time or trickles
//! in is refused, idle and header-less connections are closed, and beyond `max_connections`
//! idle connections give way to new ones (counted) — while a legitimate request, the other
//! sources and the control socket still get through, even with more idle connections than the
//! daemon has file descriptors.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Daemon, free_port};

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Peak resident memory of a process, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn config(port: u16, extra: &str) -> String {
    format!(
        "[sources.gelf]\ntype = \"gelf_http\"\naddress = \"127.0.0.1:{port}\"\n{extra}\n\
         [destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n"
    )
}

/// A request's status line, or `None` if the connection was closed without one.
fn status_of(s: &mut TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    text.get(9..12).and_then(|c| c.parse().ok())
}

fn legitimate_post(port: u16) -> (u16, Duration) {
    let started = Instant::now();
    let body = br#"{"version":"1.1","host":"h","short_message":"legit seq=1"}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /gelf HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    (status_of(&mut s).unwrap_or(0), started.elapsed())
}

#[test]
fn slow_bodies_share_one_budget_and_time_out() {
    let port = free_port();
    let budget = 32 << 20;
    let d = Daemon::start(Some(&format!(
        "http_body_budget = \"32MiB\"\n{}",
        config(port, "max_body = \"10MiB\"\nbody_timeout = \"3s\"")
    )));
    let idle_rss = peak_rss(d.pid().as_raw() as u32);
    // 150 clients each announce a 10 MiB body and send all of it but the last byte.
    const CLIENTS: usize = 150;
    let chunk = vec![b'x'; 1 << 20];
    let mut held = Vec::new();
    let mut busy = 0;
    for _ in 0..CLIENTS {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /gelf HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            10 << 20
        )
        .unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sent = 0;
        while sent + chunk.len() < (10 << 20) {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        if s.write_all(&chunk[..chunk.len() - 1]).is_err() || sent < (10 << 20) - chunk.len() {
            // Refused before its body was read: a 503 with Retry-After.
            busy += 1;
        }
        held.push(s);
    }
    let peak = peak_rss(d.pid().as_raw() as u32);
    assert!(
        peak < idle_rss + budget + (16 << 20),
        "peak RSS {} MiB (idle {} MiB) with {CLIENTS} slow 10 MiB bodies",
        peak >> 20,
        idle_rss >> 20
    );
    assert!(busy >= CLIENTS - 4, "only {busy} refused");
    // The held bodies time out (408) and free the budget; then a legitimate POST is taken.
    std::thread::sleep(Duration::from_secs(4));
    let (code, took) = legitimate_post(port);
    assert_eq!(code, 202, "after the slow bodies timed out");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let c = d.counters();
    let src = &c["sources"]["gelf"];
    assert!(n(&src["dropped"]["busy"]) >= (CLIENTS - 4) as u64, "{c}");
    assert!(
        n(&src["dropped"]["rejected"]) >= 1,
        "timed-out bodies are refused: {c}"
    );
    assert_eq!(n(&src["received"]), 1, "{c}");
    drop(held);
    d.stop();
}

#[test]
fn idle_connections_give_way_and_busy_ones_refuse_the_surplus() {
    let port = free_port();
    let d = Daemon::start(Some(&config(
        port,
        "max_connections = 5\nheader_timeout = \"2s\"",
    )));
    // Five idle connections hold the limit.
    let mut idle: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A legitimate client takes the place of the oldest idle one, at once.
    let (code, took) = legitimate_post(port);
    assert_eq!(code, 202);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let started = Instant::now();
    assert_eq!(status_of(&mut idle[0]), None);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the oldest was not closed"
    );
    d.wait_for_counters(Duration::from_secs(5), |c| {
        n(&c["sources"]["gelf"]["dropped"]["connection_limit"]) == 1
    });
    // A client that sends no headers is closed after header_timeout.
    for s in &mut idle[1..] {
        assert_eq!(status_of(s), None);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Five connections busy with a request (their bodies yet to come): the sixth is refused.
    let mut busy: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                s,
                "POST /gelf HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut surplus = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(status_of(&mut surplus), None);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    d.wait_for_counters(Duration::from_secs(5), |c| {
        n(&c["sources"]["gelf"]["dropped"]["connection_limit"]) == 2
    });
    // Their bodies never come: refused once the grace of `min_body_rate` is over.
    for s in &mut busy {
        assert_eq!(status_of(s), Some(408));
    }
    assert_eq!(legitimate_post(port).0, 202);
    d.stop();
}

#[test]
fn a_bulk_body_of_more_than_ten_thousand_messages_is_refused_whole() {
    let port = free_port();
    let d = Daemon::start(Some(&config(port, "")));
    let post = |n: usize| {
        let line = r#"{"version":"1.1","host":"h","short_message":"m"}"#;
        let body = vec![line; n].join("\n");
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /gelf HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        status_of(&mut s)
    };
    assert_eq!(post(10_001), Some(413));
    assert_eq!(post(10_000), Some(202));
    let c = d.counters();
    assert_eq!(n(&c["sources"]["gelf"]["received"]), 10_000, "{c}");
    assert_eq!(n(&c["sources"]["gelf"]["dropped"]["rejected"]), 1, "{c}");
    d.stop();
}

#[test]
fn a_body_that_trickles_in_is_refused_once_its_grace_is_over() {
    let port = free_port();
    let d = Daemon::start(Some(&config(port, "min_body_rate = \"1KiB\"")));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /gelf HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    // 100 bytes a second, a tenth of the minimum: refused after the 5 s grace, long before
    // `body_timeout` (30 s).
    let started = Instant::now();
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..100 {
                if s.write_all(&[b'x'; 10]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    assert_eq!(status_of(&mut s), Some(408));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "{took:?}"
    );
    writer.join().unwrap();
    let c = d.counters();
    assert_eq!(n(&c["sources"]["gelf"]["dropped"]["rejected"]), 1, "{c}");
    // A body at a normal pace is taken.
    assert_eq!(legitimate_post(port).0, 202);
    d.stop();
}

#[test]
fn more_idle_connections_than_file_descriptors_lock_nobody_out() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // The test itself needs more than 1,100 descriptors.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard.min(4096), hard).unwrap();
    let (port, tcp) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}\n[sources.net]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{tcp}\"\n",
        config(port, "")
    );
    // The daemon runs with at most 1,024 descriptors.
    let d = Daemon::start_wrapped(dir, &cfg, &["prlimit", "--nofile=1024:1024", "--"]);
    let idle: Vec<TcpStream> = (0..1100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The surplus over max_connections (256) gave way, counted.
    d.wait_for_counters(Duration::from_secs(10), |c| {
        n(&c["sources"]["gelf"]["dropped"]["connection_limit"]) >= 1100 - 256
    });
    // The control socket answers (`edgelog status` uses it), ...
    let (code, status) = common::control_call(&d.run_dir(), "GET", "/v1/status");
    assert_eq!(code, 200, "{status}");
    // ... a legitimate POST is taken at once, in the place of an idle connection, ...
    let (code, took) = legitimate_post(port);
    assert_eq!(code, 202);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // ... and another source still accepts.
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    s.write_all(b"<13>1 - h app - - - over tcp\n").unwrap();
    drop(s);
    let got = d.records(2, Duration::from_secs(10));
    let texts: Vec<&str> = got.iter().filter_map(|r| r["message"].as_str()).collect();
    assert!(texts.contains(&"over tcp"), "{texts:?}");
    assert!(texts.contains(&"legit seq=1"), "{texts:?}");
    drop(idle);
    d.stop();
}
