//! A real `rsyslogd` relaying to edgelogd: the same messages over TCP (RFC 5424, octet-counted
//! framing) and over UDP (rsyslog's forward format, RFC 3164), every one checked by sequence
//! number with its fields.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Rsyslogd, free_port, have, seqs};

#[test]
fn rsyslog_forwards_over_tcp_and_udp() {
    if !have("rsyslogd") || !have("logger") {
        return;
    }
    let port = free_port();
    let d = Daemon::start(Some(&format!(
        r#"
[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[sources.udp]
type = "syslog_udp"
address = "127.0.0.1:{port}"

[destinations.out]
type = "stdout"
format = "json"
"#
    )));
    let work = tempfile::tempdir().unwrap();
    let sock = work.path().join("in.sock");
    let conf = format!(
        r#"
global(workDirectory="{work}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" RateLimit.Interval="0")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="udp"
       template="RSYSLOG_ForwardFormat")
"#,
        work = work.path().display(),
        sock = sock.display(),
    );
    let _rsyslog = Rsyslogd::start(work.path(), &conf);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    const N: u64 = 200;
    // One logger process, one message per line of its input.
    let mut logger = Command::new("logger")
        .arg("-u")
        .arg(&sock)
        .args(["-t", "relayed", "-p", "local4.warning"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = logger.stdin.take().unwrap();
        for i in 0..N {
            writeln!(input, "through rsyslog seq={i}").unwrap();
        }
    }
    assert!(logger.wait().unwrap().success());

    let got = d.records(2 * N as usize, Duration::from_secs(30));
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for (source, format) in [("tcp", "rfc5424"), ("udp", "rfc3164")] {
        let of: Vec<_> = got
            .iter()
            .filter(|r| r["source"] == source)
            .cloned()
            .collect();
        let mut s = seqs(&of);
        s.sort_unstable();
        assert_eq!(s, (0..N).collect::<Vec<_>>(), "via {source}");
        for r in &of {
            assert_eq!(r["format"], format, "{r}");
            assert_eq!(r["app_name"], "relayed", "{r}");
            assert_eq!(r["facility"], "local4", "{r}");
            assert_eq!(r["severity"], "warning", "{r}");
            // rsyslog's %msg% keeps the space that followed the tag's colon.
            let m = r["message"].as_str().unwrap();
            assert!(m.trim_start().starts_with("through rsyslog seq="), "{r}");
            assert!(!m.ends_with('\n'), "{r}");
            // rsyslog names the host (short name) in both formats.
            let h = r["hostname"].as_str().unwrap();
            assert!(host.starts_with(h), "{h} vs {host}");
            assert!(r["timestamp"].is_string());
            assert!(r.get("diagnostics").is_none(), "{r}");
        }
    }
    let (counters, _) = d.stop();
    assert_eq!(counters["sources"]["tcp"]["malformed"], 0);
    assert_eq!(counters["sources"]["udp"]["malformed"], 0);
}
