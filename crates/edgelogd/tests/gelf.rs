//! GELF in: the Python `graypy` client library over UDP (chunked, compressed), TCP and HTTP,
//! every record checked by sequence number with its fields; HTTP refusals; Alertmanager
//! webhooks.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, free_port, seqs};
use serde_json::{Value, json};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/gelf_client.py");

/// Whether Python's graypy can be imported (installed by scripts/test).
fn have_graypy() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import graypy"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with graypy is missing; scripts/test installs it"
        );
        eprintln!("skipping: graypy is not installed (scripts/test installs it)");
    }
    ok
}

fn gelf_config(udp: u16, tcp: u16, http: u16, token: &str) -> String {
    format!(
        r#"
[sources.gelf_udp]
type = "gelf_udp"
address = "127.0.0.1:{udp}"

[sources.gelf_tcp]
type = "gelf_tcp"
address = "127.0.0.1:{tcp}"

[sources.gelf_http]
type = "gelf_http"
address = "127.0.0.1:{http}"
{token}

[sources.alerts]
type = "alertmanager"
address = "127.0.0.1:{udp}"
path = "/alerts"

[destinations.out]
type = "stdout"
format = "json"
"#
    )
}

#[test]
fn graypy_over_udp_tcp_and_http() {
    if !have_graypy() {
        return;
    }
    let (udp, tcp, http) = (free_port(), free_port(), free_port());
    let d = Daemon::start(Some(&gelf_config(udp, tcp, http, "")));
    const N: u64 = 40;
    for (kind, port, first) in [("udp", udp, 0), ("tcp", tcp, N), ("http", http, 2 * N)] {
        let out = Command::new("python3")
            .args([
                CLIENT,
                kind,
                "127.0.0.1",
                &port.to_string(),
                &first.to_string(),
                &N.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = d.records(3 * N as usize, Duration::from_secs(20));
    let mut s = seqs(&got);
    s.sort_unstable();
    if s != (0..3 * N).collect::<Vec<_>>() {
        let (counters, _) = d.stop();
        let bad: Vec<_> = got
            .iter()
            .filter(|r| r.get("diagnostics").is_some())
            .collect();
        panic!("missing records: got {s:?}\nmalformed {bad:?}\ncounters {counters}");
    }
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for r in &got {
        let seq = seqs(std::slice::from_ref(r))[0];
        let (source, kind) = match seq / N {
            0 => ("gelf_udp", "udp"),
            1 => ("gelf_tcp", "tcp"),
            _ => ("gelf_http", "http"),
        };
        assert_eq!(r["source"], source, "{r}");
        assert_eq!(r["format"], "gelf", "{r}");
        assert_eq!(r["severity"], "warning", "{r}");
        assert_eq!(r["hostname"], host.as_str(), "{r}");
        assert_eq!(r["fields"]["peer"], "10.0.0.2", "{r}");
        assert_eq!(r["fields"]["asn"], 65001, "{r}");
        // graypy sends the logger name as GELF 1.0's `facility`.
        assert_eq!(r["fields"]["facility"], "gelftest", "{r}");
        let m = r["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("seq={seq} via {kind}")), "{r}");
        if kind == "udp" && seq % 2 == 1 {
            assert_eq!(
                m.len(),
                format!("seq={seq} via udp").len() + 2000,
                "chunked message cut"
            );
        }
    }
    let (counters, _) = d.stop();
    assert_eq!(counters["sources"]["gelf_udp"]["received"], N);
    assert_eq!(counters["sources"]["gelf_udp"]["dropped"], json!({}));
    assert_eq!(counters["sources"]["gelf_tcp"]["received"], N);
    assert_eq!(counters["sources"]["gelf_http"]["received"], N);
}

/// A raw HTTP/1.1 request; returns the status code and body.
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    request("POST", port, path, headers, body)
}

fn request(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (code, body)
}

#[test]
fn gelf_http_bulk_compression_token_and_refusals() {
    let (udp, tcp, http) = (free_port(), free_port(), free_port());
    let d = Daemon::start(Some(&gelf_config(
        udp,
        tcp,
        http,
        "token = \"s3cret\"\nmax_body = \"4KiB\"",
    )));
    let auth = ("Authorization", "Bearer s3cret");
    let msg = |i: u64| {
        json!({"version": "1.1", "host": "h1", "short_message": format!("bulk seq={i}"), "level": 3, "_app_name": "bulkapp"}).to_string()
    };

    // Bulk, gzip-compressed.
    let bulk = format!("{}\n{}\n{}\n", msg(0), msg(1), msg(2));
    let gz = edgelog_codec::gelf::compress::gzip(bulk.as_bytes());
    assert_eq!(
        post(http, "/gelf", &[auth, ("Content-Encoding", "gzip")], &gz).0,
        202
    );
    // One message, plain.
    assert_eq!(post(http, "/gelf", &[auth], msg(3).as_bytes()).0, 202);

    // Refusals: no token, a bad line (nothing of that body is taken), too large, not found.
    let (code, _) = post(http, "/gelf", &[], msg(100).as_bytes());
    assert_eq!(code, 401);
    let bad = format!("{}\n{{\"version\":\"1.1\",\"host\":\"h\"}}\n", msg(101));
    let (code, reason) = post(http, "/gelf", &[auth], bad.as_bytes());
    assert_eq!(code, 400);
    assert!(reason.starts_with("message on line 2:"), "{reason}");
    let big = format!("{}\n", msg(102)).repeat(100);
    assert_eq!(post(http, "/gelf", &[auth], big.as_bytes()).0, 413);
    assert_eq!(post(http, "/other", &[auth], msg(103).as_bytes()).0, 404);

    let got = d.records(4, Duration::from_secs(10));
    assert_eq!(seqs(&got), [0, 1, 2, 3]);
    assert_eq!(got[0]["app_name"], "bulkapp");
    assert_eq!(got[0]["hostname"], "h1");
    assert_eq!(got[0]["severity"], "error");
    assert!(d.more_records(Duration::from_millis(300)).is_empty());
    let (counters, _) = d.stop();
    // Every refusal counts, the 404 too.
    assert_eq!(counters["sources"]["gelf_http"]["received"], 4);
    assert_eq!(
        counters["sources"]["gelf_http"]["dropped"]["rejected"], 4,
        "{counters}"
    );
}

#[test]
fn alertmanager_webhooks_become_one_record_per_alert() {
    let (udp, tcp, http) = (free_port(), free_port(), free_port());
    let d = Daemon::start(Some(&gelf_config(udp, tcp, http, "")));
    // Alertmanager's version 4 webhook payload, as its documentation gives it.
    let payload = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighTemp\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "edgelog",
        "groupLabels": {"alertname": "HighTemp"},
        "commonLabels": {"alertname": "HighTemp"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {"status": "firing",
             "labels": {"alertname": "HighTemp", "severity": "critical", "sensor": "cpu0"},
             "annotations": {"summary": "CPU at 97C seq=0"},
             "startsAt": "2026-11-22T08:00:00.5Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": "a1b2c3"},
            {"status": "resolved",
             "labels": {"alertname": "LinkDown", "severity": "warning", "ifname": "eth1"},
             "annotations": {"description": "eth1 is up again seq=1"},
             "startsAt": "2026-11-22T07:00:00Z", "endsAt": "2026-11-22T07:30:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": "d4e5f6"}
        ]
    });
    let (code, _) = post(
        udp,
        "/alerts",
        &[("Content-Type", "application/json")],
        payload.to_string().as_bytes(),
    );
    assert_eq!(code, 202);
    let (code, reason) = post(udp, "/alerts", &[], br#"{"version":"3","alerts":[]}"#);
    assert_eq!(
        (code, reason.as_str()),
        (400, "unsupported payload version \"3\": expected \"4\"\n")
    );
    // All or nothing: alerts that are not alerts refuse the request whole.
    let (code, reason) = post(
        udp,
        "/alerts",
        &[],
        br#"{"version":"4","alerts":[{"labels":{"alertname":"A"}},1,"s",null,[],{}]}"#,
    );
    assert_eq!(
        (code, reason.as_str()),
        (
            400,
            "alert 1 is not an alert (an object with \"labels\"): nothing was taken\n"
        )
    );
    let many = format!(
        r#"{{"version":"4","alerts":[{}]}}"#,
        vec![r#"{"labels":{}}"#; 10_001].join(",")
    );
    let (code, _) = post(udp, "/alerts", &[], many.as_bytes());
    assert_eq!(code, 413);
    // Another path, another method: refused and counted too.
    assert_eq!(post(udp, "/nope", &[], b"{}").0, 404);
    assert_eq!(request("GET", udp, "/alerts", &[], b"").0, 405);

    let got = d.records(2, Duration::from_secs(10));
    assert_eq!(seqs(&got), [0, 1]);
    let (fire, resolve): (&Value, &Value) = (&got[0], &got[1]);
    assert_eq!(fire["app_name"], "alertmanager");
    assert_eq!(fire["msg_id"], "HighTemp");
    assert_eq!(fire["severity"], "critical");
    assert_eq!(fire["timestamp"], "2026-11-22T08:00:00.500Z");
    assert_eq!(fire["message"], "[FIRING] HighTemp: CPU at 97C seq=0");
    assert_eq!(fire["fields"]["label_sensor"], "cpu0");
    assert_eq!(fire["fields"]["annotation_summary"], "CPU at 97C seq=0");
    assert_eq!(fire["fields"]["fingerprint"], "a1b2c3");
    assert_eq!(fire["fields"]["status"], "firing");
    assert_eq!(resolve["severity"], "warning");
    assert_eq!(resolve["timestamp"], "2026-11-22T07:30:00Z");
    assert_eq!(
        resolve["message"],
        "[RESOLVED] LinkDown: eth1 is up again seq=1"
    );
    assert_eq!(resolve["fields"]["status"], "resolved");
    assert_eq!(resolve["fields"]["receiver"], "edgelog");
    let (counters, _) = d.stop();
    let alerts = &counters["sources"]["alerts"];
    assert_eq!(
        alerts["received"], 2,
        "the refused requests took nothing: {counters}"
    );
    assert_eq!(alerts["dropped"]["rejected"], 5, "{counters}");
}

#[test]
fn a_gelf_message_longer_than_max_frame_is_cut_flagged_and_counted() {
    let (udp, tcp, http) = (free_port(), free_port(), free_port());
    let d = Daemon::start(Some(&gelf_config(udp, tcp, http, "max_frame = \"4KiB\"")));
    let long = "é".repeat(50_000); // 100,000 bytes, two bytes a character
    let body = json!({"version": "1.1", "host": "h", "short_message": long}).to_string();
    assert_eq!(post(http, "/gelf", &[], body.as_bytes()).0, 202);
    let got = d.records(1, Duration::from_secs(10));
    let message = got[0]["message"].as_str().unwrap();
    assert_eq!(
        message.len(),
        4096,
        "cut at a character boundary within max_frame"
    );
    assert!(message.chars().all(|c| c == 'é'));
    let (counters, _) = d.stop();
    assert_eq!(
        counters["sources"]["gelf_http"]["truncated"], 1,
        "{counters}"
    );
}
