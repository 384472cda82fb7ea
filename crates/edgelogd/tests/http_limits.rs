//! HTTP sources are bounded against hostile or broken clients: slow bodies share one budget
//! (beyond it: 503 with Retry-After, counted), a body that does not arrive in time is refused,
//! idle and header-less connections are closed, and connections beyond `max_connections` are
//! refused and counted — while a legitimate request still gets through.

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
    let d = Daemon::start(Some(&config(
        port,
        "max_body = \"10MiB\"\nbody_timeout = \"3s\"",
    )));
    let idle_rss = peak_rss(d.pid().as_raw() as u32);
    // Thirty clients each announce a 10 MiB body and send all of it but the last byte.
    const CLIENTS: usize = 30;
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
    let budget = 64 << 20;
    assert!(
        peak < idle_rss + budget + (16 << 20),
        "peak RSS {} MiB (idle {} MiB) with {CLIENTS} slow 10 MiB bodies",
        peak >> 20,
        idle_rss >> 20
    );
    assert!(busy >= CLIENTS - 7, "only {busy} refused");
    // The held bodies time out (408) and free the budget; then a legitimate POST is taken.
    std::thread::sleep(Duration::from_secs(4));
    let (code, took) = legitimate_post(port);
    assert_eq!(code, 202, "after the slow bodies timed out");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let c = d.counters();
    let src = &c["sources"]["gelf"];
    assert!(n(&src["dropped"]["busy"]) >= (CLIENTS - 7) as u64, "{c}");
    assert!(
        n(&src["dropped"]["rejected"]) >= 1,
        "timed-out bodies are refused: {c}"
    );
    assert_eq!(n(&src["received"]), 1, "{c}");
    drop(held);
    d.stop();
}

#[test]
fn idle_and_surplus_connections_are_closed_and_counted() {
    let port = free_port();
    let d = Daemon::start(Some(&config(
        port,
        "max_connections = 5\nheader_timeout = \"1s\"",
    )));
    // Five idle connections hold the limit; the rest are closed at once.
    let mut idle: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(status_of(&mut s), None, "a surplus connection was served");
    }
    d.wait_for_counters(Duration::from_secs(5), |c| {
        n(&c["sources"]["gelf"]["dropped"]["connection_limit"]) == 5
    });
    // A client that sends no headers is closed after header_timeout; then there is room.
    let started = Instant::now();
    for s in &mut idle {
        assert_eq!(status_of(s), None);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (code, took) = legitimate_post(port);
    assert_eq!(code, 202);
    assert!(took < Duration::from_secs(1), "{took:?}");
    d.stop();
}
