//! The control socket through the real `edgelog` CLI: `show log destinations --json` agrees
//! with what a receiver got, `status` shows what runs, `reload` applies or refuses a config,
//! and the socket refuses a user without permission.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, control_call, edgelog_cli, json_lines};

fn cli(cli: &Path, run_dir: &Path, args: &[&str]) -> Output {
    Command::new(cli)
        .arg("--run-dir")
        .arg(run_dir)
        .args(args)
        .output()
        .unwrap()
}

/// Starts `cmd` with its stdout read line by line, each line with the instant it arrived.
fn stdout_lines(
    cmd: &mut Command,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<(Instant, String)>,
) {
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// A TCP receiver that counts the lines it reads.
fn counting_receiver() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines() {
                    if line.is_err() {
                        break;
                    }
                    c.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (port, count)
}

/// `GET /metrics` on the control socket, parsed.
fn metrics(run_dir: &Path) -> prometheus_parse::Scrape {
    use std::io::{Read as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(run_dir.join("control.sock")).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

fn config(port: u16, extra: &str) -> String {
    format!(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.central]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\nframing = \"lf\"\nlevel = \"info\"\n{extra}"
    )
}

#[test]
fn destinations_status_and_reload_through_the_cli() {
    let Some(edgelog) = edgelog_cli() else { return };
    let (port, received) = counting_receiver();
    let d = Daemon::start(Some(&config(port, "")));
    let run = d.run_dir();
    let sock = UnixDatagram::unbound().unwrap();
    for i in 0..50 {
        sock.send_to(
            format!("<14>app: line {i}").as_bytes(),
            run.join("log.sock"),
        )
        .unwrap();
    }
    // A debug record the destination's level filters out.
    sock.send_to(b"<15>app: too chatty", run.join("log.sock"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < 50 {
        assert!(Instant::now() < deadline, "the receiver got too little");
        std::thread::sleep(Duration::from_millis(20));
    }

    let rows = json_lines(&cli(
        &edgelog,
        &run,
        &["show", "log", "destinations", "--json"],
    ));
    // The configured destination, and the daemon's own tables, built in.
    let aliases: Vec<&str> = rows.iter().filter_map(|r| r["alias"].as_str()).collect();
    assert_eq!(aliases, ["central", "tables"]);
    assert_eq!(rows[1]["type"], "tables");
    let c = &rows[0];
    assert_eq!(c["alias"], "central");
    assert_eq!(c["type"], "syslog_tcp");
    assert_eq!(c["level"], "info");
    assert_eq!(c["up"], true);
    assert_eq!(c["acknowledged"], received.load(Ordering::Relaxed), "{c}");
    assert!(c["sent"].as_u64() >= c["acknowledged"].as_u64(), "{c}");
    assert_eq!(c["written"], 50, "{c}");
    assert_eq!(c["queued_records"], 0, "{c}");
    let table = cli(&edgelog, &run, &["show", "log", "destinations"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("ALIAS"), "{text}");
    assert!(text.contains("central") && text.contains(" up "), "{text}");

    // The same counters as Prometheus text, read with a Prometheus parser.
    let scrape = metrics(&run);
    let value = |name: &str, label: (&str, &str)| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(
        value("edgelog_source_received_total", ("source", "devlog")),
        51.0
    );
    assert_eq!(
        value(
            "edgelog_destination_written_total",
            ("destination", "central")
        ),
        50.0
    );
    assert_eq!(
        value(
            "edgelog_destination_acknowledged_total",
            ("destination", "central")
        ),
        received.load(Ordering::Relaxed) as f64
    );
    assert_eq!(
        value("edgelog_destination_up", ("destination", "central")),
        1.0
    );
    assert_eq!(
        value(
            "edgelog_destination_queued_records",
            ("destination", "central")
        ),
        0.0
    );

    let status = cli(&edgelog, &run, &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["sources"][0]["name"], "devlog");
    assert_eq!(s["destinations"][0]["name"], "central");

    // A config that does not check is refused whole, with the reason.
    std::fs::write(d.config_path(), "[sources.devlog]\ntype = 7\n").unwrap();
    let out = cli(&edgelog, &run, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sources.devlog.type: expected a string"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A good one is applied.
    std::fs::write(
        d.config_path(),
        config(port, "\n[destinations.archive]\ntype = \"file_store\"\n"),
    )
    .unwrap();
    let out = cli(&edgelog, &run, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = cli(&edgelog, &run, &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let names: Vec<&str> = s["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["archive", "central", "tables"]);
    d.stop();
}

#[test]
fn the_control_socket_refuses_a_user_without_permission() {
    let Some(edgelog) = edgelog_cli() else { return };
    let d = Daemon::start(Some(&config(9, "")));
    let run = d.run_dir();
    let sock = run.join("control.sock");
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o660
    );
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipping the other-user half: it needs root to become nobody");
        d.stop();
        return;
    }
    // Let anyone reach the socket file, so the socket's own mode is what refuses.
    for dir in [d.dir(), run.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let copy = std::env::temp_dir().join(format!("edgelog-nobody-{}", std::process::id()));
    std::fs::copy(&edgelog, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!(
            "{} --run-dir {} status",
            copy.display(),
            run.display()
        ))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach edgelogd") && err.contains("Permission denied"),
        "{err}"
    );
    // Root (the owner) may.
    assert!(cli(&edgelog, &run, &["status"]).status.success());
    d.stop();
}

#[test]
fn a_plugin_alias_level_set_with_the_cli_changes_what_is_exported_and_survives_a_restart() {
    let Some(edgelog) = edgelog_cli() else { return };
    let (port, received) = counting_receiver();
    let cfg = config(port, "");
    let d = Daemon::start(Some(&cfg));
    let run = d.run_dir();
    let send = |run: &Path, pri: u8, n: usize| {
        let sock = UnixDatagram::unbound().unwrap();
        for _ in 0..n {
            sock.send_to(
                format!("<{pri}>bgpd: event").as_bytes(),
                run.join("log.sock"),
            )
            .unwrap();
        }
    };
    let wait_for = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "got {}",
                received.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // And nothing beyond it.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(received.load(Ordering::Relaxed), n);
    };
    send(&run, 30, 3); // daemon.info: the configured level (info) exports it
    wait_for(3);

    let out = cli(
        &edgelog,
        &run,
        &[
            "set",
            "log",
            "level",
            "error",
            "--bd",
            "bgpd",
            "--plugin-alias",
            "central",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(applied)"));
    send(&run, 30, 3); // info: no longer exported for bgpd
    send(&run, 27, 2); // daemon.err: exported
    wait_for(5);
    // The level reached the running destination: it was not restarted (no reconnect).
    let stderr = d.stderr();
    assert!(
        !stderr.contains("destination \"central\" started"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("connected to").count(), 1, "{stderr}");

    let levels = cli(&edgelog, &run, &["show", "log", "levels", "--json"]);
    let rows: Vec<serde_json::Value> = json_lines(&levels)
        .into_iter()
        .filter(|v| v["kind"] == "plugin_alias" && v["alias"] != "tables")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0]["level"].as_str(), rows[0]["from"].as_str()),
        (Some("info"), Some("config"))
    );
    assert_eq!(
        (
            rows[1]["scope"].as_str(),
            rows[1]["level"].as_str(),
            rows[1]["from"].as_str()
        ),
        (Some("bd=bgpd"), Some("error"), Some("cli"))
    );

    // A restart keeps it.
    let (_, state) = d.stop();
    let d = Daemon::start_in(state, Some(&cfg), std::process::Stdio::null());
    let run = d.run_dir();
    send(&run, 30, 3);
    send(&run, 27, 1);
    wait_for(6);
    d.stop();
}

#[test]
fn check_config_through_the_cli() {
    let Some(edgelog) = edgelog_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sources.x]\ntype = \"nope\"\n").unwrap();
    let out = Command::new(&edgelog)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.toml:2: sources.x.type: unknown source type \"nope\""),
        "{out:?}"
    );
    let out = Command::new(&edgelog).arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn tail_f_shows_a_record_sent_with_edgelog_logger_within_a_second() {
    let Some(edgelog) = edgelog_cli() else { return };
    let d = Daemon::start(Some(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.store]\ntype = \"file_store\"\n",
    ));
    let run = d.run_dir();
    let (mut tail, rx) = stdout_lines(
        Command::new(&edgelog)
            .arg("--run-dir")
            .arg(&run)
            .args(["tail", "-f", "--bd", "edgelogd"]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let marker = format!("tail-marker-{}", std::process::id());
    let sent = Instant::now();
    // No -u: `edgelog logger` finds the daemon's socket in the run directory by itself.
    let out = cli(&edgelog, &run, &["logger", "-t", "tailtest", &marker]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = loop {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok((at, line)) if line.contains(&marker) => break (at, line),
            Ok(_) => {}
            Err(_) => panic!("tail -f never showed the record"),
        }
    };
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(seen.1.contains("tailtest"), "{}", seen.1);
    assert!(
        seen.0.duration_since(sent) < Duration::from_secs(1),
        "took {:?}",
        seen.0.duration_since(sent)
    );
    d.stop();
}

/// `tail --live` reads the daemon's live stream: records of a source whose daemon tables are
/// off, filtered by level (in the daemon) and regular expression (in the CLI), in the table
/// columns, and as JSON lines with `--json`.
#[test]
fn tail_live_shows_what_passes_the_daemon_with_its_filters() {
    let Some(edgelog) = edgelog_cli() else { return };
    let d = Daemon::start(Some(
        "[tables]\nenabled = false\n\n[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.store]\ntype = \"file_store\"\n",
    ));
    let run = d.run_dir();
    let spawn = |extra: &[&str]| {
        stdout_lines(
            Command::new(&edgelog)
                .arg("--run-dir")
                .arg(&run)
                .args([
                    "tail",
                    "--live",
                    "--level",
                    "warning",
                    "--grep",
                    "^if[0-9]+ down",
                ])
                .args(extra),
        )
    };
    let (mut text, text_rx) = spawn(&[]);
    let (mut json, json_rx) = spawn(&["--json"]);
    let sock = UnixDatagram::unbound().unwrap();
    // The followers subscribe some time after they start: send rounds until both saw one,
    // each round a record of every kind, told apart by its round number.
    let (mut texts, mut jsons) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut round = 0;
    while (texts.is_empty() || jsons.is_empty()) && Instant::now() < deadline {
        for (pri, text) in [
            (15, format!("if{round} down")),   // user.debug: below the level
            (12, format!("if{round} down")),   // user.warning: shown
            (11, format!("disk{round} full")), // user.err: not matched by --grep
        ] {
            sock.send_to(
                format!("<{pri}>ifmgr: {text}").as_bytes(),
                run.join("log.sock"),
            )
            .unwrap();
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(100));
        texts.extend(text_rx.try_iter().map(|(_, l)| l));
        jsons.extend(json_rx.try_iter().map(|(_, l)| l));
    }
    // Let the last round arrive whole.
    std::thread::sleep(Duration::from_millis(300));
    texts.extend(text_rx.try_iter().map(|(_, l)| l));
    jsons.extend(json_rx.try_iter().map(|(_, l)| l));
    for c in [&mut text, &mut json] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(!texts.is_empty() && !jsons.is_empty(), "nothing shown");
    for line in &texts {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1..4], ["warning", "ifmgr", "devlog"], "{line}");
        assert!(line.ends_with(" down"), "{line}");
    }
    // Every round from the first one a follower saw, each once.
    let rounds = |lines: Vec<String>| -> Vec<u64> {
        lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["severity"], "warning", "{v}");
                assert_eq!(v["source"], "devlog", "{v}");
                let m = v["message"].as_str().unwrap();
                m.trim_start_matches("if")
                    .trim_end_matches(" down")
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let got = rounds(jsons);
    let first = got[0];
    assert_eq!(got, (first..round).collect::<Vec<_>>());
    d.stop();
}

#[test]
fn follow_streams_records_as_they_pass_with_filters() {
    use std::io::{Read as _, Write as _};
    let d = Daemon::start(Some(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.store]\ntype = \"file_store\"\n",
    ));
    let run = d.run_dir();
    let mut s = std::os::unix::net::UnixStream::connect(run.join("control.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v1/follow?level=warning&grep=link%20down HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The response head comes once the stream is subscribed: from then on nothing is missed.
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let sock = UnixDatagram::unbound().unwrap();
    for (pri, text) in [
        (12, "eth1 link down"),
        (14, "eth2 link down"),
        (11, "disk full"),
        (11, "eth3 link down"),
    ] {
        sock.send_to(
            format!("<{pri}>ifmgr: {text}").as_bytes(),
            run.join("log.sock"),
        )
        .unwrap();
    }
    // Read until both matching records arrived (chunked body: JSON lines among chunk sizes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.matches("\"message\"").count() < 2 && Instant::now() < deadline {
        let n = s.read(&mut buf).unwrap();
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let records: Vec<serde_json::Value> = got
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = records
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["eth1 link down", "eth3 link down"]);
    assert_eq!(records[0]["source"], "devlog");
    drop(s);
    d.stop();
}

#[test]
fn metrics_on_a_tcp_address_and_the_socket_group() {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::MetadataExt as _;
    let port = common::free_port();
    let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
        .unwrap()
        .unwrap()
        .name;
    let d = Daemon::start(Some(&format!(
        "[control]\ngroup = \"{group}\"\nmetrics_address = \"127.0.0.1:{port}\"\n\n[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.store]\ntype = \"file_store\"\n"
    )));
    let meta = std::fs::metadata(d.run_dir().join("control.sock")).unwrap();
    assert_eq!(meta.gid(), nix::unistd::getgid().as_raw());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.contains("edgelog_source_received_total{source=\"devlog\"} 0"),
        "{resp}"
    );
    // Only /metrics is on the TCP address: the control API is not.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    d.stop();
}

#[test]
fn tables_and_level_changes_through_the_api() {
    let Some(edgelog) = edgelog_cli() else { return };
    let d = Daemon::start(Some(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.store]\ntype = \"file_store\"\n",
    ));
    let run = d.run_dir();
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"<13>ifmgr: hello", run.join("log.sock"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let tables = loop {
        let (code, body) = control_call(&run, "GET", "/v1/tables");
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v.as_array().is_some_and(|a| !a.is_empty()) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(tables[0]["table"], "ifmgr.edgelogd.log", "{tables}");
    assert_eq!(tables[0]["entries"], 1);

    let (code, body) = control_call(&run, "POST", "/v1/levels?level=debug&bd=bgpd&module=bgp");
    assert_eq!(
        (code, body.as_str()),
        (200, "log level of bd=bgpd module=bgp set to debug\n")
    );
    let (code, body) = control_call(&run, "POST", "/v1/levels?level=loud");
    assert_eq!(code, 400);
    assert!(body.starts_with("level: unknown level \"loud\""), "{body}");
    let levels = cli(&edgelog, &run, &["show", "log", "levels", "--json"]);
    let text = String::from_utf8_lossy(&levels.stdout);
    assert!(
        text.contains(r#""bd":"bgpd","group":null,"kind":"rule","level":"debug","module":"bgp""#),
        "{text}"
    );
    // Plugin aliases are checked as the CLI checks them, and must name a destination.
    let (code, body) = control_call(&run, "POST", "/v1/levels?level=debug&plugin_alias=a%20b");
    assert_eq!(code, 400);
    assert!(body.starts_with("invalid plugin alias"), "{body}");
    let (code, body) = control_call(&run, "POST", "/v1/levels?level=debug&plugin_alias=nosuch");
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            "no destination is named \"nosuch\" (the plugin aliases are: store, tables)\n"
        )
    );
    let (code, _) = control_call(&run, "POST", "/v1/levels?level=warning&plugin_alias=store");
    assert_eq!(code, 200);
    let (_, dir) = d.stop();

    // A bad line in the state file the daemon keeps never stops it: said, skipped.
    let levels_file = dir.path().join("state/plugin-levels.conf");
    let mut text = std::fs::read_to_string(&levels_file).unwrap();
    text.push_str("a b c\nstore module=bgp loud\n");
    std::fs::write(&levels_file, text).unwrap();
    let d = Daemon::start_in(
        dir,
        Some(
            "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.store]\ntype = \"file_store\"\n",
        ),
        std::process::Stdio::null(),
    );
    let (code, status) = control_call(&d.run_dir(), "GET", "/v1/status");
    assert_eq!(code, 200);
    assert!(status.contains(r#""level":"warning""#), "{status}");
    let log = d.stderr();
    assert_eq!(log.matches("the line is skipped").count(), 2, "{log}");
    d.stop();
}
