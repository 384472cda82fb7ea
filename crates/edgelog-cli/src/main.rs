//! `edgelog`, the operator CLI.
//!
//! Verbs follow the RBFS operator vocabulary (`show log …`, `set log level …`) and Unix habits:
//! every view has `--json`, errors go to stderr with the file, key or address involved, and the
//! exit code says what happened — 0 success, 1 the operation failed, 2 bad usage or bad input
//! (clap exits 2 on usage errors by itself). A closed pipe (`edgelog … | head`) is not an
//! error: output stops and the exit code is 0.

mod control;
mod decode;
mod import;
mod logger;
mod logs;
mod queue;
mod run;
mod tail;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use edgelog_core::control::Scope;
use edgelog_core::{Level, LevelFilter, Timestamp, paths};

/// edgelog: the logging stack of edge and network devices.
#[derive(Debug, Parser)]
#[command(name = "edgelog", version, about, propagate_version = true)]
struct Cli {
    /// Run directory (tables, levels); default EDGELOG_RUN_DIR, /run/edgelog for root, else
    /// $XDG_RUNTIME_DIR/edgelog or /tmp/edgelog-$UID.
    #[arg(long, global = true, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// State directory (persisted levels); default EDGELOG_STATE_DIR, /var/lib/edgelog for
    /// root, else $XDG_STATE_HOME/edgelog or ~/.local/state/edgelog.
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode raw log bytes from stdin into one JSON object per frame.
    Decode(decode::DecodeArgs),
    /// Show tables, log maps and levels.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// The newest entries of every table, and with -f new ones as they come.
    Tail(TailCli),
    /// Send a syslog message, like util-linux logger.
    Logger(logger::LoggerArgs),
    /// Run a command, streaming its stdout and stderr into edgelogd as records.
    Run(run::RunArgs),
    /// What the running edgelogd does: sources, destinations, uptime.
    Status {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make the running edgelogd re-read its configuration (as SIGHUP does).
    Reload,
    /// Check an edgelogd configuration (without --config, the one edgelogd would run): `ok`,
    /// or every error with file, line and key (exit 2).
    CheckConfig {
        /// The configuration file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Disk queues.
    Queue {
        #[command(subcommand)]
        what: QueueCmd,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), e.g. `edgelog man > edgelog.1`.
    Man,
    /// Convert another logger's configuration to edgelogd's: the TOML on stdout; what cannot
    /// be converted is kept as a comment with the reason, and if it carries records the exit
    /// status is 1.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Change settings.
    Set {
        #[command(subcommand)]
        what: SetWhat,
    },
    /// Remove settings.
    Delete {
        #[command(subcommand)]
        what: DeleteWhat,
    },
}

#[derive(Debug, Subcommand)]
enum ImportWhat {
    /// An rsyslog.conf (and the files it includes): inputs, selectors and their actions,
    /// omfwd/omfile/omrelp actions, queues.
    Rsyslog {
        /// The rsyslog configuration, e.g. /etc/rsyslog.conf.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DeleteWhat {
    /// Logging settings.
    Log {
        #[command(subcommand)]
        what: DeleteLog,
    },
}

#[derive(Debug, Subcommand)]
enum DeleteLog {
    /// Remove the level rule of a scope (as `set log level default`): its events fall back to
    /// the next matching setting. A scope with no rule is a failed operation (exit 1).
    Level {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Remove the export level of this edgelogd destination (plugin alias) instead.
        #[arg(long, value_name = "NAME")]
        plugin_alias: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum QueueCmd {
    /// Check a disk queue offline (read-only): segments, records, checksums, cursors.
    Verify {
        /// The queue's directory.
        dir: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ShowWhat {
    /// Logging: tables, one table, log maps, levels.
    Log {
        #[command(subcommand)]
        what: ShowLog,
    },
}

#[derive(Debug, Subcommand)]
enum ShowLog {
    /// Every table in the run directory.
    Tables {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The entries of one table, oldest first.
    Table(TableArgs),
    /// What each log ID means.
    Maps {
        #[command(flatten)]
        scope: ScopeArgs,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Level rules, and the level each module and group gets from them.
    Levels {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Each destination (plugin alias) of the running edgelogd: queue, sent, retried,
    /// dropped by reason, last error, up or down.
    Destinations {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct TableArgs {
    /// The table, `<module>.<bd>.log`.
    table: String,
    /// Only entries of this severity or more severe.
    #[arg(long)]
    level: Option<Level>,
    /// Only entries since a time (RFC 3339) or a duration ago (30s, 10m, 2h, 1d).
    #[arg(long, value_parser = parse_when)]
    since: Option<Timestamp>,
    /// Only entries until a time (RFC 3339) or a duration ago.
    #[arg(long, value_parser = parse_when)]
    until: Option<Timestamp>,
    /// Only entries whose message matches a regular expression.
    #[arg(long, value_name = "RE")]
    grep: Option<regex::Regex>,
    /// Only the newest N entries.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct TailCli {
    /// Keep following the tables.
    #[arg(short, long)]
    follow: bool,
    /// Entries of backlog to show first.
    #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
    lines: usize,
    /// Only entries of this severity or more severe.
    #[arg(long)]
    level: Option<Level>,
    /// Only tables of this BD.
    #[arg(long)]
    bd: Option<String>,
    /// Only tables of this module.
    #[arg(long)]
    module: Option<String>,
    /// Only entries whose message matches a regular expression.
    #[arg(long, value_name = "RE")]
    grep: Option<regex::Regex>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// How often to look for new entries, in milliseconds.
    #[arg(long, default_value_t = 100, hide = true)]
    interval_ms: u64,
    /// Follow the records passing through the running edgelogd (every source, also those
    /// without daemon tables) instead of the tables; implies -f. --bd matches the app name.
    #[arg(long)]
    live: bool,
}

#[derive(Debug, Subcommand)]
enum SetWhat {
    /// Logging settings.
    Log {
        #[command(subcommand)]
        what: SetLog,
    },
}

#[derive(Debug, Subcommand)]
enum SetLog {
    /// Set the level of a scope: global, a BD, a module (in one BD or all), a group.
    Level {
        /// emergency, alert, critical, error, warning, notice, info, debug or none (or 0-7);
        /// `default` removes the scope's rule (as `delete log level`).
        level: LevelArg,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Set the export level of this edgelogd destination (plugin alias) for the scope,
        /// instead of the level applications log at.
        #[arg(long, value_name = "NAME")]
        plugin_alias: Option<String>,
    },
}

/// A level to set, or `default`: no rule of its own.
#[derive(Debug, Clone, Copy)]
enum LevelArg {
    Level(LevelFilter),
    Default,
}

impl std::str::FromStr for LevelArg {
    type Err = String;

    fn from_str(s: &str) -> Result<LevelArg, String> {
        if s == "default" {
            return Ok(LevelArg::Default);
        }
        s.parse::<LevelFilter>()
            .map(LevelArg::Level)
            .map_err(|e| format!("{e}, or default"))
    }
}

/// `--bd --module --group`: a level scope, or a filter on log maps.
#[derive(Debug, Args)]
struct ScopeArgs {
    /// The BD (the application, as in its tables' names).
    #[arg(long, value_name = "NAME")]
    bd: Option<String>,
    /// A module: of the BD given, or of every BD.
    #[arg(long, value_name = "NAME")]
    module: Option<String>,
    /// A group of log IDs (for example `fib`).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
}

impl From<ScopeArgs> for Scope {
    fn from(a: ScopeArgs) -> Scope {
        Scope {
            bd: a.bd,
            module: a.module,
            group: a.group,
        }
    }
}

/// `30s`, `10m`, `2h`, `1d` ago, or an RFC 3339 time.
fn parse_when(s: &str) -> Result<Timestamp, String> {
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => 0,
    };
    if unit > 0
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
    {
        return Ok(Timestamp::now().add_seconds(-n * unit));
    }
    s.parse::<Timestamp>().map_err(|_| {
        format!("invalid time {s:?}: expected a duration ago (30s, 10m, 2h, 1d) or RFC 3339")
    })
}

/// Bad input found after argument parsing: exit 2, like clap's own usage errors.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_dir = cli.run_dir.clone().unwrap_or_else(paths::default_run_dir);
    let state_dir = cli
        .state_dir
        .clone()
        .unwrap_or_else(paths::default_state_dir);
    let result = match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Show {
            what: ShowWhat::Log { what },
        } => match what {
            ShowLog::Tables { json } => logs::show_tables(&run_dir, json),
            ShowLog::Table(a) => {
                let filter = logs::Filter {
                    level: a.level,
                    since: a.since,
                    until: a.until,
                    grep: a.grep,
                    limit: a.limit,
                };
                logs::show_table(&run_dir, &a.table, &filter, a.json)
            }
            ShowLog::Maps { scope, json } => logs::show_maps(&run_dir, &scope.into(), json),
            ShowLog::Levels { json } => logs::show_levels(&run_dir, &state_dir, json),
            ShowLog::Destinations { json } => control::show_destinations(&run_dir, json),
        }
        .map(|()| ExitCode::SUCCESS),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "edgelog", &mut out);
            view::write_out(&String::from_utf8_lossy(&out)).map(|()| ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| view::write_out(&String::from_utf8_lossy(&out)))
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Import {
            what: ImportWhat::Rsyslog { file },
        } => import::rsyslog(&file).and_then(|c| {
            view::write_out(&c.toml)?;
            if c.incomplete {
                eprintln!(
                    "edgelog: some of {} carries records and was not converted; the comments \
                     under \"Not converted\" say what and why",
                    file.display()
                );
                Ok(ExitCode::FAILURE)
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }),
        Command::Logger(a) => logger::run(&run_dir, &a).map(|()| ExitCode::SUCCESS),
        Command::Run(a) => run::run(&run_dir, &a),
        Command::Status { json } => control::status(&run_dir, json).map(|()| ExitCode::SUCCESS),
        Command::Reload => control::reload(&run_dir).map(|()| ExitCode::SUCCESS),
        Command::CheckConfig { config } => control::check_config(config.as_deref()),
        Command::Queue {
            what: QueueCmd::Verify { dir, json },
        } => queue::verify(&dir, json).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Tail(t) => {
            let args = tail::TailArgs {
                follow: t.follow,
                lines: t.lines,
                level: t.level,
                bd: t.bd,
                module: t.module,
                grep: t.grep,
                json: t.json,
                interval: std::time::Duration::from_millis(t.interval_ms.max(1)),
                live: t.live,
            };
            tail::run(&run_dir, &args).map(|()| ExitCode::SUCCESS)
        }
        Command::Set {
            what:
                SetWhat::Log {
                    what:
                        SetLog::Level {
                            level,
                            scope,
                            plugin_alias,
                        },
                },
        } => match (plugin_alias, level) {
            (Some(alias), LevelArg::Level(level)) => {
                logs::set_plugin_level(&run_dir, &state_dir, &alias, Some(level), scope.into())
            }
            (None, LevelArg::Level(level)) => {
                logs::set_level(&run_dir, &state_dir, Some(level), scope.into())
            }
            (Some(alias), LevelArg::Default) => {
                logs::set_plugin_level(&run_dir, &state_dir, &alias, None, scope.into())
            }
            (None, LevelArg::Default) => logs::set_level(&run_dir, &state_dir, None, scope.into()),
        }
        .map(|()| ExitCode::SUCCESS),
        Command::Delete {
            what:
                DeleteWhat::Log {
                    what:
                        DeleteLog::Level {
                            scope,
                            plugin_alias,
                        },
                },
        } => match plugin_alias {
            Some(alias) => logs::set_plugin_level(&run_dir, &state_dir, &alias, None, scope.into()),
            None => logs::set_level(&run_dir, &state_dir, None, scope.into()),
        }
        .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edgelog: {err:#}");
            if err.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
