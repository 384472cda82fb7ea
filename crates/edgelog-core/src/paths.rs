//! Where edgelog keeps its files (docs/configuration.md, the directory table).
//!
//! The run directory holds tables, control blocks and sockets (tmpfs in production); the state
//! directory holds what must survive a reboot (disk queues, checkpoints, persisted levels).
//! Both the library and the CLI find everything through these alone: no daemon is needed to
//! show a table or set a level.

use std::io;
use std::path::{Path, PathBuf};

/// A name beside `path` that only this process uses (`<name>.<pid>.tmp`): where a file is
/// made whole before it is renamed or linked into place.
pub(crate) fn private_temp(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Replaces `path` with `contents` so that no reader ever sees it half-written: written to a
/// temporary file of this process (`<name>.<pid>.tmp`, so processes writing the same file at
/// once never trip over each other's) and renamed into place.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = private_temp(path);
    let written = std::fs::write(&tmp, contents).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The effective user id, read without libc: `/proc/self` is owned by it.
fn uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The run directory when neither a flag nor a config names one: `EDGELOG_RUN_DIR`, else
/// `/run/edgelog` for root, else `$XDG_RUNTIME_DIR/edgelog`, else `/tmp/edgelog-$UID`.
pub fn default_run_dir() -> PathBuf {
    if let Some(dir) = env_dir("EDGELOG_RUN_DIR") {
        return dir;
    }
    match uid() {
        Some(0) => PathBuf::from("/run/edgelog"),
        uid => env_dir("XDG_RUNTIME_DIR")
            .map(|d| d.join("edgelog"))
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/edgelog-{}", uid.unwrap_or(u32::MAX)))),
    }
}

/// The state directory when neither a flag nor a config names one: `EDGELOG_STATE_DIR`, else
/// `/var/lib/edgelog` for root, else `$XDG_STATE_HOME/edgelog`, else
/// `~/.local/state/edgelog`, else (a user without a home, such as `nobody`)
/// `/tmp/edgelog-state-$UID`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = env_dir("EDGELOG_STATE_DIR") {
        return dir;
    }
    if uid() == Some(0) {
        return PathBuf::from("/var/lib/edgelog");
    }
    if let Some(dir) = env_dir("XDG_STATE_HOME") {
        return dir.join("edgelog");
    }
    env_dir("HOME")
        .filter(|h| h.is_dir())
        .map(|h| h.join(".local/state/edgelog"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/edgelog-state-{}", uid().unwrap_or(0))))
}

/// Where `edgelogd` looks for its configuration when `-c` does not name one, in order:
/// `/etc/edgelog/edgelogd.toml` (root only), then `$XDG_CONFIG_HOME/edgelog/edgelogd.toml`
/// (or `~/.config/edgelog/edgelogd.toml`). The first that exists is used; with none, the
/// embedded default runs.
pub fn config_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if uid() == Some(0) {
        out.push(PathBuf::from("/etc/edgelog/edgelogd.toml"));
    }
    let xdg = env_dir("XDG_CONFIG_HOME").or_else(|| {
        env_dir("HOME")
            .filter(|h| h.is_dir())
            .map(|h| h.join(".config"))
    });
    if let Some(dir) = xdg {
        out.push(dir.join("edgelog/edgelogd.toml"));
    }
    out
}

/// The configuration file `edgelogd` uses without `-c`, if any (see [`config_candidates`]).
pub fn discover_config() -> Option<PathBuf> {
    config_candidates().into_iter().find(|p| p.is_file())
}

/// Whether `name` is usable as a BD, module or group name: 1–31 bytes of letters, digits,
/// `_`, `-`, `.`. Names become file names and fixed-size fields in shared memory.
pub fn valid_name(name: &str) -> bool {
    (1..=31).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "."
        && name != ".."
}
