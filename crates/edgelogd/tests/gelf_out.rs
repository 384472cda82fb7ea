//! GELF destinations: UDP (chunked, compressed) and TCP into a second edgelogd's GELF
//! sources, every record checked with the device facts it carries; HTTP against a receiver
//! that answers 202, 429, 500 and 400 in turn — accepted records arrive exactly once, the
//! refused ones are in the dead-letter file, and the counters say so.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, free_port, seqs};

const WAIT: Duration = Duration::from_secs(20);

fn sender(dest: &str) -> Daemon {
    Daemon::start_in(
        tempfile::tempdir().unwrap(),
        Some(&format!(
            "[device]\nserial_number = \"SN-42\"\nelement_role = \"spine\"\n\n[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n{dest}"
        )),
        Stdio::null(),
    )
}

fn send(d: &Daemon, from: u64, n: u64, pad: usize) {
    let s = UnixDatagram::unbound().unwrap();
    for i in from..from + n {
        let msg = format!("<12>gelfout[7]: record seq={i} {}", "p".repeat(pad));
        s.send_to(msg.as_bytes(), d.run_dir().join("log.sock"))
            .unwrap();
    }
}

#[test]
fn gelf_udp_and_tcp_into_edgelogd() {
    let (udp, tcp) = (free_port(), free_port());
    let rx = Daemon::start(Some(&format!(
        "[sources.gu]\ntype = \"gelf_udp\"\naddress = \"127.0.0.1:{udp}\"\n\n[sources.gt]\ntype = \"gelf_tcp\"\naddress = \"127.0.0.1:{tcp}\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n"
    )));
    let tx = sender(&format!(
        "[destinations.viaudp]\ntype = \"gelf_udp\"\naddress = \"127.0.0.1:{udp}\"\nchunk_size = 600\ncompress = false\n\n[destinations.viatcp]\ntype = \"gelf_tcp\"\naddress = \"127.0.0.1:{tcp}\"\n"
    ));
    // Every other record is long enough to be chunked.
    for i in 0..40 {
        send(&tx, i, 1, if i % 2 == 1 { 2000 } else { 0 });
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = rx.records(80, WAIT);
    for source in ["gu", "gt"] {
        let of: Vec<_> = got
            .iter()
            .filter(|r| r["source"] == source)
            .cloned()
            .collect();
        let mut s = seqs(&of);
        s.sort_unstable();
        assert_eq!(s, (0..40).collect::<Vec<_>>(), "via {source}");
        for r in &of {
            assert_eq!(r["format"], "gelf");
            assert_eq!(r["app_name"], "gelfout", "{r}");
            assert_eq!(r["proc_id"], "7", "{r}");
            assert_eq!(r["severity"], "warning", "{r}");
            assert_eq!(r["fields"]["serial_number"], "SN-42", "{r}");
            assert_eq!(r["fields"]["element_role"], "spine", "{r}");
            assert_eq!(r["fields"]["source"], "devlog", "{r}");
        }
    }
    let (rxc, _) = rx.stop();
    assert_eq!(rxc["sources"]["gu"]["malformed"], 0, "{rxc}");
    tx.stop();
}

/// What the scripted receiver saw: per request, the status it answered and the records.
type Requests = Arc<Mutex<Vec<(u16, Vec<String>)>>>;

/// A GELF HTTP receiver answering with `script` in turn.
fn scripted_receiver(script: Vec<u16>) -> (u16, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    // One thread per connection: a client may hold one open while it opens another.
    let turn = Arc::new(Mutex::new(0usize));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let (seen, turn, script) = (seen.clone(), turn.clone(), script.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut head = BTreeMap::new();
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    loop {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            head.insert(k.to_ascii_lowercase(), v.trim().to_owned());
                        }
                    }
                    let len: usize = head["content-length"].parse().unwrap();
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    if head.get("content-encoding").map(String::as_str) == Some("gzip") {
                        let mut plain = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut plain)
                            .unwrap();
                        body = plain;
                    }
                    let status = {
                        let mut t = turn.lock().unwrap();
                        *t += 1;
                        script[(*t - 1) % script.len()]
                    };
                    let records = String::from_utf8(body)
                        .unwrap()
                        .lines()
                        .map(str::to_owned)
                        .collect();
                    seen.lock().unwrap().push((status, records));
                    let reason = match status {
                        202 => "Accepted",
                        429 => "Too Many Requests\r\nRetry-After: 1",
                        400 => "Bad Request",
                        _ => "Internal Server Error",
                    };
                    let body = if status == 400 { "invalid GELF" } else { "" };
                    let _ = write!(
                        w,
                        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
        }
    });
    (port, log)
}

#[test]
fn gelf_http_transactions_retry_and_dead_letters() {
    let (port, log) = scripted_receiver(vec![202, 429, 500, 400]);
    let tx = sender(&format!(
        "[destinations.graylog]\ntype = \"gelf_http\"\nurl = \"http://127.0.0.1:{port}/gelf\"\nmax_backoff = \"200ms\"\n"
    ));
    // Each 429 costs its Retry-After (1 s): a handful of records keeps the test short.
    const N: u64 = 8;
    send(&tx, 0, N, 0);
    // Every record ends up either accepted (202) or dead-lettered (400).
    let deadline = Instant::now() + WAIT;
    let (accepted, refused) = loop {
        let entries = log.lock().unwrap().clone();
        let pick = |code: u16| -> Vec<u64> {
            let recs: Vec<serde_json::Value> = entries
                .iter()
                .filter(|(s, _)| *s == code)
                .flat_map(|(_, r)| r.iter().map(|l| serde_json::from_str(l).unwrap()))
                .collect();
            recs.iter()
                .filter_map(|r| r["short_message"].as_str())
                .filter_map(|m| m.split("seq=").nth(1)?.split(' ').next()?.parse().ok())
                .collect()
        };
        let (a, r) = (pick(202), pick(400));
        if a.len() + r.len() >= N as usize || Instant::now() > deadline {
            break (a, r);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut all: Vec<u64> = accepted.iter().chain(&refused).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..N).collect::<Vec<_>>(),
        "accepted {accepted:?} refused {refused:?}"
    );
    // Each record carries the device facts.
    for (_, records) in log.lock().unwrap().iter() {
        for r in records {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            assert_eq!(v["_serial_number"], "SN-42", "{v}");
            assert_eq!(v["_element_role"], "spine", "{v}");
            assert_eq!(v["_app_name"], "gelfout", "{v}");
        }
    }
    let (counters, dir) = tx.stop();
    let g = &counters["destinations"]["graylog"];
    assert_eq!(g["dropped"]["dead_letter"], refused.len() as u64, "{g}");
    // Sent: every attempt; acknowledged: what the receiver took (not the dead letters).
    assert_eq!(
        g["network"]["acknowledged"],
        N - refused.len() as u64,
        "{g}"
    );
    assert!(g["network"]["sent"].as_u64().unwrap() > N, "{g}");
    assert!(g["network"]["retried"].as_u64().unwrap() >= 2, "{g}");
    assert_eq!(g["network"]["queued"]["records"], 0, "{g}");
    // The dead letters hold exactly the refused records, with the receiver's reason.
    let text = std::fs::read_to_string(dir.path().join("state/dead-letter/graylog.jsonl")).unwrap();
    let mut dead: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|v| assert_eq!(v["reason"], "400 Bad Request invalid GELF", "{v}"))
        .map(|v| {
            let rec: serde_json::Value =
                serde_json::from_str(v["record"].as_str().unwrap()).unwrap();
            rec["short_message"]
                .as_str()
                .unwrap()
                .split("seq=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    dead.sort_unstable();
    let mut refused = refused;
    refused.sort_unstable();
    assert_eq!(dead, refused);
}

#[test]
fn gelf_http_bulk_sends_batches_and_resends_a_failed_one_whole() {
    let (port, log) = scripted_receiver(vec![500, 202, 202, 202]);
    let tx = sender(&format!(
        "[destinations.graylog]\ntype = \"gelf_http\"\nurl = \"http://127.0.0.1:{port}/gelf\"\nbulk = true\ngzip = false\nmax_backoff = \"200ms\"\nbatch = {{ max_records = 50, max_wait = \"200ms\" }}\n"
    ));
    send(&tx, 0, 30, 0);
    let deadline = Instant::now() + WAIT;
    loop {
        let n: usize = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == 202)
            .map(|(_, r)| r.len())
            .sum();
        if n >= 30 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let entries = log.lock().unwrap().clone();
    let accepted: Vec<String> = entries
        .iter()
        .filter(|(s, _)| *s == 202)
        .flat_map(|(_, r)| r.clone())
        .collect();
    let mut s: Vec<u64> = accepted
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| {
            v["short_message"]
                .as_str()?
                .split("seq=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    s.sort_unstable();
    assert_eq!(s, (0..30).collect::<Vec<_>>());
    // The first request (500) was a whole batch, sent again whole (perhaps with more).
    assert!(entries[0].1.len() > 1, "{entries:?}");
    assert!(entries[1].1.starts_with(&entries[0].1), "{entries:?}");
    tx.stop();
}
