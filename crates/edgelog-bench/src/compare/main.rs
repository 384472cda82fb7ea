//! `edgelog-compare`: edgelogd, rsyslog and syslog-ng side by side, on the same machine, in one
//! run.
//!
//! Every workload runs each system in turn — alternating, repetition after repetition, so
//! that the machine's drift over the run touches all of them alike — with configurations
//! that do the same job ([`systems`] says how they are made equivalent). Records are numbered
//! (`edgelog-load`), so what arrived is checked by sequence number, not estimated:
//!
//! - `relay`: 1,000,000 RFC 5424 records over TCP in, relayed over TCP to a counting sink,
//!   memory queue; `relay-disk`: the same through each system's disk queue;
//! - `devlog`: `/dev/log`-style unix datagrams into a file at fixed offered rates; the
//!   sender blocks when the socket is full, as glibc's `syslog()` does, so a relay that falls
//!   behind shows as an achieved rate below the offered one, and what it loses inside as lost;
//! - `stall`: UDP in at a fixed rate, TCP out with disk queues, the receiver stops reading
//!   for 30 s mid-stream: loss, duplicates, peak memory;
//! - `isolation`: TCP in, out to a healthy receiver, to one that accepts and never reads,
//!   and to a local file, each system with its default queues: what the healthy receiver and
//!   the file got, and how fast (a stalled receiver must not hold up the others);
//!   `isolation-base`: the same with the second receiver healthy too, the rate to compare
//!   with;
//! - `kill`: a file being written, relayed with disk queues to a receiver that stops reading
//!   for 5 s, so the relay holds a backlog; the relay is killed with SIGKILL in the middle of
//!   it and restarted a second later: loss and duplicates.
//!
//! For each run: the sink's rate (records per second between the first and the last
//! arrival), the relay's CPU seconds (user + system, from `/proc`) per million records, its
//! peak RSS (`VmHWM`), records lost and duplicated. Every run is printed as a JSON line;
//! the summary — medians and edgelogd/peer ratios — as Markdown tables at the end.

mod systems;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::{Value, json};

use systems::{Input, Output, QueueKind, Spec, System};

#[derive(Debug, Parser)]
#[command(name = "edgelog-compare", version, about)]
struct Cli {
    /// Systems to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "edgelogd,rsyslog,syslog-ng"
    )]
    systems: Vec<String>,
    /// Workloads: relay, relay-disk, devlog, stall, isolation-base, isolation, kill.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "relay,relay-disk,devlog,stall,isolation-base,isolation,kill"
    )]
    workloads: Vec<String>,
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Records per relay run.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Offered rates for `devlog`, records per second.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "25000,50000,100000,200000"
    )]
    rates: Vec<u64>,
    /// How long each `devlog` rate is offered.
    #[arg(long, default_value_t = 5)]
    devlog_seconds: u64,
    /// `stall`: the offered rate and how long the receiver stops reading.
    #[arg(long, default_value_t = 20_000)]
    stall_rate: u64,
    #[arg(long, default_value_t = 30)]
    stall_seconds: u64,
    /// `kill`: records written to the file, and how fast.
    #[arg(long, default_value_t = 300_000)]
    kill_count: u64,
    #[arg(long, default_value_t = 50_000)]
    kill_rate: u64,
    /// The edgelogd binary (default: beside this one).
    #[arg(long)]
    edgelogd: Option<PathBuf>,
    #[arg(long, default_value = "rsyslogd")]
    rsyslogd: PathBuf,
    /// The syslog-ng binary (default: $SYSLOG_NG, else bench/.peers from prepare-peers.sh).
    #[arg(long)]
    syslog_ng: Option<PathBuf>,
    /// Also append every run as a JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run edgelogd with its own tables on (one per app in the run directory), to measure
    /// what they cost.
    #[arg(long)]
    edgelogd_tables: bool,
    /// Keep the work directories (configs, relay stderr, outputs) for a look afterwards.
    #[arg(long)]
    keep: bool,
}

/// The tools a run needs.
#[derive(Debug)]
struct Env {
    load: PathBuf,
    clk_tck: f64,
    root: PathBuf,
    keep: bool,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgelog-compare: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let here = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let systems = cli
        .systems
        .iter()
        .map(|s| system(s, &cli, &here))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let env = Env {
        load: here.join("edgelog-load"),
        clk_tck: clock_ticks(),
        root: std::env::temp_dir().join(format!("edgelog-compare-{}", std::process::id())),
        keep: cli.keep,
    };
    if !env.load.exists() {
        bail!(
            "{} is missing: build the edgelog-bench crate",
            env.load.display()
        );
    }
    let mut json_out = match &cli.json {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let mut rows = Vec::new();
    for workload in &cli.workloads {
        for rep in 1..=cli.reps {
            for sys in &systems {
                let params: Vec<Option<u64>> = if workload == "devlog" {
                    cli.rates.iter().copied().map(Some).collect()
                } else {
                    vec![None]
                };
                for param in params {
                    let work = env.root.join(format!(
                        "{workload}-{}-{rep}-{}",
                        sys.name(),
                        param.unwrap_or(0)
                    ));
                    let mut row = match workload.as_str() {
                        "relay" => relay(&env, sys, &work, cli.count, QueueKind::Memory),
                        "relay-disk" => relay(&env, sys, &work, cli.count, QueueKind::Disk),
                        "devlog" => devlog(
                            &env,
                            sys,
                            &work,
                            param.unwrap_or(0),
                            cli.devlog_seconds,
                        ),
                        "stall" => stall(&env, sys, &work, cli.stall_rate, cli.stall_seconds),
                        "isolation" => isolation(&env, sys, &work, cli.count, true),
                        "isolation-base" => isolation(&env, sys, &work, cli.count, false),
                        "kill" => kill(&env, sys, &work, cli.kill_count, cli.kill_rate),
                        other => bail!(
                            "unknown workload {other:?}: expected relay, relay-disk, devlog, stall, isolation-base, isolation or kill"
                        ),
                    }
                    .unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
                    row["workload"] = json!(workload);
                    row["system"] = json!(sys.name());
                    row["rep"] = json!(rep);
                    if let Some(p) = param {
                        row["offered_rate"] = json!(p);
                    }
                    println!("{row}");
                    if let Some(f) = &mut json_out {
                        use std::io::Write as _;
                        writeln!(f, "{row}")?;
                    }
                    if !env.keep {
                        let _ = std::fs::remove_dir_all(&work);
                    }
                    rows.push(row);
                }
            }
        }
    }
    if !env.keep {
        let _ = std::fs::remove_dir_all(&env.root);
    }
    print!("{}", summary(&rows, &cli.systems));
    Ok(())
}

fn system(name: &str, cli: &Cli, here: &Path) -> anyhow::Result<System> {
    match name {
        "edgelogd" => {
            let bin = cli
                .edgelogd
                .clone()
                .unwrap_or_else(|| here.join("edgelogd"));
            if !bin.exists() {
                bail!(
                    "{} is missing: cargo build --release -p edgelogd",
                    bin.display()
                );
            }
            Ok(System::Edgelogd {
                bin,
                tables: cli.edgelogd_tables,
            })
        }
        "rsyslog" => Ok(System::Rsyslog(cli.rsyslogd.clone())),
        "syslog-ng" => {
            let bin = cli
                .syslog_ng
                .clone()
                .or_else(|| std::env::var_os("SYSLOG_NG").map(PathBuf::from))
                .unwrap_or_else(|| {
                    // target/release → the workspace → bench/.peers
                    here.join("../../bench/.peers/syslog-ng/usr/sbin/syslog-ng")
                });
            if !bin.exists() {
                bail!("{} is missing: run bench/prepare-peers.sh", bin.display());
            }
            System::syslog_ng(bin)
        }
        other => bail!("unknown system {other:?}: expected edgelogd, rsyslog or syslog-ng"),
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A loopback port free right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A relay process.
#[derive(Debug)]
struct Relay {
    child: Child,
}

/// CPU seconds and peak RSS (kB) of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu: f64,
    hwm_kb: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            cpu: self.cpu + o.cpu,
            hwm_kb: self.hwm_kb.max(o.hwm_kb),
        }
    }
}

impl Relay {
    fn start(sys: &System, spec: &Spec, work: &Path) -> anyhow::Result<Relay> {
        let child = sys
            .prepare(spec, work)?
            .spawn()
            .with_context(|| format!("starting {}", sys.name()))?;
        let mut relay = Relay { child };
        relay.wait_ready(spec, work)?;
        Ok(relay)
    }

    /// Until the input takes records (a listening port, a bound socket); a moment for what
    /// cannot be probed.
    fn wait_ready(&mut self, spec: &Spec, work: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let err = std::fs::read_to_string(work.join("relay.err")).unwrap_or_default();
                bail!("the relay exited at start ({status}): {}", err.trim());
            }
            let ready = match &spec.input {
                Input::Tcp(p) => std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok(),
                Input::Unix(path) => path.exists(),
                Input::Udp(_) | Input::File(_) => true,
            };
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("the relay did not get ready within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Outputs connect, files are opened; the same settling time for every system.
        std::thread::sleep(Duration::from_millis(700));
        Ok(())
    }

    fn usage(&self, env: &Env) -> Usage {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
        let cpu = (ticks(11) + ticks(12)) / env.clk_tck;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Usage { cpu, hwm_kb }
    }

    /// SIGTERM, bounded; SIGKILL when it does not stop.
    fn stop(mut self, env: &Env) -> Usage {
        let u = self.usage(env);
        signal(&self.child, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        u
    }

    /// SIGKILL: no chance to save anything.
    fn kill9(mut self, env: &Env) -> Usage {
        let u = self.usage(env);
        signal(&self.child, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        u
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig);
}

/// `edgelog-load` with `args`; its JSON report.
fn load(env: &Env, args: &[String]) -> anyhow::Result<Value> {
    let out = Command::new(&env.load).args(args).output()?;
    if !out.status.success() {
        bail!(
            "edgelog-load {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A counting sink on a free port, listening when this returns.
fn start_sink(env: &Env, expect: u64, extra: &[String]) -> anyhow::Result<(u16, Child)> {
    for _ in 0..10 {
        let port = free_port()?;
        let mut child = Command::new(&env.load)
            .args([
                "sink".to_owned(),
                "--listen".to_owned(),
                format!("tcp://127.0.0.1:{port}"),
                "--expect".to_owned(),
                expect.to_string(),
                "--idle-seconds".to_owned(),
                "20".to_owned(),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                break; // the port was taken meanwhile: try another
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((port, child));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    bail!("no port for the sink")
}

/// The sink's report once it is done (bounded by `limit`).
fn sink_report(mut sink: Child, limit: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + limit;
    while sink.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = sink.kill();
            bail!("the sink did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = sink.wait_with_output()?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn row(sink: &Value, usage: Usage, count: u64) -> Value {
    let delivered = sink["distinct"].as_u64().unwrap_or(0);
    json!({
        "rate": sink["rate"].as_f64().unwrap_or(0.0).round(),
        "cpu_seconds": usage.cpu,
        "cpu_per_million": if delivered > 0 { usage.cpu * 1e6 / delivered as f64 } else { 0.0 },
        "peak_rss_mb": usage.hwm_kb as f64 / 1024.0,
        "sent": count,
        "delivered": delivered,
        "lost": count.saturating_sub(delivered),
        "duplicates": sink["duplicates"],
        "duplicated_range": sink["duplicated_range"],
    })
}

fn relay(
    env: &Env,
    sys: &System,
    work: &Path,
    count: u64,
    queue: QueueKind,
) -> anyhow::Result<Value> {
    let (out, sink) = start_sink(env, count, &[])?;
    let spec = Spec::new(Input::Tcp(free_port()?), Output::Tcp(out), queue);
    let relay = Relay::start(sys, &spec, work)?;
    let Input::Tcp(inp) = spec.input else {
        unreachable!()
    };
    load(
        env,
        &[
            "send".into(),
            "--to".into(),
            format!("tcp://127.0.0.1:{inp}"),
            "--count".into(),
            count.to_string(),
        ],
    )?;
    let report = sink_report(sink, Duration::from_secs(300));
    let usage = relay.stop(env);
    Ok(row(&report?, usage, count))
}

fn devlog(env: &Env, sys: &System, work: &Path, rate: u64, seconds: u64) -> anyhow::Result<Value> {
    let sock = work.join("log.sock");
    let spec = Spec::new(Input::Unix(sock.clone()), Output::File, QueueKind::Memory);
    let relay = Relay::start(sys, &spec, work)?;
    let count = rate * seconds;
    let sent = load(
        env,
        &[
            "send".into(),
            "--to".into(),
            format!("unix://{}", sock.display()),
            "--count".into(),
            count.to_string(),
            "--rate".into(),
            rate.to_string(),
            "--format".into(),
            "rfc3164".into(),
        ],
    )?;
    let file = sys.output_file(work);
    settle(&file);
    let usage = relay.stop(env);
    let counted = count_file(env, &file, count)?;
    let mut r = row(&counted, usage, count);
    // What the sender managed: below the offered rate when the relay held it back.
    r["rate"] = json!(sent["rate"].as_f64().unwrap_or(0.0).round());
    Ok(r)
}

/// What `edgelog-load count` finds of records `0..count` in `file`.
fn count_file(env: &Env, file: &Path, count: u64) -> anyhow::Result<Value> {
    load(
        env,
        &[
            "count".into(),
            "--file".into(),
            file.display().to_string(),
            "--expect".into(),
            count.to_string(),
        ],
    )
}

/// Waits (at most two minutes) until `file` stops growing.
fn settle(file: &Path) {
    let mut last = (0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let len = std::fs::metadata(file).map_or(0, |m| m.len());
        if len != last.0 {
            last = (len, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(1500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One healthy receiver, a second one that takes the first chunk and then never reads again
/// (when `stalled`; else it reads everything too), and a local file; each system with its
/// default queues. The row's rate and delivered are the first receiver's; `file_delivered` is
/// the file's.
fn isolation(
    env: &Env,
    sys: &System,
    work: &Path,
    count: u64,
    stalled: bool,
) -> anyhow::Result<Value> {
    let (healthy, healthy_sink) = start_sink(env, count, &[])?;
    let mut spec = Spec::new(
        Input::Tcp(free_port()?),
        Output::Tcp(healthy),
        QueueKind::Default,
    );
    let stall = ["--stall-after", "1", "--stall-seconds", "100000"].map(String::from);
    let (second, mut second_sink) = start_sink(env, count, if stalled { &stall } else { &[] })?;
    spec.also = vec![Output::Tcp(second), Output::File];
    let relay = Relay::start(sys, &spec, work)?;
    let Input::Tcp(inp) = spec.input else {
        unreachable!()
    };
    // A relay held up by the stalled receiver stops reading: the sender is given a minute.
    let mut sender = Command::new(&env.load)
        .args(["send", "--to", &format!("tcp://127.0.0.1:{inp}")])
        .args(["--count", &count.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let report = sink_report(healthy_sink, Duration::from_secs(90));
    let sent_deadline = Instant::now() + Duration::from_secs(60);
    while sender.try_wait()?.is_none() && Instant::now() < sent_deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sender.kill();
    let _ = sender.wait();
    let file = sys.output_file(work);
    settle(&file);
    let usage = relay.stop(env);
    let _ = second_sink.kill();
    let _ = second_sink.wait();
    let counted = count_file(env, &file, count)?;
    // The healthy receiver's report: a relay that stalled gives it less than `count`, and
    // the sink ends 20 s after the last record.
    let mut r = row(&report?, usage, count);
    r["file_delivered"] = counted["distinct"].clone();
    Ok(r)
}

fn stall(env: &Env, sys: &System, work: &Path, rate: u64, pause: u64) -> anyhow::Result<Value> {
    // A stream of pause + 15 s, the receiver stopping 5 s in.
    let count = rate * (pause + 15);
    let (out, sink) = start_sink(
        env,
        count,
        &[
            "--stall-after".into(),
            (rate * 5).to_string(),
            "--stall-seconds".into(),
            pause.to_string(),
        ],
    )?;
    let inp = free_port()?;
    let spec = Spec::new(Input::Udp(inp), Output::Tcp(out), QueueKind::Disk);
    let relay = Relay::start(sys, &spec, work)?;
    load(
        env,
        &[
            "send".into(),
            "--to".into(),
            format!("udp://127.0.0.1:{inp}"),
            "--count".into(),
            count.to_string(),
            "--rate".into(),
            rate.to_string(),
        ],
    )?;
    let report = sink_report(sink, Duration::from_secs(pause + 300));
    let usage = relay.stop(env);
    // The rate is the sender's, fixed; what counts is what arrived.
    let mut r = row(&report?, usage, count);
    r["rate"] = Value::Null;
    Ok(r)
}

fn kill(env: &Env, sys: &System, work: &Path, count: u64, rate: u64) -> anyhow::Result<Value> {
    std::fs::create_dir_all(work)?;
    let file = work.join("app.log");
    std::fs::write(&file, "")?;
    // The receiver hangs a quarter of the way in, so the relay has a backlog when it dies.
    let (out, sink) = start_sink(
        env,
        count,
        &[
            "--stall-after".into(),
            (count / 4).to_string(),
            "--stall-seconds".into(),
            "5".into(),
        ],
    )?;
    let spec = Spec::new(Input::File(file.clone()), Output::Tcp(out), QueueKind::Disk);
    let first = Relay::start(sys, &spec, work)?;
    let mut writer = Command::new(&env.load)
        .args(["write", "--file"])
        .arg(&file)
        .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
        .stdout(Stdio::null())
        .spawn()?;
    // A third of the way in (the receiver hanging), the relay dies; it is back a second later.
    std::thread::sleep(Duration::from_secs_f64(count as f64 / rate as f64 / 3.0));
    let used = first.kill9(env);
    std::thread::sleep(Duration::from_secs(1));
    let second = Relay::start(sys, &spec, work)?;
    let _ = writer.wait();
    let report = sink_report(sink, Duration::from_secs(300));
    let usage = used + second.stop(env);
    let mut r = row(&report?, usage, count);
    r["rate"] = Value::Null;
    Ok(r)
}

/// `v` with `places` decimals and a unit, or `-` when there is no value.
fn fmt(v: f64, places: usize, unit: &str) -> String {
    if v.is_finite() {
        format!("{v:.places$}{unit}")
    } else {
        "-".to_owned()
    }
}

/// The median of the values.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Medians per workload (and offered rate) and system, with edgelogd/peer ratios.
fn summary(rows: &[Value], systems: &[String]) -> String {
    let mut groups: BTreeMap<(String, u64), BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    for r in rows {
        let key = (
            r["workload"].as_str().unwrap_or("").to_owned(),
            r["offered_rate"].as_u64().unwrap_or(0),
        );
        groups
            .entry(key)
            .or_default()
            .entry(r["system"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(r);
    }
    let mut out = String::new();
    for ((workload, rate), by_system) in &groups {
        let title = if *rate > 0 {
            format!("{workload}, offered {rate} msgs/s")
        } else {
            workload.clone()
        };
        out += &format!(
            "\n### {title}\n\n| system | msgs/s | CPU s per M | peak RSS MB | lost | duplicates | runs |\n|---|---|---|---|---|---|---|\n"
        );
        let med = |sys: &str, key: &str| {
            median(
                by_system
                    .get(sys)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r[key].as_f64())
                    .collect(),
            )
        };
        for sys in systems {
            let Some(runs) = by_system.get(sys) else {
                continue;
            };
            let errors: Vec<&str> = runs.iter().filter_map(|r| r["error"].as_str()).collect();
            let list = |key: &str| {
                runs.iter()
                    .map(|r| r[key].as_u64().map_or("?".to_owned(), |n| n.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let file = if workload.starts_with("isolation") {
                format!(" (the file got {})", list("file_delivered"))
            } else {
                String::new()
            };
            out += &format!(
                "| {sys} | {} | {} | {} | {} | {} | {}{}{file} |\n",
                fmt(med(sys, "rate"), 0, ""),
                fmt(med(sys, "cpu_per_million"), 2, ""),
                fmt(med(sys, "peak_rss_mb"), 1, ""),
                list("lost"),
                list("duplicates"),
                runs.len(),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({} failed: {})", errors.len(), errors[0])
                }
            );
        }
        for peer in systems.iter().filter(|s| *s != "edgelogd") {
            if by_system.contains_key(peer) && by_system.contains_key("edgelogd") {
                let ratio = |key: &str| fmt(med("edgelogd", key) / med(peer, key), 2, "×");
                out += &format!(
                    "| edgelogd / {peer} | {} | {} | {} | | | |\n",
                    ratio("rate"),
                    ratio("cpu_per_million"),
                    ratio("peak_rss_mb"),
                );
            }
        }
    }
    out
}
