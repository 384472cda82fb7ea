//! `file`: one plain log file, appended to the way rsyslog's omfile writes `/var/log/syslog`.
//!
//! Where [`file_store`](super::file_store) keeps its own rotated, compressed archive, this
//! writes the one file an operator's tools already read, and leaves rotation to logrotate:
//! once a second (and at every batch that follows a second's pause) the path is checked
//! against the open file's identity (device, inode). When logrotate has moved the file away,
//! or deleted it, what is buffered is written to the old file and a new one is created at the
//! path with the configured `mode`, `owner` and `group` — so no `postrotate` signal is needed,
//! and a record written in the second before the check is in the rotated file, not lost. A
//! `copytruncate` rotation needs nothing: the file is opened for appending, so the next write
//! lands at the new end.
//!
//! The default format is rsyslog's traditional file format (`Mmm dd HH:MM:SS host tag:
//! msg`, local time, no PRI); `rfc3164`, `rfc5424` and `json` lines are available.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::component::{Built, DestinationSpec, DestinationStart, DestinationType, Sink};
use crate::config::Dirs;
use crate::config::reader::{self, Diagnostics, Section};
use crate::event::{Device, Event};
use crate::output::{Encoder, OutputFormat};

pub(crate) const TYPE: DestinationType = DestinationType { name: "file", read };

/// `type = "file"`.
#[derive(Debug, Clone, PartialEq)]
struct FileConfig {
    /// In the state directory when relative.
    path: PathBuf,
    format: OutputFormat,
    /// The mode a created file gets (0640 by default).
    mode: u32,
    /// Who a created file belongs to; the daemon's user and group when unset.
    owner: Option<u32>,
    group: Option<u32>,
    /// Sync the file at the end of every batch, not only flush it.
    sync: bool,
}

/// A user (`owner`) or group (`group`), by name or number, looked up while the config is
/// read so `--check-config` finds a name the box does not have.
fn id_of(group: bool) -> impl Fn(&toml::de::DeValue<'_>) -> Result<u32, String> {
    move |v| {
        let name = match v {
            toml::de::DeValue::String(s) => s.to_string(),
            _ => return reader::count(0..=u32::MAX as u64)(v).map(|n| n as u32),
        };
        if let Ok(id) = name.parse::<u32>() {
            return Ok(id);
        }
        let found = if group {
            nix::unistd::Group::from_name(&name).map(|g| g.map(|g| g.gid.as_raw()))
        } else {
            nix::unistd::User::from_name(&name).map(|u| u.map(|u| u.uid.as_raw()))
        };
        let what = if group { "group" } else { "user" };
        match found {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(format!("no {what} named {name:?} on this system")),
            Err(e) => Err(format!("looking up {what} {name:?}: {e}")),
        }
    }
}

fn read(
    d: &mut Diagnostics<'_>,
    s: &mut Section<'_, '_>,
    dirs: &Dirs,
) -> Option<Arc<dyn DestinationSpec>> {
    let path = s.required(d, "path", reader::string);
    let format = OutputFormat::read(
        d,
        s,
        &[
            OutputFormat::Traditional,
            OutputFormat::Precise,
            OutputFormat::Rfc3164,
            OutputFormat::Rfc5424,
            OutputFormat::Json,
        ],
    );
    let mode = s.value(d, "mode", reader::mode).unwrap_or(0o640);
    let owner = s.value(d, "owner", id_of(false));
    let group = s.value(d, "group", id_of(true));
    let sync = s.value(d, "sync", reader::boolean).unwrap_or(false);
    Some(Arc::new(FileConfig {
        path: dirs.state_dir.join(path?),
        format,
        mode,
        owner,
        group,
        sync,
    }))
}

impl DestinationSpec for FileConfig {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn endpoint(&self) -> String {
        self.path.display().to_string()
    }

    fn how(&self) -> String {
        format!("{}, mode {:o}", self.format.name(), self.mode)
    }

    fn breakable_framing(&self) -> Option<&'static str> {
        self.format.is_text().then_some("the file's lines")
    }

    fn local_store(&self) -> bool {
        true
    }

    fn build(&self, cx: DestinationStart<'_>) -> anyhow::Result<Built> {
        let (uid, gid) = (self.owner, self.group);
        let encoder = Encoder::new(self.format, cx.escape, cx.stats);
        let cfg = self.clone();
        Ok(Built::local(Box::new(move || {
            let file = PlainFile::open(cfg, uid, gid, encoder)?;
            Ok(Box::new(file) as Box<dyn Sink>)
        })))
    }
}

/// The open file and how to tell that the path no longer leads to it.
struct PlainFile {
    cfg: FileConfig,
    uid: Option<u32>,
    gid: Option<u32>,
    encoder: Encoder,
    out: BufWriter<File>,
    /// The open file's device and inode.
    id: (u64, u64),
    checked: Instant,
    line: Vec<u8>,
}

/// How often the path is compared with the open file.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl PlainFile {
    fn open(
        cfg: FileConfig,
        uid: Option<u32>,
        gid: Option<u32>,
        encoder: Encoder,
    ) -> anyhow::Result<PlainFile> {
        let (file, id) = create(&cfg, uid, gid)?;
        Ok(PlainFile {
            cfg,
            uid,
            gid,
            encoder,
            out: BufWriter::with_capacity(64 * 1024, file),
            id,
            checked: Instant::now(),
            line: Vec::with_capacity(1024),
        })
    }

    /// Opens a new file at the path when the old one was moved away or deleted.
    fn follow_rotation(&mut self) -> io::Result<()> {
        self.checked = Instant::now();
        let moved = match std::fs::metadata(&self.cfg.path) {
            Ok(m) => (m.dev(), m.ino()) != self.id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        if moved {
            // What is buffered belongs to the old file; a failure here is retried, the
            // records still buffered.
            self.out.flush()?;
            let (file, id) = create(&self.cfg, self.uid, self.gid).map_err(io::Error::other)?;
            self.out = BufWriter::with_capacity(64 * 1024, file);
            self.id = id;
            tracing::info!(
                "{}: moved away; writing a new file",
                self.cfg.path.display()
            );
        }
        Ok(())
    }
}

/// Opens the path for appending, creating it (and its directory) with the configured mode and
/// owner.
fn create(
    cfg: &FileConfig,
    uid: Option<u32>,
    gid: Option<u32>,
) -> anyhow::Result<(File, (u64, u64))> {
    let path = &cfg.path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let created = OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(cfg.mode)
        .open(path);
    let opened = match created {
        Ok(file) => {
            // Exactly the configured mode (not less the umask) and owner, as with omfile; a
            // file that was there keeps its own.
            file.set_permissions(std::fs::Permissions::from_mode(cfg.mode))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::fchown(&file, uid, gid)
                    .with_context(|| format!("setting the owner of {}", path.display()))?;
            }
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        Err(e) => Err(e),
    };
    let file = opened.with_context(|| format!("opening {}", path.display()))?;
    let m = file.metadata()?;
    Ok((file, (m.dev(), m.ino())))
}

impl Sink for PlainFile {
    fn write(&mut self, e: &Event, device: &Device) -> io::Result<usize> {
        if self.checked.elapsed() >= CHECK_EVERY {
            self.follow_rotation()?;
        }
        self.line.clear();
        self.encoder.encode(&mut self.line, e, device);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        Ok(self.line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.cfg.sync {
            self.out.get_ref().sync_data()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.checked.elapsed() >= CHECK_EVERY {
            self.follow_rotation()?;
        }
        Ok(())
    }

    fn durable(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    fn close(&mut self) -> io::Result<()> {
        self.durable()
    }
}
