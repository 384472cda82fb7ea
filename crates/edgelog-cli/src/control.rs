//! The CLI's side of edgelogd's control socket: `status`, `reload`, `show log destinations`,
//! and the live stream behind `tail --live`.
//!
//! The socket speaks HTTP/1.1 with JSON bodies; the few requests the CLI makes are written by
//! hand over a `UnixStream` (one request per connection, `Connection: close`; the follow
//! stream's chunked body is read chunk by chunk), which needs no HTTP client library. A daemon that is not running is a clear error naming the socket.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::view::{columns, write_out};

/// The socket's name in the run directory (edgelogd's `control::SOCKET`).
const SOCKET: &str = "control.sock";

/// Connects to the daemon's socket, with an error that says where we looked.
fn connect(run_dir: &Path) -> anyhow::Result<UnixStream> {
    let sock = run_dir.join(SOCKET);
    UnixStream::connect(&sock).with_context(|| {
        format!(
            "cannot reach edgelogd at {} (is it running with this run directory?)",
            sock.display()
        )
    })
}

fn send_request(s: &mut UnixStream, method: &str, path: &str) -> std::io::Result<()> {
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: edgelogd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// The status code of a response head.
fn status_code(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn is_chunked(head: &str) -> bool {
    head.to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
}

/// One request; returns the status code and the body.
fn request(run_dir: &Path, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = connect(run_dir)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    send_request(&mut s, method, path)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .context("reading edgelogd's answer")?;
    let text = String::from_utf8_lossy(&resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("edgelogd sent no HTTP answer");
    };
    // Bodies are small and sent whole; a chunked one is one chunk plus the terminator.
    let body = if is_chunked(head) {
        body.split_once("\r\n")
            .map_or("", |(_, rest)| rest)
            .rsplit_once("\r\n0\r\n")
            .map_or(body, |(b, _)| b)
    } else {
        body
    };
    Ok((status_code(head), body.to_owned()))
}

/// A streaming `GET`: calls `each` with every line of the body as it arrives, until the
/// daemon ends the stream (it stopped) or `each` fails (stdout closed).
pub(crate) fn follow_lines(
    run_dir: &Path,
    path: &str,
    mut each: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    let mut s = connect(run_dir)?;
    send_request(&mut s, "GET", path)?;
    let mut r = std::io::BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)
            .context("reading edgelogd's answer")?
            == 0
        {
            bail!("edgelogd closed the connection before answering");
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let code = status_code(&head);
    if code != 200 {
        let mut body = String::new();
        let _ = r.read_to_string(&mut body);
        bail!("edgelogd answered {code}: {}", body.trim());
    }
    let chunked = is_chunked(&head);
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        if chunked {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("edgelogd sent a bad chunk size {size:?}"))?;
            if n == 0 {
                return Ok(());
            }
            chunk.resize(n + 2, 0);
            r.read_exact(&mut chunk)?;
            chunk.truncate(n);
        } else if r.read_until(b'\n', &mut chunk)? == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&chunk);
        while let Some(at) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            each(String::from_utf8_lossy(&line[..at]).as_ref())?;
        }
    }
}

fn get_json(run_dir: &Path, path: &str) -> anyhow::Result<Value> {
    let (code, body) = request(run_dir, "GET", path)?;
    if code != 200 {
        bail!("edgelogd answered {code}: {}", body.trim());
    }
    serde_json::from_str(&body).context("edgelogd's answer is not JSON")
}

pub(crate) fn status(run_dir: &Path, json: bool) -> anyhow::Result<()> {
    let s = get_json(run_dir, "/v1/status")?;
    if json {
        return write_out(&format!("{s}\n"));
    }
    let mut out = format!(
        "edgelogd {} (pid {}), up {}s, config {}\n  run dir    {}\n  state dir  {}\n",
        s["version"].as_str().unwrap_or("?"),
        s["pid"],
        s["uptime_seconds"],
        s["config"].as_str().unwrap_or("?"),
        s["run_dir"].as_str().unwrap_or("?"),
        s["state_dir"].as_str().unwrap_or("?"),
    );
    for why in s["degraded"].as_array().into_iter().flatten() {
        out += &format!("  degraded   {}\n", why.as_str().unwrap_or("?"));
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let mut rows = vec![vec!["SOURCE".into(), "TYPE".into(), "LISTENS".into()]];
    for src in s["sources"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&src["name"]),
            text(&src["type"]),
            text(&src["listens"]),
        ]);
    }
    out += &columns(&rows);
    let mut rows = vec![vec![
        "DESTINATION".into(),
        "TYPE".into(),
        "LEVEL".into(),
        "TARGET".into(),
    ]];
    for d in s["destinations"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&d["name"]),
            text(&d["type"]),
            text(&d["level"]),
            text(&d["target"]),
        ]);
    }
    out += &columns(&rows);
    write_out(&out)
}

/// Asks the daemon to reload; `Err` says why not (not running, refused).
pub(crate) fn request_reload(run_dir: &Path) -> anyhow::Result<()> {
    let (code, body) = request(run_dir, "POST", "/v1/reload")?;
    match code {
        200 => Ok(()),
        400 => bail!(
            "reload refused; the daemon goes on as it was:\n{}",
            body.trim_end()
        ),
        _ => bail!("edgelogd answered {code}: {}", body.trim()),
    }
}

pub(crate) fn reload(run_dir: &Path) -> anyhow::Result<()> {
    request_reload(run_dir)?;
    write_out("reloaded\n")
}

/// The running daemon's state directory, where its plugin-alias levels live.
pub(crate) fn daemon_state_dir(run_dir: &Path) -> Option<std::path::PathBuf> {
    let s = get_json(run_dir, "/v1/status").ok()?;
    s["state_dir"].as_str().map(Into::into)
}

/// Each destination's configured level, from the running daemon.
pub(crate) fn destination_levels(run_dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let s = get_json(run_dir, "/v1/status")?;
    Ok(s["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_owned(),
                d["level"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect())
}

/// Every destination (plugin alias) with its counters.
pub(crate) fn show_destinations(run_dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let status = get_json(run_dir, "/v1/status")?;
    let counters: edgelog_api::Counters =
        serde_json::from_value(get_json(run_dir, "/v1/counters")?)
            .context("the daemon's counters are not what this edgelog reads")?;
    let mut list = Vec::new();
    for d in status["destinations"].as_array().into_iter().flatten() {
        let name = d["name"].as_str().unwrap_or("");
        let c = counters.destinations.get(name).cloned().unwrap_or_default();
        let net = c.network.clone().unwrap_or_default();
        let networked = c.network.is_some();
        list.push(json!({
            "alias": name, "type": d["type"], "target": d["target"], "endpoint": d["endpoint"],
            "level": d["level"],
            "up": net.up, "state": net.state,
            "queued_records": networked.then_some(net.queued.records),
            "queued_bytes": networked.then_some(net.queued.bytes),
            "written": c.written,
            "sent": networked.then_some(net.sent),
            "acknowledged": networked.then_some(net.acknowledged),
            "retried": networked.then_some(net.retried), "dropped": c.dropped,
            "last_error": c.last_error, "last_error_time": c.last_error_time,
        }));
    }
    if as_json {
        let mut out = String::new();
        for d in &list {
            out += &format!("{d}\n");
        }
        return write_out(&out);
    }
    let num = |v: &Value| v.as_u64().map_or("-".to_owned(), |n| n.to_string());
    let mut rows = vec![
        [
            "ALIAS",
            "TYPE",
            "TARGET",
            "LEVEL",
            "STATE",
            "QUEUED",
            "BYTES",
            "WRITTEN",
            "SENT",
            "ACKED",
            "RETRIED",
            "DROPPED",
            "LAST ERROR",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for d in &list {
        let dropped: Vec<String> = d["dropped"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let up = match (d["state"].as_str(), d["up"].as_bool()) {
            (Some(state), _) => state,
            (None, Some(true)) => "up",
            (None, Some(false)) => "down",
            (None, None) => "-",
        };
        let err = match (d["last_error"].as_str(), d["last_error_time"].as_str()) {
            (Some(e), Some(t)) => format!("{t} {e}"),
            _ => "-".to_owned(),
        };
        rows.push(vec![
            d["alias"].as_str().unwrap_or("").to_owned(),
            d["type"].as_str().unwrap_or("").to_owned(),
            // The address alone; `status` has the details.
            d["endpoint"].as_str().unwrap_or("-").to_owned(),
            d["level"].as_str().unwrap_or("").to_owned(),
            up.to_owned(),
            num(&d["queued_records"]),
            num(&d["queued_bytes"]),
            num(&d["written"]),
            num(&d["sent"]),
            num(&d["acknowledged"]),
            num(&d["retried"]),
            if dropped.is_empty() {
                "0".into()
            } else {
                dropped.join(",")
            },
            err,
        ]);
    }
    write_out(&columns(&rows))
}

/// `edgelog check-config`: asks the `edgelogd` binary (beside this one, else on `PATH`) to check
/// a configuration, passing its verdict and exit code through.
pub(crate) fn check_config(config: Option<&Path>) -> anyhow::Result<std::process::ExitCode> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("edgelogd")))
        .filter(|p| p.exists());
    let bin = beside.unwrap_or_else(|| "edgelogd".into());
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--check-config");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {} --check-config", bin.display()))?;
    Ok(std::process::ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}
