//! syslog over TLS into a `syslog_tcp` source: a test CA made here, server verification,
//! client certificates required — and refused when missing or from another CA. Clients are
//! rustls and a real `rsyslogd` with its OpenSSL stream driver.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Daemon, Rsyslogd, free_port, have, seqs};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

const WAIT: Duration = Duration::from_secs(15);

/// A CA and certificates it signed, written as PEM files into `dir`.
struct Pki {
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Pki {
            ca: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names`, written as `<file>.pem` and `<file>.key`.
    fn issue(&self, dir: &Path, file: &str, names: &[&str]) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    }
}

fn client_config(dir: &Path, client: Option<&str>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        Some(name) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    })
}

/// Sends `lines` over TLS; returns whether the server took them (the handshake completed).
fn send_tls(port: u16, cfg: Arc<ClientConfig>, lines: &str) -> bool {
    let conn =
        rustls::ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    if tls
        .write_all(lines.as_bytes())
        .and_then(|()| tls.flush())
        .is_err()
    {
        return false;
    }
    // TLS 1.3 reports a refused client certificate after the handshake: read to see it.
    let mut buf = [0u8; 1];
    tls.conn.send_close_notify();
    let _ = tls.flush();
    !matches!(std::io::Read::read(&mut tls, &mut buf), Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof)
}

fn start(port: u16) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    pki.issue(dir.path(), "server", &["localhost", "127.0.0.1"]);
    pki.issue(dir.path(), "client", &["leaf-01.example"]);
    Pki::new(dir.path(), "rogue").issue(dir.path(), "intruder", &["intruder.example"]);
    let config = format!(
        r#"
[sources.tls]
type = "syslog_tcp"
address = "127.0.0.1:{port}"
tls = {{ cert = "server.pem", key = "server.key", client_ca = "ca.pem" }}

[destinations.out]
type = "stdout"
format = "json"
"#
    );
    Daemon::start_in(dir, Some(&config), Stdio::null())
}

#[test]
fn tls_with_client_certificates() {
    let port = free_port();
    let d = start(port);
    assert!(
        d.stderr().contains("(client certificates required)"),
        "{}",
        d.stderr()
    );
    let dir = d.dir().to_owned();

    let ok = send_tls(
        port,
        client_config(&dir, Some("client")),
        "<14>1 - leaf-01 app - - - over tls seq=0\n<14>1 - leaf-01 app - - - over tls seq=1\n",
    );
    assert!(ok);
    let got = d.records(2, WAIT);
    assert_eq!(seqs(&got), [0, 1]);
    assert_eq!(got[0]["hostname"], "leaf-01");

    // No client certificate, and one from another CA: refused, nothing taken, counted.
    assert!(!send_tls(
        port,
        client_config(&dir, None),
        "<14>1 - x app - - - anonymous seq=7\n"
    ));
    assert!(!send_tls(
        port,
        client_config(&dir, Some("intruder")),
        "<14>1 - x app - - - intruder seq=8\n"
    ));
    // Plain TCP to a TLS port is not taken either.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .write_all(b"<14>1 - x app - - - plaintext seq=9\n")
        .unwrap();
    drop(plain);
    assert!(d.more_records(Duration::from_millis(500)).is_empty());

    let deadline = Instant::now() + WAIT;
    let (counters, _) = loop {
        // Handshake failures are counted as their connections end.
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() > deadline || d.stderr().matches("TLS handshake failed").count() >= 3 {
            break d.stop();
        }
    };
    assert_eq!(
        counters["sources"]["tls"]["dropped"]["tls_handshake"], 3,
        "{counters}"
    );
    assert_eq!(counters["sources"]["tls"]["received"], 2);
}

#[test]
fn rsyslog_sends_over_tls_with_its_client_certificate() {
    if !have("rsyslogd") || !have("logger") {
        return;
    }
    if !common::have_rsyslog_module("lmnsd_ossl", "rsyslog-openssl") {
        return;
    }
    let port = free_port();
    let d = start(port);
    let dir = d.dir().to_owned();
    let work = tempfile::tempdir().unwrap();
    let sock = work.path().join("in.sock");
    let conf = format!(
        r#"
global(workDirectory="{work}"
       DefaultNetstreamDriver="ossl"
       DefaultNetstreamDriverCAFile="{dir}/ca.pem"
       DefaultNetstreamDriverCertFile="{dir}/client.pem"
       DefaultNetstreamDriverKeyFile="{dir}/client.key")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" RateLimit.Interval="0")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
       StreamDriverPermittedPeers="localhost"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
"#,
        work = work.path().display(),
        dir = dir.display(),
        sock = sock.display(),
    );
    let rsyslogd = Rsyslogd::start(work.path(), &conf);
    let deadline = Instant::now() + WAIT;
    while !sock.exists() {
        assert!(Instant::now() < deadline, "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..20 {
        common::logger(&[
            "-u",
            sock.to_str().unwrap(),
            "-t",
            "tlsrelay",
            &format!("secure seq={i}"),
        ]);
    }
    let got = d.records(20, Duration::from_secs(30));
    drop(rsyslogd);
    let mut s = seqs(&got);
    s.sort_unstable();
    assert_eq!(s, (0..20).collect::<Vec<_>>());
    assert!(
        got.iter()
            .all(|r| r["app_name"] == "tlsrelay" && r["format"] == "rfc5424")
    );
    d.stop();
}

#[test]
fn a_tls_destination_verifies_the_receiver_and_presents_its_certificate() {
    let port = free_port();
    let receiver = start(port);
    let pki = receiver.dir().to_owned();
    let sender_dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[sources.devlog]
type = "unix_datagram"
path = "log.sock"

[destinations.central]
type = "syslog_tcp"
address = "localhost:{port}"
tls = {{ ca = "{pki}/ca.pem", cert = "{pki}/client.pem", key = "{pki}/client.key" }}
"#,
        pki = pki.display()
    );
    let sender = Daemon::start_in(sender_dir, Some(&config), Stdio::null());
    assert!(
        sender.stderr().contains(&format!("tls localhost:{port}")),
        "{}",
        sender.stderr()
    );
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    for i in 0..50 {
        sock.send_to(
            format!("<13>relay: over tls seq={i}").as_bytes(),
            sender.run_dir().join("log.sock"),
        )
        .unwrap();
    }
    let got = receiver.records(50, WAIT);
    let mut s = seqs(&got);
    s.sort_unstable();
    assert_eq!(s, (0..50).collect::<Vec<_>>());
    assert!(
        got.iter()
            .all(|r| r["app_name"] == "relay" && r["source"] == "tls")
    );
    sender.stop();
    receiver.stop();
}

#[test]
fn a_tls_destination_refuses_a_receiver_it_cannot_verify() {
    let port = free_port();
    let receiver = start(port);
    let other = tempfile::tempdir().unwrap();
    Pki::new(other.path(), "ca");
    let config = format!(
        "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.central]\ntype = \"syslog_tcp\"\naddress = \"localhost:{port}\"\ntls = {{ ca = \"{}/ca.pem\" }}\n",
        other.path().display()
    );
    let sender = Daemon::start_in(tempfile::tempdir().unwrap(), Some(&config), Stdio::null());
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sock.send_to(
        b"<13>relay: must not arrive seq=1",
        sender.run_dir().join("log.sock"),
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while !sender.stderr().contains("receiver down") {
        assert!(Instant::now() < deadline, "{}", sender.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sender.stderr().contains("TLS handshake"),
        "{}",
        sender.stderr()
    );
    assert!(receiver.more_records(Duration::from_millis(300)).is_empty());
    let (counters, _) = sender.stop();
    let c = &counters["destinations"]["central"];
    assert_eq!(c["network"]["up"], false, "{c}");
    assert_eq!(c["network"]["sent"], 0, "{c}");
    assert_eq!(c["network"]["acknowledged"], 0, "{c}");
    receiver.stop();
}

#[test]
fn a_tls_destination_delivers_to_rsyslog_requiring_our_certificate() {
    if !have("rsyslogd") {
        return;
    }
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(pki_dir.path(), "ca");
    pki.issue(pki_dir.path(), "server", &["localhost", "127.0.0.1"]);
    pki.issue(pki_dir.path(), "client", &["leaf-01.example"]);
    let p = pki_dir.path().display();
    let port = free_port();
    let out = pki_dir.path().join("received.log");
    let conf = format!(
        r#"
global(workDirectory="{p}"
       DefaultNetstreamDriver="ossl"
       DefaultNetstreamDriverCAFile="{p}/ca.pem"
       DefaultNetstreamDriverCertFile="{p}/server.pem"
       DefaultNetstreamDriverKeyFile="{p}/server.key")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
template(name="fields" type="string" string="%app-name%|%msg%\n")
ruleset(name="in") {{ action(type="omfile" file="{out}" template="fields") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="in")
"#,
        out = out.display()
    );
    let rsyslogd = Rsyslogd::start(pki_dir.path(), &conf);
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "rsyslogd did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both formats, one daemon after the other, into the same receiver.
    for (k, format) in [(0u64, "rfc5424"), (1, "rfc3164")] {
        let config = format!(
            "[sources.devlog]\ntype = \"unix_datagram\"\npath = \"log.sock\"\n\n[destinations.central]\ntype = \"syslog_tcp\"\naddress = \"localhost:{port}\"\nformat = \"{format}\"\ntls = {{ ca = \"{p}/ca.pem\", cert = \"{p}/client.pem\", key = \"{p}/client.key\" }}\n"
        );
        let d = Daemon::start_in(tempfile::tempdir().unwrap(), Some(&config), Stdio::null());
        let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
        for i in k * 100..(k + 1) * 100 {
            sock.send_to(
                format!("<13>tlsout: secure seq={i}").as_bytes(),
                d.run_dir().join("log.sock"),
            )
            .unwrap();
        }
        // Stopping drains the queue into the receiver.
        let (counters, _) = d.stop();
        assert_eq!(
            counters["destinations"]["central"]["network"]["acknowledged"], 100,
            "{format}: {counters}"
        );
    }
    let deadline = Instant::now() + WAIT;
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() >= 200 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(rsyslogd);
    let mut s: Vec<u64> = lines
        .lines()
        .inspect(|l| assert!(l.starts_with("tlsout|"), "{l}"))
        .filter_map(|l| l.split("seq=").nth(1)?.parse().ok())
        .collect();
    s.sort_unstable();
    assert_eq!(s, (0..200).collect::<Vec<_>>());
}
