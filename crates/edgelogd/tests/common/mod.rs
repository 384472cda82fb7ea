//! Running the real `edgelogd` binary in tests: a private run and state directory, free
//! loopback ports, records read back from a `stdout` JSON destination, signals, and a bounded
//! wait for everything.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_edgelogd");

/// A loopback port free for both TCP and UDP right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

/// Whether `cmd` can run. Under CI a missing peer fails the test; elsewhere it is skipped
/// with a note.
pub fn have(cmd: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{cmd} is missing; scripts/test installs it"
        );
        eprintln!("skipping: {cmd} is not installed (scripts/test installs it)");
    }
    found
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    dir: Option<tempfile::TempDir>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir().join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("edgelogd.toml")
    }

    /// Starts `edgelogd` with `config` (none: the embedded default) and waits until it says
    /// it is ready.
    pub fn start(config: Option<&str>) -> Daemon {
        Daemon::start_in(tempfile::tempdir().unwrap(), config, Stdio::null())
    }

    /// Like [`start`](Self::start) in a given directory (to restart over the same state),
    /// with the given stdin.
    pub fn start_in(dir: tempfile::TempDir, config: Option<&str>, stdin: Stdio) -> Daemon {
        Daemon::start_with_env(dir, config, stdin, &[])
    }

    /// Like [`start_in`](Self::start_in), with more environment variables.
    pub fn start_with_env(
        dir: tempfile::TempDir,
        config: Option<&str>,
        stdin: Stdio,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        Daemon::launch(dir, config, stdin, env, &[])
    }

    /// Starts `edgelogd` under a wrapper command (`prlimit …`, `faketime …`).
    pub fn start_wrapped(dir: tempfile::TempDir, config: &str, wrapper: &[&str]) -> Daemon {
        Daemon::launch(dir, Some(config), Stdio::null(), &[], wrapper)
    }

    fn launch(
        dir: tempfile::TempDir,
        config: Option<&str>,
        stdin: Stdio,
        env: &[(&str, &std::ffi::OsStr)],
        wrapper: &[&str],
    ) -> Daemon {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        // No config of the user running the tests is found: without `--config`, a test runs
        // the embedded default (or what it put in this directory).
        cmd.env("XDG_CONFIG_HOME", dir.path().join("xdg-config"));
        cmd.envs(env.iter().copied());
        cmd.arg("--run-dir")
            .arg(dir.path().join("run"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--log-level", "debug"])
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(text) = config {
            let path = dir.path().join("edgelogd.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd.spawn().expect("starting edgelogd");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if line == "edgelogd: ready" {
                    let _ = ready_tx.send(());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut d = Daemon {
            child,
            dir: Some(dir),
            lines,
            stderr,
        };
        if ready.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = d.child.kill();
            panic!("edgelogd did not get ready:\n{}", d.stderr());
        }
        d
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).unwrap();
    }

    /// JSON records from the `stdout` destination until `n` arrived or `timeout` passed.
    pub fn records(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.push(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}")),
                ),
                Err(_) => break,
            }
        }
        out
    }

    /// The live counters (`GET /v1/counters` on the control socket).
    pub fn counters(&self) -> Value {
        let (code, body) = control_call(&self.run_dir(), "GET", "/v1/counters");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls the counters until `ready` holds for them (bounded by `timeout`, then panics).
    pub fn wait_for_counters(&self, timeout: Duration, ready: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.counters();
            if ready(&c) {
                return;
            }
            assert!(Instant::now() < deadline, "counters never got there: {c}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most 10 s) until the daemon's log says `text`; then returns how many times it
    /// did. A counter can show a change a moment before its line reaches the log.
    pub fn said(&self, text: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr().contains(text) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stderr().matches(text).count()
    }

    /// Whatever else arrives within `wait`.
    pub fn more_records(&self, wait: Duration) -> Vec<Value> {
        self.records(usize::MAX, wait)
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns the final counters.
    pub fn stop(self) -> (Value, tempfile::TempDir) {
        self.signal(Signal::SIGTERM);
        self.finish()
    }

    /// Waits (bounded) for a clean exit that was asked for; returns the final counters.
    pub fn finish(mut self) -> (Value, tempfile::TempDir) {
        let status = wait_bounded(&mut self.child, Duration::from_secs(20));
        // Let the reader threads see the pipes close.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr();
        assert!(status.success(), "edgelogd exited with {status}:\n{stderr}");
        let counters = stderr
            .lines()
            .find_map(|l| {
                l.split_once("stopped; counters: ")
                    .map(|(_, j)| j.to_owned())
            })
            .unwrap_or_else(|| panic!("no counters in:\n{stderr}"));
        (
            serde_json::from_str(&counters).unwrap(),
            self.dir.take().unwrap(),
        )
    }

    /// SIGKILL: the daemon gets no chance to flush or save anything.
    pub fn kill9(mut self) -> tempfile::TempDir {
        self.signal(Signal::SIGKILL);
        let _ = wait_bounded(&mut self.child, Duration::from_secs(10));
        self.dir.take().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("edgelogd did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request on the control socket: status code and body.
pub fn control_call(run_dir: &Path, method: &str, path: &str) -> (u16, String) {
    use std::io::Read as _;
    let mut s = std::os::unix::net::UnixStream::connect(run_dir.join("control.sock")).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_owned())
}

/// Runs util-linux `logger` with `args`, asserting it succeeded.
pub fn logger(args: &[&str]) {
    let out = Command::new("logger").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `text` to a file, appending.
pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The `seq=N` numbers in the records' messages.
pub fn seqs(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .filter_map(|r| {
            let m = r["message"].as_str()?;
            let at = m.find("seq=")?;
            m[at + 4..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The `edgelog` CLI, built beside `edgelogd` by `cargo test --workspace`. Under CI its
/// absence fails the test; elsewhere the caller skips with a note.
pub fn edgelog_cli() -> Option<PathBuf> {
    let path = PathBuf::from(BIN).with_file_name("edgelog");
    if path.exists() {
        Some(path)
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the edgelog binary is missing; run the workspace's tests (scripts/test)"
        );
        eprintln!("skipping the CLI check: run `cargo test --workspace` to build edgelog");
        None
    }
}

/// A foreground `rsyslogd` with `conf` (written to `dir/rsyslog.conf`); killed when dropped.
pub struct Rsyslogd(Child);

impl Rsyslogd {
    pub fn start(dir: &Path, conf: &str) -> Rsyslogd {
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rsyslogd");
        Rsyslogd(child)
    }

    /// Stops it the way an operator does: SIGTERM, so it finishes what it took.
    pub fn terminate(mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether rsyslog's loadable `module` (from Debian package `package`) is installed; under CI
/// its absence fails the test.
pub fn have_rsyslog_module(module: &str, package: &str) -> bool {
    let found = [
        "/usr/lib/x86_64-linux-gnu/rsyslog",
        "/usr/lib/aarch64-linux-gnu/rsyslog",
        "/usr/lib/rsyslog",
    ]
    .iter()
    .any(|d| Path::new(d).join(format!("{module}.so")).exists());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{package} is missing; scripts/test installs it"
        );
        eprintln!("skipping: {package} is not installed");
    }
    found
}

/// The JSON lines a successful `edgelog … --json` printed.
pub fn json_lines(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A syslog receiver (LF framing) on `port`, once started: the `seq=` of every line
/// [`send_tcp`] sent that it gets.
pub struct Central {
    seqs: Arc<Mutex<Vec<u64>>>,
}

impl Central {
    pub fn start(port: u16) -> Central {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let seqs = Arc::new(Mutex::new(Vec::new()));
        let sink = seqs.clone();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(c) = c else { break };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(c).lines().map_while(Result::ok) {
                        if let Some((_, seq)) = line.rsplit_once(" record seq=") {
                            sink.lock().unwrap().push(seq.parse().unwrap());
                        }
                    }
                });
            }
        });
        Central { seqs }
    }

    /// The distinct sequence numbers once `want` of them arrived (bounded wait), sorted.
    pub fn distinct(&self, want: u64, limit: Duration) -> Vec<u64> {
        let deadline = Instant::now() + limit;
        loop {
            let mut s = self.seqs.lock().unwrap().clone();
            s.sort_unstable();
            s.dedup();
            if s.len() as u64 >= want || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends `n` records over TCP as fast as the daemon takes them.
pub fn send_tcp(port: u16, n: u64) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = Vec::new();
    for seq in 0..n {
        writeln!(buf, "<13>1 - h app - - - record seq={seq}").unwrap();
    }
    s.write_all(&buf).unwrap();
}
