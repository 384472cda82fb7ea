//! `edgelog logger`: util-linux `logger`, for the options people script with.
//!
//! Same defaults as util-linux 2.38 — to a local socket the BSD
//! local form without a host name (`<13>Nov 22 07:35:47 tag: msg`); with `--rfc3164` the host
//! name is added; with `--rfc5424` the RFC 5424 form with the `timeQuality` element (unless
//! `--rfc5424=notq`), no timestamp with `notime`, no host name with `nohost`; to a server
//! (`-n`) RFC 5424 unless `--rfc3164`, over UDP, or TCP with `-T` (LF-terminated, or
//! octet-counted with `--octet-count`). Messages come from the arguments, or one per line from
//! stdin. The formatting is edgelog's own (`edgelog-codec`), so this is also how the daemon
//! will write syslog. The local socket is edgelogd's own `<run_dir>/log.sock` when a daemon
//! listens there, else `/dev/log`; `-u PATH` wins.
//!
//! Not reproduced: `isSynced` in `timeQuality` (it needs `adjtimex`, which std does not
//! expose; we send `tzKnown` only), journald output, `--sd-id`/`--sd-param`.

use std::io::{BufRead, Write as _};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use anyhow::Context as _;
use edgelog_codec::framing::{write_delimited, write_octet_counted};
use edgelog_codec::{Format, Message, Pri, StructuredData, rfc3164, rfc5424};
use edgelog_core::{Facility, Level, Timestamp};

/// Options, as util-linux spells them.
#[derive(Debug, clap::Args)]
pub(crate) struct LoggerArgs {
    /// Priority, `facility.level` (e.g. local3.warning) or a level alone; names or numbers.
    #[arg(short, long, default_value = "user.notice", value_parser = parse_priority)]
    priority: Pri,
    /// Tag (APP-NAME); default: the user name.
    #[arg(short, long)]
    tag: Option<String>,
    /// Log the process id: `-i` or `--id` for ours, `--id=ID` for another.
    #[arg(short = 'i', long = "id", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    id: Option<String>,
    /// Use the RFC 3164 BSD format (with a host name).
    #[arg(long, conflicts_with = "rfc5424")]
    rfc3164: bool,
    /// Use RFC 5424; optional comma-separated `notq`, `notime`, `nohost`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "SNIP")]
    rfc5424: Option<String>,
    /// MSGID (RFC 5424).
    #[arg(long)]
    msgid: Option<String>,
    /// Send to this server instead of the local socket.
    #[arg(short = 'n', long)]
    server: Option<String>,
    /// Server port.
    #[arg(short = 'P', long, default_value_t = 514)]
    port: u16,
    /// Use TCP to the server.
    #[arg(short = 'T', long, conflicts_with = "udp")]
    tcp: bool,
    /// Use UDP to the server (the default).
    #[arg(short = 'd', long)]
    udp: bool,
    /// Write to this unix datagram socket (default: edgelogd's `log.sock` in the run directory
    /// when it listens there, else /dev/log).
    #[arg(short = 'u', long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Frame TCP messages with octet counting (RFC 6587).
    #[arg(long)]
    octet_count: bool,
    /// Also write each message to stderr.
    #[arg(short = 's', long)]
    stderr: bool,
    /// The message; without one, each line of stdin is a message.
    message: Vec<String>,
}

/// `facility.level` or a level alone (facility user), names or numbers — as util-linux reads
/// it: `-p 7` is user.debug, not PRIVAL 7.
fn parse_priority(s: &str) -> Result<Pri, String> {
    let (facility, level) = match s.split_once('.') {
        Some((f, l)) => (f.parse::<Facility>().map_err(|e| e.to_string())?, l),
        None => (Facility::User, s),
    };
    let severity = level.parse::<Level>().map_err(|e| e.to_string())?;
    Ok(Pri { facility, severity })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

enum Sink {
    Unix(UnixDatagram, PathBuf),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Sink {
    fn send(&mut self, wire: &[u8], octet_count: bool) -> anyhow::Result<()> {
        match self {
            Sink::Unix(s, path) => {
                s.send_to(wire, &*path)
                    .with_context(|| format!("sending to {}", path.display()))?;
            }
            Sink::Udp(s) => {
                s.send(wire).context("sending over UDP")?;
            }
            Sink::Tcp(s) => {
                let mut framed = Vec::with_capacity(wire.len() + 8);
                if octet_count {
                    write_octet_counted(&mut framed, wire);
                } else {
                    write_delimited(&mut framed, wire, b'\n');
                }
                s.write_all(&framed).context("sending over TCP")?;
            }
        }
        Ok(())
    }
}

/// The local socket to send to without `-u`: edgelogd's own in the run directory when it
/// listens there (the embedded default's `log.sock`), else `/dev/log` as util-linux does — so
/// `edgelog logger hello` reaches a running edgelogd even where journald holds `/dev/log`.
fn local_socket(run_dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::FileTypeExt as _;
    let ours = run_dir.join("log.sock");
    let listening = std::fs::metadata(&ours).is_ok_and(|m| m.file_type().is_socket())
        && UnixDatagram::unbound().is_ok_and(|s| s.connect(&ours).is_ok());
    if listening {
        ours
    } else {
        PathBuf::from("/dev/log")
    }
}

pub(crate) fn run(run_dir: &std::path::Path, args: &LoggerArgs) -> anyhow::Result<()> {
    let mut sink = match &args.server {
        Some(host) => {
            let addr = (host.as_str(), args.port)
                .to_socket_addrs()
                .with_context(|| format!("resolving {host}"))?
                .next()
                .with_context(|| format!("{host} has no address"))?;
            if args.tcp {
                Sink::Tcp(
                    TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?,
                )
            } else {
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local).context("binding a UDP socket")?;
                s.connect(addr)
                    .with_context(|| format!("connecting to {addr}"))?;
                Sink::Udp(s)
            }
        }
        None => {
            let path = args.socket.clone().unwrap_or_else(|| local_socket(run_dir));
            Sink::Unix(
                UnixDatagram::unbound().context("creating a unix socket")?,
                path,
            )
        }
    };
    // util-linux: RFC 5424 to servers, the local form to sockets, unless told otherwise.
    let format = match (args.rfc3164, &args.rfc5424, &args.server) {
        (true, _, _) => Format::Rfc3164,
        (_, Some(_), _) | (_, None, Some(_)) => Format::Rfc5424,
        _ => Format::Raw, // the local form
    };
    let snip = args.rfc5424.as_deref().unwrap_or("");
    let has = |w: &str| snip.split(',').any(|s| s == w);
    let tag = args
        .tag
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "edgelog".into());
    let proc_id = args.id.as_ref().map(|id| {
        if id.is_empty() {
            std::process::id().to_string()
        } else {
            id.clone()
        }
    });
    let host = hostname();

    let mut send = |text: &str| -> anyhow::Result<()> {
        let mut m = Message::new(Format::Rfc5424);
        m.pri = Some(args.priority);
        m.timestamp = Some(Timestamp::now());
        m.app_name = Some(tag.as_str().into());
        m.proc_id = proc_id.as_deref().map(Into::into);
        m.message = Some(text.into());
        let mut wire = Vec::with_capacity(text.len() + 96);
        match format {
            Format::Rfc5424 => {
                if !has("nohost") {
                    m.hostname = Some(host.as_str().into());
                }
                if has("notime") {
                    m.timestamp = None;
                }
                m.msg_id = args.msgid.as_deref().map(Into::into);
                if !has("notq") {
                    m.structured_data =
                        StructuredData::from_elements([("timeQuality", [("tzKnown", "1")])]);
                }
                rfc5424::format(&mut wire, &m, rfc5424::FormatOptions::default());
            }
            _ => {
                m.hostname = Some(host.as_str().into());
                let opts = rfc3164::FormatOptions {
                    zone: jiff::tz::TimeZone::system(),
                    hostname: format == Format::Rfc3164,
                    pri: true,
                    precise_time: false,
                };
                rfc3164::format(&mut wire, &m, &opts);
            }
        }
        if args.stderr {
            eprintln!("{}", String::from_utf8_lossy(&wire));
        }
        sink.send(&wire, args.octet_count)
    };
    if args.message.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            if !line.is_empty() {
                send(&line)?;
            }
        }
        Ok(())
    } else {
        send(&args.message.join(" "))
    }
}
