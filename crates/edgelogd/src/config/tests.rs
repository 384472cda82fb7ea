use super::*;

/// [`super::parse`] with this build's registry.
fn parse(
    file: &str,
    text: &str,
    dirs: impl FnOnce(Option<&Path>, Option<&Path>) -> Dirs,
) -> Result<(Config, Dirs), ConfigErrors> {
    super::parse(file, text, &crate::registry::REGISTRY, dirs)
}

/// A configuration that must parse, with the directories of [`dirs`]: for components' tests.
pub(crate) fn parsed(text: &str) -> Config {
    parse("edgelog.toml", text, dirs)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// A component's spec as its own type (which its module's tests can name).
pub(crate) fn spec<T: 'static>(s: &dyn std::any::Any) -> &T {
    s.downcast_ref::<T>().expect("a spec of another type")
}

pub(crate) fn dirs(_: Option<&Path>, _: Option<&Path>) -> Dirs {
    Dirs {
        run_dir: PathBuf::from("/run/e"),
        state_dir: PathBuf::from("/var/lib/e"),
        config_dir: PathBuf::from("/etc/edgelog"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse("edgelog.toml", text, dirs) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// The sources of a config: name, type, optional.
fn sources(c: &Config) -> Vec<(&str, &str, bool)> {
    c.sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.spec.type_name(), s.optional))
        .collect()
}

#[test]
fn the_embedded_default_is_the_contracts() {
    let (c, _) = parse(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG, dirs).unwrap();
    assert_eq!(
        sources(&c),
        [
            ("devlog", "unix_datagram", false),
            ("memlogd", "memlogd", false),
            ("syslog_tcp", "syslog_tcp", false),
            ("syslog_udp", "syslog_udp", false),
            ("tables", "tables", false)
        ]
    );
    // As the box's system logger it also takes /dev/log and the kernel's log, both optional.
    let (system, _) = parse(DEFAULT_CONFIG_NAME, &default_config(true), dirs).unwrap();
    assert_eq!(
        sources(&system),
        [
            ("devlog", "unix_datagram", false),
            ("kernel", "kmsg", true),
            ("memlogd", "memlogd", false),
            ("syslog_tcp", "syslog_tcp", false),
            ("syslog_udp", "syslog_udp", false),
            ("system_log", "unix_datagram", true),
            ("tables", "tables", false)
        ]
    );
    assert_eq!(
        system.sources["system_log"].spec.endpoints(),
        ["unix socket /dev/log"]
    );
    assert_eq!(default_config(false), DEFAULT_CONFIG);
    // The Debian package's /etc/edgelog/edgelogd.toml is the system logger's default.
    assert_eq!(
        include_str!("../../../../packaging/edgelogd.toml"),
        default_config(true)
    );
    assert_eq!(
        c.sources["devlog"].spec.describe(),
        "unix datagram /run/e/log.sock (mode 666)"
    );
    assert_eq!(
        c.sources["syslog_udp"].spec.endpoints(),
        ["udp 127.0.0.1:5514"]
    );
    assert_eq!(c.destinations["store"].spec.endpoint(), "/var/lib/e/store");
    assert_eq!(c.device, DeviceConfig::default());
}

#[test]
fn the_contract_example_parses() {
    let text = r#"
run_dir = "/run/edgelog"
state_dir = "/var/lib/edgelog"

[device]
serial_number = "auto"
hostname = "auto"
element_name = "leaf-01"
element_role = "leaf"
pod_name = "pod-a"

[sources.devlog]
type = "unix_datagram"
path = "/dev/log"

[sources.net]
type = "syslog_tcp"
address = "0.0.0.0:514"

[sources.hypervisor]
type = "file"
paths = ["/var/log/xen/*.log"]
app_name = "hypervisor"
start_at = "end"

[destinations.local]
type = "file_store"
level = "warning"
match = { app = ["bgpd"], facility = ["auth", "daemon"] }
"#;
    let mut seen = None;
    let (c, _) = parse("x.toml", text, |r, s| {
        seen = Some((r.map(Path::to_owned), s.map(Path::to_owned)));
        dirs(r, s)
    })
    .unwrap();
    assert_eq!(
        seen,
        Some((
            Some(PathBuf::from("/run/edgelog")),
            Some(PathBuf::from("/var/lib/edgelog"))
        ))
    );
    assert_eq!(c.device.element_name.as_deref(), Some("leaf-01"));
    // An absolute socket path stays as it is.
    assert_eq!(
        c.sources["devlog"].spec.endpoints(),
        ["unix socket /dev/log"]
    );
    let files = &c.sources["hypervisor"].spec;
    assert_eq!(files.describe(), "files /var/log/xen/*.log");
    assert!(format!("{files:?}").contains("start_at_beginning: false"));
    assert_eq!(c.sources["hypervisor"].format, FormatHint::Raw);
    let local = &c.destinations["local"];
    assert_eq!(local.level, LevelFilter::from(Level::Warning));
    assert_eq!(local.filter.apps, ["bgpd"]);
    assert_eq!(local.filter.facilities, [Facility::Auth, Facility::Daemon]);
}

#[test]
fn every_error_names_file_line_and_key() {
    let text = r#"
[sources.net]
type = "syslog_tcp"
address = "0.0.0.0:99999"
max_connections = 0
adress = "typo"

[sources.udp]
type = "syslog_udpp"

[sources.reliable]
type = "relp"

[sources.dup1]
type = "syslog_udp"
address = "127.0.0.1:514"

[sources.dup2]
type = "syslog_udp"
address = "127.0.0.1:514"

[destinations.store]
type = "file_store"
max_bytes = "12 parsecs"
level = "loud"
"#;
    assert_eq!(
        errors(text),
        [
            "edgelog.toml:4: sources.net.address: invalid address \"0.0.0.0:99999\": invalid socket address syntax (expected IP:PORT, e.g. \"127.0.0.1:514\" or \"[::1]:514\")",
            "edgelog.toml:5: sources.net.max_connections: 0 is out of range: expected 1 to 65536",
            "edgelog.toml:6: sources.net.adress: unknown key; expected one of: address, app_name, format, framing, idle_timeout, max_connections, max_frame, optional, tls, type",
            "edgelog.toml:9: sources.udp.type: unknown source type \"syslog_udpp\": expected one of unix_datagram, syslog_udp, syslog_tcp, kmsg, file, tables, stdin, gelf_udp, gelf_tcp, gelf_http, alertmanager, memlogd",
            "edgelog.toml:12: sources.reliable.type: source type \"relp\" is not in this build yet",
            "edgelog.toml:18: sources.dup2: udp 127.0.0.1:514 is already used by source \"dup1\"",
            "edgelog.toml:24: destinations.store.max_bytes: invalid size \"12 parsecs\": unknown unit \"parsecs\" (use B, KB, KiB, MB, MiB, GB, GiB)",
            "edgelog.toml:25: destinations.store.level: unknown level \"loud\": expected emergency, alert, critical, error, warning, notice, info, debug, none (or 0-7)",
        ]
    );
}

#[test]
fn structure_errors_are_reported_too() {
    assert_eq!(
        errors("sources = 3\n[destinations.x]\ntype = \"stdout\"\n"),
        ["edgelog.toml:1: sources: expected a table, found integer"]
    );
    assert_eq!(
        errors("[sources.a]\ntype = \"stdin\"\n"),
        [
            "edgelog.toml:1: destinations: no destinations: every record would be dropped (add a [destinations.<name>] table)"
        ]
    );
    assert_eq!(
        errors("[sources.a]\npath = \"x\"\n[destinations.o]\ntype = \"stdout\"\n"),
        ["edgelog.toml:1: sources.a.type: missing required key"]
    );
    assert_eq!(
        errors("[sources.\"bad name\"]\ntype = \"stdin\"\n[destinations.o]\ntype = \"stdout\"\n"),
        [
            "edgelog.toml:1: sources.bad name: invalid name: use 1-31 letters, digits, '_', '-' or '.'"
        ]
    );
    assert_eq!(
        errors(
            "[sources.f]\ntype = \"file\"\npaths = [\"/var/*/x.log\"]\n[destinations.o]\ntype = \"stdout\"\n"
        ),
        [
            "edgelog.toml:3: sources.f.paths: \"/var/*/x.log\": wildcards are supported in the file name only, not in directories"
        ]
    );
}

/// A directory with the TLS files the documented example names (`server`, `client`: a
/// certificate and key each; `ca.pem`), real PEM, so the example is checked as a start would.
fn tls_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    for name in ["server", "client", "ca"] {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![format!("{name}.example")])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(tls.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(tls.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
    dir
}

#[test]
fn tls_files_are_checked_when_the_config_is() {
    let tls = tls_files();
    let path = |f: &str| tls.path().join("tls").join(f).display().to_string();
    let text = |cert: &str, key: &str| {
        format!(
            "[sources.net]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:6514\"\n\
             tls = {{ cert = \"{cert}\", key = \"{key}\" }}\n[destinations.o]\ntype = \"stdout\"\n"
        )
    };
    assert_eq!(
        errors(&text(&path("server.pem"), &path("server.key"))),
        Vec::<String>::new()
    );
    let missing = errors(&text(&path("nope.pem"), &path("server.key")));
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with(&format!(
            "edgelog.toml:4: sources.net.tls.cert: {}",
            path("nope.pem")
        )),
        "{missing:?}"
    );
    // A certificate where the key should be.
    let swapped = errors(&text(&path("server.pem"), &path("server.pem")));
    assert_eq!(swapped.len(), 1, "{swapped:?}");
    assert!(swapped[0].contains("sources.net.tls.key"), "{swapped:?}");
}

#[test]
fn zero_where_zero_makes_no_sense_is_refused() {
    let src = |extra: &str| {
        format!(
            "[sources.net]\ntype = \"syslog_tcp\"\naddress = \"127.0.0.1:6514\"\n{extra}\n\
             [destinations.o]\ntype = \"syslog_tcp\"\naddress = \"h:514\"\nqueue = {{ max_bytes = 0 }}\n"
        )
    };
    assert_eq!(
        errors(&src("idle_timeout = \"0s\"\nmax_frame = 0")),
        [
            "edgelog.toml:4: sources.net.idle_timeout: must be more than 0",
            "edgelog.toml:5: sources.net.max_frame: must be more than 0",
            "edgelog.toml:9: destinations.o.queue.max_bytes: must be more than 0",
        ]
    );
}

#[test]
fn the_reference_example_parses() {
    let doc = include_str!("../../../../docs/configuration.md");
    let start = doc.find("```toml\n").expect("an example") + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    // Its TLS files are relative to the config's directory: give it one that has them.
    let tls = tls_files();
    let config_dir = tls.path().to_owned();
    let dirs = |r: Option<&Path>, s: Option<&Path>| Dirs {
        config_dir,
        ..dirs(r, s)
    };
    let (c, _) = parse("docs/configuration.md", &doc[start..end], dirs)
        .unwrap_or_else(|e| panic!("the documented example does not parse:\n{e}"));
    assert_eq!(c.sources.len(), 4);
    assert_eq!(c.destinations.len(), 3);
    let central = &c.destinations["central"].spec;
    assert!(
        central.endpoint().starts_with("tls "),
        "{}",
        central.endpoint()
    );
    assert!(
        central
            .how()
            .starts_with("rfc5424, octet-counting, disk queue"),
        "{}",
        central.how()
    );
    let net = &c.sources["net"].spec;
    assert!(net.describe().ends_with("(client certificates required)"));
    let ca = tls.path().join("tls/ca.pem");
    assert!(format!("{net:?}").contains(&format!("client_ca: Some({ca:?})")));
}

#[test]
fn escape_none_is_refused_where_a_newline_would_forge_a_record() {
    let dest = |extra: &str| format!("[sources.a]\ntype = \"stdin\"\n[destinations.o]\n{extra}");
    let refused = errors(&dest("type = \"file_store\"\nescape = \"none\"\n"));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]
            .starts_with("edgelog.toml:5: destinations.o.escape: escape = \"none\" would let"),
        "{refused:?}"
    );
    assert_eq!(
        errors(&dest(
            "type = \"syslog_tcp\"\naddress = \"h:514\"\nframing = \"lf\"\nescape = \"none\"\n"
        ))
        .len(),
        1
    );
    // Where the framing cannot break, it is the user's choice.
    for ok in [
        "type = \"syslog_tcp\"\naddress = \"h:514\"\nescape = \"none\"\n",
        "type = \"relp\"\naddress = \"h:514\"\nescape = \"none\"\n",
        "type = \"syslog_udp\"\naddress = \"h:514\"\nescape = \"none\"\n",
        "type = \"stdout\"\nformat = \"json\"\nescape = \"none\"\n",
        "type = \"stdout\"\nescape = \"c\"\n",
    ] {
        assert_eq!(errors(&dest(ok)), Vec::<String>::new(), "{ok}");
    }
    assert_eq!(
        errors(&dest("type = \"stdout\"\nescape = \"html\"\n")),
        ["edgelog.toml:5: destinations.o.escape: unknown value \"html\": expected octal, c, none"]
    );
}

#[test]
fn block_on_a_destination_that_shares_sources_with_the_store_is_warned_of() {
    let text = |store_match: &str| {
        format!(
            "[sources.a]\ntype = \"stdin\"\n[sources.b]\ntype = \"syslog_udp\"\naddress = \"127.0.0.1:5514\"\n\
             [destinations.store]\ntype = \"file_store\"\n{store_match}\n\
             [destinations.central]\ntype = \"syslog_tcp\"\naddress = \"h:514\"\nmatch = {{ source = [\"a\"] }}\n\
             queue = {{ when_full = \"block\" }}\n"
        )
    };
    let warned = |t: &str| {
        let (c, _) = parse("edgelog.toml", t, dirs).unwrap();
        c.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let w = warned(&text(""));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(
            "edgelog.toml:13: destinations.central.queue.when_full: \"block\" holds up"
        ),
        "{w:?}"
    );
    // A store fed by other sources shares nothing with it.
    assert!(warned(&text("match = { source = [\"b\"] }")).is_empty());
    // The default never blocks.
    let (c, _) = parse("edgelog.toml", DEFAULT_CONFIG, dirs).unwrap();
    assert!(c.warnings.is_empty());
}
