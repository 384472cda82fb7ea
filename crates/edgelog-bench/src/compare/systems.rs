//! The three relays and their equivalent configurations.
//!
//! A workload says what it needs — where records come in, where they go, and which kind of
//! queue sits between — as a [`Spec`]; each [`System`] turns that into its own configuration
//! language with the settings an operator of that system would use for the same job:
//!
//! - the same input and output, RFC 5424 out over TCP with LF framing;
//! - no rate limiting on input (rsyslog's `imuxsock` limits by default);
//! - a slow receiver slows the relay down rather than making it drop: edgelogd's queues are
//!   set to `when_full = "block"`, syslog-ng gets `flags(flow-control)` — with the window its manual asks
//!   for then (`log-iw-size(10000)` on the source, `log-fifo-size(10000)` on the destination;
//!   its default window of 100 holds it near 80 k msgs/s) — and rsyslog's action retries for
//!   ever (`action.resumeRetryCount="-1"`);
//! - "disk queue" is each system's documented way to keep records across a receiver outage:
//!   edgelogd's disk queue (fsync every 100 ms, its default), rsyslog's disk-assisted action
//!   queue (`LinkedList` with a `queue.filename`, saved on shutdown), syslog-ng's
//!   `disk-buffer(reliable(yes))`;
//! - file inputs remember their position as robustly as each offers: edgelogd commits it once
//!   the records are durable downstream, rsyslog `imfile` with `persistStateAfterSubmission`,
//!   syslog-ng its persist file;
//! - edgelogd's own tables are off (the others keep no such copy; `--edgelogd-tables` turns
//!   them on, to measure what they cost);
//! - [`QueueKind::Default`] is each system as installed: edgelogd's spill queues that drop the
//!   oldest past their quota, rsyslog's plain action, syslog-ng's flow control (what its
//!   manual recommends against loss) — the `isolation` workload shows what each does with a
//!   stalled receiver beside a healthy one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where records enter the relay.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Tcp(u16),
    Udp(u16),
    /// A `/dev/log`-style unix datagram socket.
    Unix(PathBuf),
    /// A file a program appends to, read from its beginning.
    File(PathBuf),
}

/// Where the relay sends them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output {
    Tcp(u16),
    /// A file in the work directory (see [`System::output_file`]).
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueKind {
    Memory,
    Disk,
    /// Each system's defaults.
    Default,
}

/// What a workload asks of a relay.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) input: Input,
    pub(crate) output: Output,
    /// More destinations fed the same records (at most one [`Output::File`] in all).
    pub(crate) also: Vec<Output>,
    pub(crate) queue: QueueKind,
}

impl Spec {
    /// One input, one output.
    pub(crate) fn new(input: Input, output: Output, queue: QueueKind) -> Spec {
        Spec {
            input,
            output,
            also: Vec::new(),
            queue,
        }
    }

    fn outputs(&self) -> impl Iterator<Item = (usize, Output)> + '_ {
        std::iter::once(self.output)
            .chain(self.also.iter().copied())
            .enumerate()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum System {
    /// The binary, and whether its own tables are on (off by default: the others keep no
    /// such copy).
    Edgelogd {
        bin: PathBuf,
        tables: bool,
    },
    Rsyslog(PathBuf),
    /// The binary, its module directory and the library path it needs.
    SyslogNg {
        bin: PathBuf,
        modules: PathBuf,
        libs: String,
    },
}

impl System {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            System::Edgelogd { .. } => "edgelogd",
            System::Rsyslog(_) => "rsyslog",
            System::SyslogNg { .. } => "syslog-ng",
        }
    }

    /// syslog-ng unpacked under `root` by `bench/prepare-peers.sh` (`usr/sbin/syslog-ng`).
    pub(crate) fn syslog_ng(bin: PathBuf) -> anyhow::Result<System> {
        let root = bin
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut lib_dirs = Vec::new();
        collect_lib_dirs(&root, &mut lib_dirs);
        let modules = lib_dirs
            .iter()
            .find(|d| d.join("libafsocket.so").exists())
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no syslog-ng modules (libafsocket.so) under {}; run bench/prepare-peers.sh",
                    root.display()
                )
            })?;
        let libs = lib_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        Ok(System::SyslogNg { bin, modules, libs })
    }

    /// The file an [`Output::File`] relay writes, in `work`.
    pub(crate) fn output_file(&self, work: &Path) -> PathBuf {
        match self {
            System::Edgelogd { .. } => work.join("state/store/current.log"),
            _ => work.join("out.log"),
        }
    }

    /// Writes the configuration for `spec` into `work` and returns the command that runs the
    /// relay in the foreground.
    pub(crate) fn prepare(&self, spec: &Spec, work: &Path) -> anyhow::Result<Command> {
        std::fs::create_dir_all(work)?;
        let conf = work.join(match self {
            System::Edgelogd { .. } => "edgelogd.toml",
            System::Rsyslog(_) => "rsyslog.conf",
            System::SyslogNg { .. } => "syslog-ng.conf",
        });
        let text = match self {
            System::Edgelogd { tables, .. } => edgelogd_config(spec, work, *tables),
            System::Rsyslog(_) => rsyslog_config(spec, work),
            System::SyslogNg { .. } => syslog_ng_config(spec, work, &self.output_file(work)),
        };
        std::fs::write(&conf, text)?;
        let mut cmd;
        match self {
            System::Edgelogd { bin, .. } => {
                cmd = Command::new(bin);
                cmd.arg("--config")
                    .arg(&conf)
                    .arg("--run-dir")
                    .arg(work.join("run"))
                    .arg("--state-dir")
                    .arg(work.join("state"))
                    .args(["--log-level", "warn"]);
            }
            System::Rsyslog(bin) => {
                std::fs::create_dir_all(work.join("rs"))?;
                // A pid file left by a killed run would stop the restart.
                let _ = std::fs::remove_file(work.join("rsyslogd.pid"));
                cmd = Command::new(bin);
                cmd.arg("-n")
                    .arg("-f")
                    .arg(&conf)
                    .arg("-i")
                    .arg(work.join("rsyslogd.pid"));
            }
            System::SyslogNg { bin, modules, libs } => {
                for i in 0..=spec.also.len() {
                    std::fs::create_dir_all(work.join(format!("sng-buffer/{i}")))?;
                }
                for stale in ["syslog-ng.pid", "syslog-ng.ctl"] {
                    let _ = std::fs::remove_file(work.join(stale));
                }
                cmd = Command::new(bin);
                cmd.arg("-F")
                    .arg("-f")
                    .arg(&conf)
                    .arg("-R")
                    .arg(work.join("syslog-ng.persist"))
                    .arg("-c")
                    .arg(work.join("syslog-ng.ctl"))
                    .arg("-p")
                    .arg(work.join("syslog-ng.pid"))
                    .arg(format!("--module-path={}", modules.display()))
                    .env("LD_LIBRARY_PATH", libs);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(work.join("relay.err"))?);
        Ok(cmd)
    }
}

fn collect_lib_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut has_lib = false;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            collect_lib_dirs(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(".so"))
        {
            has_lib = true;
        }
    }
    if has_lib {
        out.push(dir.to_path_buf());
    }
}

fn edgelogd_config(spec: &Spec, work: &Path, tables: bool) -> String {
    let input = match &spec.input {
        Input::Tcp(p) => format!("type = \"syslog_tcp\"\naddress = \"127.0.0.1:{p}\""),
        Input::Udp(p) => format!("type = \"syslog_udp\"\naddress = \"127.0.0.1:{p}\""),
        Input::Unix(path) => format!("type = \"unix_datagram\"\npath = \"{}\"", path.display()),
        Input::File(path) => format!(
            "type = \"file\"\npaths = [\"{}\"]\nstart_at = \"beginning\"\npoll_interval = \"100ms\"",
            path.display()
        ),
    };
    let queue = match spec.queue {
        QueueKind::Memory => "\nqueue = { kind = \"memory\", when_full = \"block\" }",
        QueueKind::Disk => {
            "\nqueue = { kind = \"disk\", max_bytes = \"2GiB\", when_full = \"block\" }"
        }
        QueueKind::Default => "",
    };
    let mut out = format!("[tables]\nenabled = {tables}\n\n[sources.in]\n{input}\n");
    for (i, output) in spec.outputs() {
        let name = if i == 0 {
            "out".to_owned()
        } else {
            format!("out{i}")
        };
        let body = match output {
            Output::Tcp(p) => format!(
                "type = \"syslog_tcp\"\naddress = \"127.0.0.1:{p}\"\nframing = \"lf\"{queue}"
            ),
            Output::File => format!(
                "type = \"file_store\"\npath = \"{}\"\nmax_file_size = \"4GiB\"\nmax_bytes = \"8GiB\"\ncompress = false",
                work.join("state/store").display()
            ),
        };
        out += &format!("\n[destinations.{name}]\n{body}\n");
    }
    out
}

fn rsyslog_config(spec: &Spec, work: &Path) -> String {
    let (module, input) = match &spec.input {
        Input::Tcp(p) => (
            "module(load=\"imtcp\")".to_owned(),
            format!("input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"relay\")"),
        ),
        Input::Udp(p) => (
            "module(load=\"imudp\")".to_owned(),
            format!("input(type=\"imudp\" address=\"127.0.0.1\" port=\"{p}\" ruleset=\"relay\")"),
        ),
        Input::Unix(path) => (
            "module(load=\"imuxsock\" SysSock.Use=\"off\")".to_owned(),
            format!(
                "input(type=\"imuxsock\" Socket=\"{}\" RateLimit.Interval=\"0\" Ruleset=\"relay\")",
                path.display()
            ),
        ),
        Input::File(path) => (
            "module(load=\"imfile\")".to_owned(),
            format!(
                "input(type=\"imfile\" File=\"{}\" Tag=\"app\" ruleset=\"relay\" freshStartTail=\"off\" persistStateAfterSubmission=\"on\")",
                path.display()
            ),
        ),
    };
    let actions: Vec<String> = spec
        .outputs()
        .map(|(i, output)| match output {
            Output::Tcp(p) => {
                let queue = match spec.queue {
                    QueueKind::Memory | QueueKind::Default => String::new(),
                    QueueKind::Disk => format!(" queue.type=\"LinkedList\" queue.filename=\"relay{i}\" queue.saveOnShutdown=\"on\" queue.maxDiskSpace=\"2g\""),
                };
                format!(
                    "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{p}\" protocol=\"tcp\" template=\"RSYSLOG_SyslogProtocol23Format\" action.resumeRetryCount=\"-1\"{queue})"
                )
            }
            Output::File => format!(
                "action(type=\"omfile\" file=\"{}\" template=\"RSYSLOG_SyslogProtocol23Format\")",
                work.join("out.log").display()
            ),
        })
        .collect();
    let action = actions.join("\n  ");
    format!(
        "global(workDirectory=\"{}\" maxMessageSize=\"64k\")\n{module}\n{input}\nruleset(name=\"relay\") {{\n  {action}\n}}\n",
        work.join("rs").display()
    )
}

fn syslog_ng_config(spec: &Spec, work: &Path, out_file: &Path) -> String {
    let source = match &spec.input {
        Input::Tcp(p) => format!(
            "network(ip(\"127.0.0.1\") port({p}) transport(\"tcp\") flags(syslog-protocol) max-connections(100) log-iw-size(10000))"
        ),
        Input::Udp(p) => format!(
            "network(ip(\"127.0.0.1\") port({p}) transport(\"udp\") flags(syslog-protocol) so-rcvbuf(4194304))"
        ),
        Input::Unix(path) => format!("unix-dgram(\"{}\" so-rcvbuf(4194304))", path.display()),
        Input::File(path) => format!(
            "file(\"{}\" follow-freq(0.1) flags(no-parse) program-override(\"app\"))",
            path.display()
        ),
    };
    let dests: Vec<String> = spec
        .outputs()
        .map(|(i, output)| {
            let d = match output {
                Output::Tcp(p) => {
                    let buffer = match spec.queue {
                        QueueKind::Memory | QueueKind::Default => String::new(),
                        QueueKind::Disk => format!(
                            " disk-buffer(reliable(yes) mem-buf-size(16777216) disk-buf-size(2147483648) dir(\"{}\"))",
                            work.join(format!("sng-buffer/{i}")).display()
                        ),
                    };
                    format!(
                        "network(\"127.0.0.1\" port({p}) transport(\"tcp\") flags(syslog-protocol) log-fifo-size(10000){buffer})"
                    )
                }
                Output::File => format!(
                    "file(\"{}\" template(\"$ISODATE $HOST $PROGRAM: $MSG\\n\"))",
                    out_file.display()
                ),
            };
            format!("destination d_out{i} {{ {d}; }};\n")
        })
        .collect();
    let uses: String = (0..dests.len())
        .map(|i| format!(" destination(d_out{i});"))
        .collect();
    let dests = dests.concat();
    format!(
        "@version: 3.38\noptions {{ keep-hostname(yes); keep-timestamp(yes); stats-freq(0); log-msg-size(65536); }};\nsource s_in {{ {source}; }};\n{dests}log {{ source(s_in);{uses} flags(flow-control); }};\n"
    )
}
