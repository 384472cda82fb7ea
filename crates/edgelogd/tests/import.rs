//! `edgelog import rsyslog`: Debian's own rsyslog.conf converts to a config edgelogd accepts,
//! and a converted config routes records as rsyslog does — the same messages, every facility
//! × severity, through a real `rsyslogd` with the rsyslog config and through edgelogd with
//! its conversion, land in the same files.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Daemon, Rsyslogd, edgelog_cli, free_port, have};

/// `edgelog import rsyslog FILE`: the TOML and the exit code.
fn import(cli: &Path, conf: &Path) -> (String, Option<i32>) {
    let out = Command::new(cli)
        .args(["import", "rsyslog"])
        .arg(conf)
        .output()
        .unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.code())
}

#[test]
fn debians_rsyslog_conf_converts_to_a_config_edgelogd_accepts() {
    let Some(cli) = edgelog_cli() else { return };
    if !have("rsyslogd") {
        return;
    }
    let conf = Path::new("/etc/rsyslog.conf");
    assert!(
        conf.exists(),
        "the rsyslog package installs /etc/rsyslog.conf"
    );
    let (toml, code) = import(&cli, conf);
    assert_eq!(code, Some(0), "{toml}");
    for want in [
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"/dev/log\"",
        "[sources.kmsg]\ntype = \"kmsg\"",
        "[destinations.syslog]\ntype = \"file\"\npath = \"/var/log/syslog\"",
        "[destinations.auth]\ntype = \"file\"\npath = \"/var/log/auth.log\"",
        "match = { facility = [\"auth\", \"authpriv\"] }",
        "not converted: edgelogd does not write to users' terminals",
    ] {
        assert!(toml.contains(want), "no {want:?} in:\n{toml}");
    }
    check_config(&toml);
}

/// `edgelogd --check-config` passes `toml`.
fn check_config(toml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgelogd.toml");
    std::fs::write(&path, toml).unwrap();
    let check = Command::new(BIN)
        .args(["--check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "ok\n",
        "{}\n{toml}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn what_cannot_be_converted_is_kept_as_a_comment_and_fails_the_import() {
    let Some(cli) = edgelog_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("rsyslog.conf");
    let included = dir.path().join("rsyslog.d");
    std::fs::create_dir_all(&included).unwrap();
    std::fs::write(included.join("50-cron.conf"), "cron.* /var/log/cron2.log\n").unwrap();
    std::fs::write(included.join("ignored.txt"), "bogus line\n").unwrap();
    std::fs::write(
        &conf,
        "$IncludeConfig rsyslog.d/*.conf\n\
         module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"10514\")\n\
         $ActionQueueType LinkedList\n$ActionQueueFileName fwd\n$ActionQueueMaxDiskSpace 1g\n\
         *.info;mail.none @@(o)logs.example:6514\n\
         :msg, contains, \"error\" /var/log/errors.log\n\
         mail.=info /var/log/mail.info\n",
    )
    .unwrap();
    let (toml, code) = import(&cli, &conf);
    assert_eq!(code, Some(1), "{toml}");
    let shown = conf.display();
    for want in [
        "[sources.tcp_10514]\ntype = \"syslog_tcp\"\naddress = \"0.0.0.0:10514\"".to_owned(),
        "[destinations.tcp_logs_example]\ntype = \"syslog_tcp\"\naddress = \"logs.example:6514\"\nformat = \"rfc3164\"\nframing = \"octet-counting\"\nqueue = { kind = \"spill\", spill_max_bytes = \"1GiB\" }\nlevel = \"info\"".to_owned(),
        format!("# {shown}:8: :msg, contains, \"error\" /var/log/errors.log — not converted: RainerScript conditions"),
        format!("# {shown}:9: mail.=info /var/log/mail.info — not converted: \"=info\": an exact or excluded severity"),
        format!("# from {}:1\n[destinations.cron2]", included.join("50-cron.conf").display()),
    ] {
        assert!(toml.contains(&want), "no {want:?} in:\n{toml}");
    }
    // What was converted is still a config edgelogd takes.
    check_config(&toml);
}

/// The rsyslog config both sides run: a UDP input and Debian-style selectors into `out`.
fn routing_conf(port: u16, out: &Path) -> String {
    let out = out.display();
    format!(
        "module(load=\"imudp\")\n\
         input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")\n\
         $FileCreateMode 0640\n\
         $ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat\n\
         *.*;auth,authpriv.none\t\t-{out}/syslog\n\
         auth,authpriv.*\t\t\t{out}/auth.log\n\
         cron.*\t\t\t\t-{out}/cron.log\n\
         kern.*\t\t\t\t-{out}/kern.log\n\
         mail.err\t\t\t{out}/mail.err\n\
         local0,local1.warning\t\t{out}/local.log\n\
         *.crit\t\t\t\t{out}/critical.log\n\
         *.emerg\t\t\t\t:omusrmsg:*\n"
    )
}

/// Every facility × severity, and a few more: `id=N` in each message.
fn send_all(port: u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for id in 0..200u32 {
        let (facility, severity) = (id % 24, (id / 24) % 8);
        let line = format!(
            "<{}>Dec  3 04:05:06 box1 app{id}: routed id={id}",
            facility * 8 + severity
        );
        sock.send_to(line.as_bytes(), ("127.0.0.1", port)).unwrap();
        if id % 20 == 19 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The `id=N` in each file of `dir`, by file name.
fn ids(dir: &Path) -> BTreeMap<String, BTreeSet<u32>> {
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let ids = text
            .lines()
            .filter_map(|l| l.rsplit_once("id=").and_then(|(_, n)| n.parse().ok()))
            .collect();
        all.insert(e.file_name().to_string_lossy().into_owned(), ids);
    }
    all
}

/// Waits until the files in `dir` stop growing (at most 15 s), then reads them.
fn settled(dir: &Path) -> BTreeMap<String, BTreeSet<u32>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = ids(dir);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = ids(dir);
        let total: usize = now.values().map(BTreeSet::len).sum();
        if (now == last && total > 0) || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_converted_config_routes_every_facility_and_severity_as_rsyslog_did() {
    let Some(cli) = edgelog_cli() else { return };
    if !have("rsyslogd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();

    // rsyslog, with its own config.
    let theirs = dir.path().join("rsyslog-out");
    std::fs::create_dir_all(&theirs).unwrap();
    let rs = Rsyslogd::start(dir.path(), &routing_conf(port, &theirs));
    std::thread::sleep(Duration::from_millis(500));
    send_all(port);
    let rsyslog = settled(&theirs);
    rs.terminate();

    // edgelogd, with the conversion of the same config.
    let ours = dir.path().join("edgelog-out");
    let conf = dir.path().join("for-import.conf");
    std::fs::write(&conf, routing_conf(port, &ours)).unwrap();
    let (toml, code) = import(&cli, &conf);
    assert_eq!(code, Some(0), "{toml}");
    let d = Daemon::start(Some(&toml));
    send_all(port);
    let edgelog = settled(&ours);
    d.stop();

    let names: Vec<&String> = rsyslog.keys().collect();
    assert_eq!(
        names,
        [
            "auth.log",
            "critical.log",
            "cron.log",
            "kern.log",
            "local.log",
            "mail.err",
            "syslog"
        ]
    );
    // Each file got something, and rsyslog's files hold what the selectors say.
    // auth (facility 4) has ids 4, 28, … 196 and authpriv (10) has 10, 34, … 178: 9 + 8.
    assert_eq!(
        rsyslog["auth.log"].len(),
        17,
        "auth and authpriv, every severity"
    );
    assert!(rsyslog.values().all(|ids| !ids.is_empty()));
    for (file, want) in &rsyslog {
        assert_eq!(edgelog.get(file), Some(want), "{file}");
    }
}
