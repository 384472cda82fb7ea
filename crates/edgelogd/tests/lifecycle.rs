//! The daemon's life: config checking, the embedded default, reload and stop without loss.

mod common;

use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Central, Daemon, edgelog_cli, free_port, have, logger, seqs};
use nix::sys::signal::Signal;

#[test]
fn check_config_prints_ok_or_every_error_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[sources.in]\ntype = \"stdin\"\n[destinations.out]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");

    // No config: the embedded default is checked.
    let out = Command::new(BIN).arg("--check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(0));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[sources.net]\ntype = \"syslog_tcp\"\naddress = \"nowhere\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"xml\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let name = bad.display().to_string();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{name}:3: sources.net.address: invalid address \"nowhere\""
        )),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!(
            "{name}:7: destinations.out.format: unknown value \"xml\": expected rfc5424, rfc3164, json, gelf, traditional, precise"
        )
    );

    // A missing file and a bad flag.
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/edgelogd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/edgelogd.toml: cannot read")
    );
    let out = Command::new(BIN).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn embedded_default_stores_and_tables_what_logger_sends() {
    if !have("logger") {
        return;
    }
    let d = Daemon::start(None);
    let stderr = d.stderr();
    for want in [
        "config <embedded default>",
        "log.sock",
        "udp 127.0.0.1:5514",
        "tcp 127.0.0.1:5514",
        "file_store",
    ] {
        assert!(
            stderr.contains(want),
            "startup summary lacks {want:?}:\n{stderr}"
        );
    }
    let sock = d.run_dir().join("log.sock");
    let marker = format!("hello-{}", std::process::id());
    logger(&["-u", sock.to_str().unwrap(), "-t", "demo", &marker]);

    // In the store…
    let store = d.state_dir().join("store/current.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&store).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(&marker)) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "not in the store:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(line.starts_with("<13>1 "), "{line}");
    assert!(line.contains(" demo "), "{line}");
    assert!(line.contains("[edgelog@32473 source=\"devlog\""), "{line}");

    // …and in the daemon's table, as `edgelog show log table` shows it.
    if let Some(cli) = edgelog_cli() {
        let out = Command::new(cli)
            .arg("--run-dir")
            .arg(d.run_dir())
            .args(["show", "log", "table", "demo.edgelogd.log", "--json"])
            .output()
            .unwrap();
        let rows = common::json_lines(&out);
        let row = rows.iter().find(|r| r["message"] == marker.as_str());
        let row = row.unwrap_or_else(|| panic!("not in the table: {rows:?}"));
        assert_eq!(row["level"], "notice");
        assert_eq!(row["bd"], "edgelogd");
        assert_eq!(row["module"], "demo");
        assert_eq!(row["group"], "user");
    }
    let (counters, _) = d.stop();
    assert_eq!(counters["destinations"]["store"]["written"], 1);
}

fn stdout_config(extra: &str) -> String {
    format!(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n{extra}"
    )
}

#[test]
fn reload_adds_and_removes_components_without_losing_a_record() {
    let d = Daemon::start(Some(&stdout_config("")));
    let sock_path = d.run_dir().join("log.sock");
    let port = free_port();
    const N: u64 = 3000;
    let sender = std::thread::spawn(move || {
        let sock = UnixDatagram::unbound().unwrap();
        for i in 0..N {
            let msg = format!("<14>reload: seq={i}");
            // A full socket buffer blocks the sender: datagrams on a unix socket are not lost.
            sock.send_to(msg.as_bytes(), &sock_path).unwrap();
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(30));
            }
        }
    });
    // Two reloads while the stream runs: add a TCP source and a second destination, then
    // remove them again.
    std::thread::sleep(Duration::from_millis(20));
    let added = stdout_config(&format!(
        "\n[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\n\n[destinations.archive]\ntype = \"file_store\"\nformat = \"json\"\n"
    ));
    std::fs::write(d.config_path(), added).unwrap();
    d.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tcp = loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the reload did not start the TCP source"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    tcp.write_all(format!("<14>via tcp: seq={N}\n").as_bytes())
        .unwrap();
    drop(tcp);
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(d.config_path(), stdout_config("")).unwrap();
    d.signal(Signal::SIGHUP);
    sender.join().unwrap();

    let got = d.records(N as usize + 1, Duration::from_secs(20));
    let mut s = seqs(&got);
    s.sort_unstable();
    assert_eq!(s, (0..=N).collect::<Vec<_>>(), "lost or duplicated records");
    let stderr = d.stderr();
    assert!(stderr.contains("source \"tcp\" started"), "{stderr}");
    assert!(
        stderr.contains("destination \"archive\" removed"),
        "{stderr}"
    );
    let (counters, dir) = d.stop();
    // The archive got what arrived while it existed, no more than the stream.
    let archived = counters["destinations"]["archive"]["written"]
        .as_u64()
        .unwrap();
    assert!(archived <= N + 1, "{counters}");
    let text =
        std::fs::read_to_string(dir.path().join("state/store/current.jsonl")).unwrap_or_default();
    assert_eq!(text.lines().count() as u64, archived);
}

#[test]
fn edgelogd_prints_its_manual_page_and_completions() {
    let man = Command::new(BIN).arg("--print-man").output().unwrap();
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH edgelogd 8"), "{man}");
    assert!(man.contains("check\\-config"), "{man}");
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["--print-completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("edgelogd") && text.contains("check-config"),
            "{shell}: {text}"
        );
    }
    let bad = Command::new(BIN)
        .args(["--print-completions", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn without_a_config_flag_the_users_config_is_found_and_named() {
    // `$XDG_CONFIG_HOME/edgelog/edgelogd.toml` (CI runs as root, where /etc/edgelog comes
    // first; no test writes there).
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg-config");
    std::fs::create_dir_all(xdg.join("edgelog")).unwrap();
    let found = xdg.join("edgelog/edgelogd.toml");
    std::fs::write(&found, stdout_config("")).unwrap();
    let d = Daemon::start_in(dir, None, std::process::Stdio::null());
    assert!(
        d.stderr().contains(&format!("config {}", found.display())),
        "{}",
        d.stderr()
    );
    // It is the config in force: its stdout destination gets what is logged.
    let sock = UnixDatagram::unbound().unwrap();
    sock.send_to(b"<14>found: seq=1", d.run_dir().join("log.sock"))
        .unwrap();
    assert_eq!(seqs(&d.records(1, Duration::from_secs(10))), vec![1]);
    d.stop();
}

#[test]
fn reloading_a_changed_disk_queue_destination_under_load_loses_nothing() {
    // The old destination writes out what it was sent and lets go of the queue (its lock)
    // before the new one opens it: never two writers of one queue.
    const N: u64 = 60_000;
    let (port, central) = (free_port(), free_port());
    let rx = Central::start(central);
    let config = |batch: u32| {
        format!(
            r#"
[sources.net]
type = "syslog_tcp"
address = "127.0.0.1:{port}"

[destinations.central]
type = "syslog_tcp"
address = "127.0.0.1:{central}"
framing = "lf"
batch = {{ max_records = {batch} }}
queue = {{ kind = "disk", max_bytes = "64MiB" }}
"#
        )
    };
    let d = Daemon::start(Some(&config(500)));
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        for chunk in 0..N / 1000 {
            let mut buf = Vec::new();
            for seq in chunk * 1000..(chunk + 1) * 1000 {
                writeln!(buf, "<13>1 - h app - - - record seq={seq}").unwrap();
            }
            s.write_all(&buf).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // Three reloads, each changing the destination, while the stream runs.
    for batch in [400, 300, 200] {
        std::thread::sleep(Duration::from_millis(70));
        std::fs::write(d.config_path(), config(batch)).unwrap();
        d.signal(Signal::SIGHUP);
    }
    sender.join().unwrap();
    let got = rx.distinct(N, Duration::from_secs(30));
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    let stderr = d.stderr();
    assert_eq!(
        stderr
            .matches("reload: destination \"central\" started")
            .count(),
        3,
        "{stderr}"
    );
    assert!(!stderr.contains("opening after a reload"), "{stderr}");
    let (counters, _) = d.stop();
    let central = &counters["destinations"]["central"];
    for reason in ["corrupt", "down", "shutdown", "write_error"] {
        assert_eq!(central["dropped"][reason], 0, "{reason}: {counters}");
    }
}

#[test]
fn a_bad_reload_is_refused_and_the_daemon_goes_on() {
    let d = Daemon::start(Some(&stdout_config("")));
    std::fs::write(d.config_path(), "[sources.devlog]\ntype = 7\n").unwrap();
    d.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.stderr().contains("reload refused") {
        assert!(Instant::now() < deadline, "{}", d.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        d.stderr()
            .contains("edgelogd.toml:2: sources.devlog.type: expected a string, found integer"),
        "{}",
        d.stderr()
    );
    let sock = UnixDatagram::unbound().unwrap();
    sock.send_to(b"<14>still here seq=7", d.run_dir().join("log.sock"))
        .unwrap();
    assert_eq!(seqs(&d.records(1, Duration::from_secs(10))), [7]);
    d.stop();
}

#[test]
fn sigterm_drains_a_tcp_stream_already_sent() {
    let port = free_port();
    let d = Daemon::start(Some(&format!(
        "[sources.tcp]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:{port}\"\n\n[destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n"
    )));
    const N: u64 = 20_000;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut payload = Vec::new();
    for i in 0..N {
        payload.extend_from_slice(format!("<14>1 - host app - - - drain seq={i}\n").as_bytes());
    }
    tcp.write_all(&payload).unwrap();
    // Stop at once: what was sent is in the daemon's buffers or the kernel's.
    d.signal(Signal::SIGTERM);
    let got = d.records(N as usize, Duration::from_secs(30));
    let mut s = seqs(&got);
    s.sort_unstable();
    assert_eq!(s.len() as u64, N, "lost records");
    assert_eq!(s, (0..N).collect::<Vec<_>>());
    let (counters, _) = d.finish();
    assert_eq!(counters["sources"]["tcp"]["received"], N);
    drop(tcp);
}

#[test]
fn the_sample_configs_check() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&samples).unwrap() {
        let sample = entry.unwrap().path();
        // Each beside the TLS files it names (`tls/…`, relative to the config), as it would
        // be in /etc/edgelog.
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        std::fs::write(tls.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        for leaf in ["router", "aggregator"] {
            let key = KeyPair::generate().unwrap();
            let params = CertificateParams::new(vec![format!("{leaf}.example.net")]).unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(tls.join(format!("{leaf}.pem")), cert.pem()).unwrap();
            std::fs::write(tls.join(format!("{leaf}.key")), key.serialize_pem()).unwrap();
        }
        let config = dir.path().join(sample.file_name().unwrap());
        std::fs::copy(&sample, &config).unwrap();
        let out = Command::new(BIN)
            .arg("--check-config")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            sample.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ok\n",
            "{}",
            sample.display()
        );
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            sample.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn an_optional_source_that_cannot_start_is_said_and_left_out() {
    // Another process holds the socket; the kernel log is not there.
    let dir = tempfile::tempdir().unwrap();
    let held = dir.path().join("held.sock");
    let holder = std::os::unix::net::UnixDatagram::bind(&held).unwrap();
    let config = format!(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n\
         [sources.system_log]\ntype = \"unix_datagram\"\npath = \"{}\"\noptional = true\n\n\
         [sources.kernel]\ntype = \"kmsg\"\npath = \"{}/no-kmsg\"\noptional = true\n\n\
         [destinations.out]\ntype = \"stdout\"\nformat = \"json\"\n",
        held.display(),
        dir.path().display()
    );
    let d = Daemon::start(Some(&config));
    let err = d.stderr();
    assert!(
        err.contains(&format!(
            "source      system_log     (not started: {} is in use by another process)",
            held.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("source      kernel         (not started: opening"),
        "{err}"
    );
    assert!(
        d.said("not started, going on without it") >= 2,
        "{}",
        d.stderr()
    );
    // The rest runs.
    let sock = d.run_dir().join("log.sock");
    logger(&[
        "-u",
        sock.to_str().unwrap(),
        "-t",
        "app",
        "still here seq=1",
    ]);
    assert_eq!(seqs(&d.records(1, Duration::from_secs(10))), [1]);
    d.stop();
    drop(holder);
    std::fs::remove_file(&held).unwrap();

    // Not optional, the same failure fails the start, naming the source.
    let strict = config.replacen("optional = true\n", "", 1);
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join("edgelogd.toml");
    std::fs::write(&path, strict).unwrap();
    let _holder = std::os::unix::net::UnixDatagram::bind(&held).unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&path)
        .arg("--run-dir")
        .arg(other.path().join("run"))
        .arg("--state-dir")
        .arg(other.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("source \"system_log\": ") && err.contains("is in use by another process"),
        "{err}"
    );
}

#[test]
fn the_embedded_default_takes_the_boxs_logs_only_as_the_system_logger() {
    let print = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--print-default-config")
            .args(args)
            .env_remove("EDGELOG_RUN_DIR")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let root = nix::unistd::geteuid().is_root();
    let plain = print(&["--run-dir", "/tmp/elsewhere"]);
    assert!(plain.contains("[sources.memlogd]"), "{plain}");
    assert!(!plain.contains("/dev/log"), "{plain}");
    let system = print(&[]);
    assert_eq!(
        system.contains(
            "[sources.system_log]\ntype = \"unix_datagram\"\npath = \"/dev/log\"\noptional = true"
        ),
        root,
        "{system}"
    );
    assert_eq!(
        system.contains("[sources.kernel]\ntype = \"kmsg\"\noptional = true"),
        root
    );
}

#[test]
fn level_rules_govern_what_the_daemon_tables_record_and_show_log_levels_says_so() {
    let Some(cli) = edgelog_cli() else { return };
    // The embedded default's sockets and store, without its TCP and UDP ports (another test
    // of this binary runs the default itself).
    let d = Daemon::start(Some(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n\
         [destinations.store]\ntype = \"file_store\"\n",
    ));
    let run = d.run_dir();
    let sock = run.join("log.sock");
    let edgelog = |args: &[&str]| {
        let out = Command::new(&cli)
            .arg("--run-dir")
            .arg(&run)
            .arg("--state-dir")
            .arg(d.state_dir())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let send = |priority: &str, text: &str| {
        logger(&[
            "-u",
            sock.to_str().unwrap(),
            "-t",
            "demo",
            "-p",
            priority,
            text,
        ]);
    };
    // What is in demo's table, in order.
    let table = |want: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = common::json_lines(
                &Command::new(&cli)
                    .arg("--run-dir")
                    .arg(&run)
                    .args(["show", "log", "table", "demo.edgelogd.log", "--json"])
                    .output()
                    .unwrap(),
            );
            let msgs: Vec<String> = rows
                .iter()
                .map(|r| r["message"].as_str().unwrap().to_owned())
                .collect();
            if msgs.len() >= want || Instant::now() > deadline {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let governing = || {
        edgelog(&["show", "log", "levels", "--json"])
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["kind"] == "effective" && v["bd"] == "edgelogd" && v["module"] == "demo")
            .map(|v| {
                (
                    v["level"].as_str().unwrap().to_owned(),
                    v["from"].as_str().unwrap().to_owned(),
                )
            })
            .unwrap()
    };

    // No rule: the tables take everything, and say so.
    send("user.debug", "first debug");
    assert_eq!(table(1), ["first debug"]);
    assert_eq!(
        governing(),
        ("debug".to_owned(), "default of the BD".to_owned())
    );

    // A rule for the BD governs from the next record.
    edgelog(&["set", "log", "level", "warning", "--bd", "edgelogd"]);
    assert_eq!(
        governing(),
        ("warning".to_owned(), "rule bd=edgelogd".to_owned())
    );
    send("user.debug", "second debug");
    send("user.warning", "a warning");
    assert_eq!(table(2), ["first debug", "a warning"]);

    // Removed, everything again.
    edgelog(&["delete", "log", "level", "--bd", "edgelogd"]);
    send("user.debug", "third debug");
    assert_eq!(table(3), ["first debug", "a warning", "third debug"]);
    // The store took every one of them: levels govern the tables, not the records.
    let (counters, _) = d.stop();
    assert_eq!(counters["destinations"]["store"]["written"], 4);
}
