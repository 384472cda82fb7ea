//! `edgelogd`: the collector daemon.
//!
//! It gathers every log source of the box (the `/dev/log` socket, syslog over UDP and TCP, the
//! kernel log, files programs write, the library tables, stdin), decodes each frame with the
//! codecs, adds the device's facts, routes each record to every destination that wants it, and
//! keeps a copy in the daemon's own tables for the operator CLI. `pipeline` is the map of how
//! records move and how the daemon reloads and stops without losing any; `config` is the
//! contract's TOML; `sources/` and `destinations/` hold one module per type.
//!
//! This file is the command line; the daemon is the `edgelogd` library crate beside it.
//! With no `--config` it runs the embedded default (docs/configuration.md), so
//! `cargo run --release --bin edgelogd` is a working collector for an unprivileged user.
//! Exit codes: 0 after a clean stop, 1 when starting failed, 2 for bad usage or a bad config.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use edgelogd::pipeline::{ConfigSource, Daemon};
use edgelogd::{config, control, systemd};

/// edgelogd: collects every log of the device and delivers it.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The configuration file (TOML). Without it: /etc/edgelog/edgelogd.toml (root), then
    /// $XDG_CONFIG_HOME/edgelog/edgelogd.toml, else the embedded default.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration, print `ok` or every error with file, line and key, and exit.
    #[arg(long)]
    check_config: bool,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Print the manual page, edgelogd(8), as roff and exit (`edgelogd --print-man > edgelogd.8`).
    #[arg(long)]
    print_man: bool,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL")]
    print_completions: Option<clap_complete::Shell>,
    /// The run directory (tables, sockets); overrides EDGELOG_RUN_DIR and the config.
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// The state directory (checkpoints, store); overrides EDGELOG_STATE_DIR and the config.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The daemon's own log level on stderr: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: tracing::Level,
}

/// `--print-man`, `--print-completions`: the daemon's own manual page and completions.
fn print_docs(cli: &Cli) -> ExitCode {
    use std::io::Write as _;
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    if let Some(shell) = cli.print_completions {
        clap_complete::generate(shell, &mut cmd.clone(), "edgelogd", &mut out);
    } else if let Err(e) = clap_mangen::Man::new(cmd).section("8").render(&mut out) {
        eprintln!("edgelogd: {e}");
        return ExitCode::FAILURE;
    }
    match std::io::stdout().write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgelogd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard one: a daemon that accepts connections
/// for every source and its control socket should not run out at 1,024 while the system
/// allows more (the accept loops back off when it does run out).
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("edgelogd: raising the open-file limit from {soft} to {hard}: {e}");
    }
}

fn main() -> ExitCode {
    // Before anything else, while the process has one thread: it edits the environment.
    systemd::take_passed_sockets();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let source = ConfigSource {
        file: cli
            .config
            .clone()
            .or_else(edgelog_core::paths::discover_config),
        run_dir: cli.run_dir.clone(),
        state_dir: cli.state_dir.clone(),
    };
    if cli.print_default_config {
        print!("{}", source.default_config());
        return ExitCode::SUCCESS;
    }
    if cli.print_man || cli.print_completions.is_some() {
        return print_docs(&cli);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(cli.log_level)
        .with_target(false)
        .init();

    let (config, dirs) = match source.load() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if cli.check_config {
        println!("ok");
        return ExitCode::SUCCESS;
    }

    raise_descriptor_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("edgelogd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgelogd: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(source, config, dirs))
}

/// Reloads, saying so to systemd (`RELOADING=1`, then `READY=1` whatever the outcome: a
/// refused config leaves the daemon running as it was).
async fn reload(daemon: &mut Daemon) -> Result<(), String> {
    systemd::reloading();
    let result = daemon.reload().await;
    match &result {
        Ok(()) => {
            tracing::info!("reloaded");
            systemd::ready("reloaded");
        }
        Err(e) => {
            tracing::error!("reload refused or incomplete:\n{e}");
            systemd::ready("reload refused or incomplete; running on");
        }
    }
    result
}

async fn run(source: ConfigSource, config: config::Config, dirs: config::Dirs) -> ExitCode {
    // Signals first, so a SIGTERM during start-up is not the default (fatal) action.
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("edgelogd: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    let control_cfg = config.control.clone();
    let mut daemon = match Daemon::start(source, config, dirs).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("edgelogd: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let started = edgelog_core::Timestamp::now();
    let (reload_tx, mut reloads) = tokio::sync::mpsc::channel::<control::ReloadRequest>(4);
    let control = match control::start(
        &control_cfg,
        daemon.run_dir(),
        daemon.state_dir(),
        daemon.stats.clone(),
        reload_tx,
        std::time::Instant::now(),
        daemon.feed.clone(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgelogd: control socket: {e:#}");
            daemon.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    let publish = |d: &Daemon| {
        *control.status.write().unwrap_or_else(|e| e.into_inner()) = d.status(started);
    };
    publish(&daemon);
    {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}", daemon.summary());
        let _ = writeln!(
            err,
            "  control     {}",
            daemon.run_dir().join(control::SOCKET).display()
        );
        let _ = writeln!(err, "edgelogd: ready");
    }
    systemd::ready("ready");
    systemd::spawn_watchdog();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                let _ = reload(&mut daemon).await;
                publish(&daemon);
            }
            Some(reply) = reloads.recv() => {
                tracing::info!("reload asked for on the control socket");
                let result = reload(&mut daemon).await;
                publish(&daemon);
                let _ = reply.send(result);
            }
        }
    }
    systemd::stopping();
    tracing::info!("stopping: draining sources and destinations");
    let stats = daemon.stats.clone();
    daemon.shutdown().await;
    tracing::info!("stopped; counters: {}", stats.to_json());
    ExitCode::SUCCESS
}
