//! util-linux `logger` into the unix datagram, UDP and TCP sources of the real daemon: every
//! message arrives, by sequence number, with its fields intact and the device facts added.

mod common;

use std::time::Duration;

use common::{Daemon, free_port, have, logger};

fn config(port: u16) -> String {
    format!(
        r#"
[device]
serial_number = "SN-TEST-1"
hostname = "edge-test"
element_name = "leaf-01"
element_role = "leaf"
pod_name = "pod-a"

[sources.devlog]
type = "unix_datagram"
path = "log.sock"
mode = "0620"

[sources.udp]
type = "syslog_udp"
address = "127.0.0.1:{port}"

[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.out]
type = "stdout"
format = "json"
"#
    )
}

#[test]
fn logger_into_unix_udp_and_tcp_sources() {
    if !have("logger") {
        return;
    }
    let port = free_port();
    let d = Daemon::start(Some(&config(port)));
    let sock = d.run_dir().join("log.sock");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o620);
    let sock = sock.to_str().unwrap();
    let p = port.to_string();
    // (logger arguments, source, expected hostname: None = the device's)
    let cases: Vec<(Vec<&str>, &str, Option<&str>)> = vec![
        (
            vec!["-u", sock, "-t", "unix3164", "-p", "local3.warning"],
            "devlog",
            None,
        ),
        (
            vec![
                "-u",
                sock,
                "--rfc5424",
                "-t",
                "unix5424",
                "-p",
                "auth.err",
                "--msgid",
                "ID5",
            ],
            "devlog",
            Some("*"),
        ),
        (
            vec![
                "-d",
                "-n",
                "127.0.0.1",
                "-P",
                &p,
                "--rfc3164",
                "-t",
                "udp3164",
                "-p",
                "daemon.info",
            ],
            "udp",
            Some("*"),
        ),
        (
            vec![
                "-d",
                "-n",
                "127.0.0.1",
                "-P",
                &p,
                "--rfc5424",
                "-t",
                "udp5424",
                "-p",
                "local0.crit",
                "--sd-id",
                "zoo@32473",
                "--sd-param",
                "tiger=\"hungry\"",
            ],
            "udp",
            Some("*"),
        ),
        (
            vec![
                "-T",
                "-n",
                "127.0.0.1",
                "-P",
                &p,
                "--rfc3164",
                "-t",
                "tcp3164",
                "-p",
                "user.notice",
            ],
            "tcp",
            Some("*"),
        ),
        (
            vec![
                "-T",
                "-n",
                "127.0.0.1",
                "-P",
                &p,
                "--rfc5424",
                "--octet-count",
                "-t",
                "tcp5424",
                "-p",
                "local7.debug",
                "-i",
            ],
            "tcp",
            Some("*"),
        ),
    ];
    for (i, (args, _, _)) in cases.iter().enumerate() {
        let msg = format!("seq={i} hello from case {i}");
        let mut all = args.clone();
        all.push(&msg);
        logger(&all);
    }
    let mut got = d.records(cases.len(), Duration::from_secs(10));
    got.sort_by_key(|r| common::seqs(std::slice::from_ref(r)));
    assert_eq!(
        common::seqs(&got),
        (0..cases.len() as u64).collect::<Vec<_>>(),
        "{got:#?}"
    );

    let expect = [
        ("unix3164", "local3", "warning"),
        ("unix5424", "auth", "error"),
        ("udp3164", "daemon", "info"),
        ("udp5424", "local0", "critical"),
        ("tcp3164", "user", "notice"),
        ("tcp5424", "local7", "debug"),
    ];
    let local_host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for (i, (r, (tag, facility, severity))) in got.iter().zip(expect).enumerate() {
        let (_, source, host) = &cases[i];
        assert_eq!(r["app_name"], *tag, "{r}");
        assert_eq!(r["facility"], facility, "{r}");
        assert_eq!(r["severity"], severity, "{r}");
        assert_eq!(r["message"], format!("seq={i} hello from case {i}"), "{r}");
        assert_eq!(r["source"], *source, "{r}");
        // logger names its host in the network formats; the local form leaves it to us.
        let want_host = match host {
            None => "edge-test",
            Some(_) => local_host.as_str(),
        };
        assert_eq!(r["hostname"], want_host, "{r}");
        assert_eq!(
            r["device"],
            serde_json::json!({"serial_number": "SN-TEST-1", "element_name": "leaf-01",
                               "element_role": "leaf", "pod_name": "pod-a"}),
            "{r}"
        );
        assert!(r["timestamp"].is_string(), "{r}");
    }
    // What the transports add: credentials on the unix socket, RFC 5424 header fields.
    let me = nix::unistd::getuid().as_raw();
    assert_eq!(got[0]["fields"]["uid"], me, "{}", got[0]);
    assert!(
        got[0]["proc_id"]
            .as_str()
            .is_some_and(|p| p.parse::<u32>().is_ok())
    );
    assert_eq!(got[1]["msg_id"], "ID5");
    assert_eq!(
        got[3]["structured_data"]["zoo@32473"]["tiger"], "hungry",
        "{}",
        got[3]
    );
    assert!(
        got[5]["proc_id"]
            .as_str()
            .is_some_and(|p| p.parse::<u32>().is_ok())
    );

    let (counters, _) = d.stop();
    let received = |s: &str| counters["sources"][s]["received"].as_u64().unwrap();
    assert_eq!(
        (received("devlog"), received("udp"), received("tcp")),
        (2, 2, 2)
    );
    assert_eq!(counters["destinations"]["out"]["written"], 6);
    assert_eq!(counters["sources"]["devlog"]["malformed"], 0);
    assert_eq!(counters["sources"]["devlog"]["decoded"], 2);
}

#[test]
fn malformed_frames_are_kept_raw_and_counted() {
    let port = free_port();
    let d = Daemon::start(Some(&config(port)));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Not valid UTF-8, and an RFC 5424 header cut short.
    udp.send_to(
        b"<13>1 2026-13-45T99:00:00Z host app - - - bad date seq=1",
        ("127.0.0.1", port),
    )
    .unwrap();
    udp.send_to(b"\xff\xfe garbage seq=2", ("127.0.0.1", port))
        .unwrap();
    let got = d.records(2, Duration::from_secs(10));
    assert_eq!(common::seqs(&got), [1, 2], "{got:#?}");
    for r in &got {
        assert!(
            r["diagnostics"].as_array().is_some_and(|a| !a.is_empty()),
            "{r}"
        );
    }
    let (counters, _) = d.stop();
    assert_eq!(counters["sources"]["udp"]["malformed"], 2);
    assert_eq!(counters["sources"]["udp"]["received"], 2);
}
