//! `edgelog`, the operator CLI.
//!
//! Verbs follow the RBFS operator vocabulary (`show log …`, `set log level …`) and Unix habits:
//! every view has `--json`, errors go to stderr with the file, key or address involved, and the
//! exit code says what happened — 0 success, 1 the operation failed, 2 bad usage or bad input
//! (clap exits 2 on usage errors by itself). A closed pipe (`edgelog … | head`) is not an
//! error: output stops and the exit code is 0.

mod decode;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// edgelog: the logging stack of edge and network devices.
#[derive(Debug, Parser)]
#[command(name = "edgelog", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode raw log bytes from stdin into one JSON object per frame.
    Decode(decode::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edgelog: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
