//! `edgelog run -n NAME -- CMD [ARGS…]`: runs a command and streams its output into edgelogd
//! as records, the way linuxkit's `logwrite` does for memlogd.
//!
//! Two socket pairs are made, one for the command's stdout and one for its stderr; their far
//! ends are passed to the daemon's `memlogd` source over its logwrite socket (`SCM_RIGHTS`),
//! named `NAME.out` and `NAME`. The command's output is also copied to our own stdout and
//! stderr, so running under `edgelog run` changes nothing for whoever watches the terminal.
//! The daemon reads each descriptor until the command (and we) close it; our exit code is
//! the command's (128 + N when it died of signal N). Without a daemon to hand the output to,
//! the command still runs, with its output on the terminal only, and a warning says so.

use std::io::{self, IoSlice, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context as _;
use clap::Args;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The source name: stdout becomes NAME.out, stderr NAME (default: the command's name).
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// The daemon's memlogd logwrite socket (default: <run_dir>/linuxkit-external-logging.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Passes `fd` to the logwrite socket under `name`.
fn pass(sock: &UnixDatagram, path: &Path, name: &str, fd: &UnixStream) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    let addr = nix::sys::socket::UnixAddr::new(path).map_err(io::Error::from)?;
    sendmsg(
        sock.as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::empty(),
        Some(&addr),
    )
    .map(drop)
    .map_err(io::Error::from)
}

/// Copies `from` to `to` and, while it can, to `log`.
fn tee(mut from: impl io::Read, mut to: impl io::Write, mut log: Option<UnixStream>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = to.write_all(&buf[..n]);
        let _ = to.flush();
        if let Some(l) = &mut log
            && l.write_all(&buf[..n]).is_err()
        {
            eprintln!("edgelog run: the daemon stopped reading; output goes to the terminal only");
            log = None;
        }
    }
}

pub(crate) fn run(run_dir: &Path, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let program = &args.command[0];
    let name = args.name.clone().unwrap_or_else(|| {
        Path::new(program)
            .file_name()
            .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned())
    });
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| run_dir.join("linuxkit-external-logging.sock"));

    // Our ends of the two pairs; the far ends go to the daemon.
    let handed = (|| -> io::Result<(UnixStream, UnixStream)> {
        let sock = UnixDatagram::unbound()?;
        let (out_ours, out_theirs) = UnixStream::pair()?;
        let (err_ours, err_theirs) = UnixStream::pair()?;
        pass(&sock, &socket, &format!("{name}.out"), &out_theirs)?;
        pass(&sock, &socket, &name, &err_theirs)?;
        Ok((out_ours, err_ours))
    })();
    let (out_log, err_log) = match handed {
        Ok((o, e)) => (Some(o), Some(e)),
        Err(e) => {
            eprintln!(
                "edgelog run: cannot hand output to edgelogd at {}: {e}; running without capture",
                socket.display()
            );
            (None, None)
        }
    };

    let mut child = Command::new(program)
        .args(&args.command[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let copiers = [
        out.map(|o| std::thread::spawn(move || tee(o, io::stdout(), out_log))),
        err.map(|e| std::thread::spawn(move || tee(e, io::stderr(), err_log))),
    ];
    let status = child
        .wait()
        .with_context(|| format!("waiting for {program}"))?;
    for c in copiers.into_iter().flatten() {
        let _ = c.join();
    }
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
