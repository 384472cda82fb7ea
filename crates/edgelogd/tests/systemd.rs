//! systemd integration without a running systemd: a `NOTIFY_SOCKET` listener sees `READY=1`,
//! `RELOADING=1` … `READY=1`, `STOPPING=1` and the watchdog; the real `systemd-socket-activate`
//! hands edgelogd a `/dev/log`-style socket, which the configured source takes, and a UDP
//! socket no source names, which becomes a source of its own — util-linux `logger` reaches
//! both.

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BIN, Daemon, free_port, have, logger, seqs};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WAIT: Duration = Duration::from_secs(15);

/// The notifications that arrive on `sock` within `wait`, until one contains `until`.
fn notifications(sock: &UnixDatagram, until: &str, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10)),
        ))
        .unwrap();
        let Ok(n) = sock.recv(&mut buf) else { break };
        let text = String::from_utf8_lossy(&buf[..n]).trim_end().to_owned();
        let done = text.contains(until);
        got.push(text);
        if done {
            break;
        }
    }
    got
}

#[test]
fn ready_reloading_stopping_and_the_watchdog_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let config = "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n\
                  [destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n";
    let d = Daemon::start_with_env(
        dir,
        Some(config),
        Stdio::null(),
        &[
            ("NOTIFY_SOCKET", notify_path.as_os_str()),
            ("WATCHDOG_USEC", "200000".as_ref()),
        ],
    );
    let got = notifications(&notify, "READY=1", WAIT);
    assert!(
        got.last()
            .is_some_and(|m| m.starts_with("READY=1\nSTATUS=ready")),
        "{got:?}"
    );
    // The watchdog, every half interval.
    let pets = notifications(&notify, "WATCHDOG=1", Duration::from_secs(2));
    assert!(pets.iter().any(|m| m == "WATCHDOG=1"), "{pets:?}");

    d.signal(Signal::SIGHUP);
    let got: Vec<String> = notifications(&notify, "READY=1", WAIT)
        .into_iter()
        .filter(|m| m != "WATCHDOG=1")
        .collect();
    assert!(
        got[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{got:?}"
    );
    assert!(
        got.last()
            .is_some_and(|m| m.starts_with("READY=1\nSTATUS=reloaded")),
        "{got:?}"
    );

    // Still serving: a record passes.
    let sock = d.run_dir().join("log.sock");
    logger(&[
        "-u",
        sock.to_str().unwrap(),
        "-t",
        "app",
        "after reload seq=4",
    ]);
    assert_eq!(seqs(&d.records(1, WAIT)), [4]);

    d.signal(Signal::SIGTERM);
    let got = notifications(&notify, "STOPPING=1", WAIT);
    assert!(got.iter().any(|m| m == "STOPPING=1"), "{got:?}");
    d.stop();
}

#[test]
fn sockets_systemd_passes_are_taken_by_name_or_become_sources() {
    if !have("systemd-socket-activate") || !have("logger") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dev_log = dir.path().join("dev-log");
    let udp = free_port();
    let config = "[sources.system_log]\ntype = \"unix_datagram\"\npath = \"/nonexistent/dev/log\"\n\n\
                  [destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n";
    let config_path = dir.path().join("edgelogd.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new("systemd-socket-activate")
        .arg("--datagram")
        .arg("-l")
        .arg(&dev_log)
        .arg("-l")
        .arg(format!("127.0.0.1:{udp}"))
        .arg("--fdname=system_log:forwarded")
        .arg(BIN)
        .arg("-c")
        .arg(&config_path)
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate");
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let err_out = child.stderr.take().unwrap();
    let (etx, errs) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err_out).lines().map_while(Result::ok) {
            let _ = etx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    while !dev_log.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first datagram starts the daemon (as systemd would), and waits in the socket for it.
    logger(&[
        "-u",
        dev_log.to_str().unwrap(),
        "-t",
        "app",
        "activated seq=1",
    ]);
    let mut stderr = String::new();
    let ready = Instant::now() + WAIT;
    while !stderr.contains("edgelogd: ready") && Instant::now() < ready {
        if let Ok(l) = errs.recv_timeout(Duration::from_millis(100)) {
            stderr += &l;
            stderr.push('\n');
        }
    }
    assert!(stderr.contains("edgelogd: ready"), "{stderr}");
    // The configured source took /dev-log by its name; the unnamed UDP socket became a source.
    assert!(
        stderr.contains(
            "source      system_log     unix_datagram  unix datagram /nonexistent/dev/log"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "source      forwarded      syslog_udp     udp 127.0.0.1:{udp}"
        )),
        "{stderr}"
    );
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &udp.to_string(),
        "-d",
        "-t",
        "fwd",
        "over udp seq=2",
    ]);
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 2 && Instant::now() < deadline {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(100)) {
            got.push(serde_json::from_str::<serde_json::Value>(&l).unwrap());
        }
    }
    let mut s = seqs(&got);
    s.sort_unstable();
    assert_eq!(s, [1, 2], "{got:?}");
    let by_seq = |n: &str| {
        got.iter()
            .find(|r| r["message"].as_str().unwrap().contains(n))
            .unwrap()
    };
    assert_eq!(by_seq("seq=1")["app_name"], "app");
    assert_eq!(by_seq("seq=2")["app_name"], "fwd");

    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // systemd's socket stays: the daemon did not unlink a path it did not create.
    assert!(dev_log.exists());
}

#[test]
fn the_unit_file_is_one_systemd_accepts() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/systemd/edgelogd.service"
    ))
    .unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=30s",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=edgelog",
        "RuntimeDirectoryPreserve=yes",
        "Alias=syslog.service",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line:?} in the unit");
    }
    if !have("systemd-analyze") {
        return;
    }
    // `verify` checks the keys and that ExecStart exists: point it at this build.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgelogd.service");
    std::fs::write(&path, unit.replace("/usr/sbin/edgelogd", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
