//! The shape every source and destination has, and how the daemon finds one by its `type`.
//!
//! A component is one module — `sources/<type>.rs`, `destinations/<type>.rs` — that owns its
//! config struct, how that struct is read from TOML (with the position-keeping
//! [`reader`](crate::config::reader), so an error still names `file:line: key`), the endpoints
//! it claims, its line in the start-up summary and how it starts. The
//! [`registry`](crate::registry) lists the types. The config reads what every component shares
//! (`type`, `format`, `app_name`, `max_frame`; `level`, `match`, `escape`) and hands the rest of
//! the table to the type's [`Read`]; it checks endpoint conflicts through [`SourceSpec::endpoints`].
//! So the config knows no component, and a new type is one file plus one registry line.
//!
//! A component's config is a trait object ([`SourceSpec`], [`DestinationSpec`]) behind an
//! `Arc`: the daemon clones its config on every reload and compares old against new to
//! restart only what changed. A trait object cannot derive `PartialEq`, so every spec is
//! also [`Same`]: compared through a downcast to its own type, which a blanket impl gives every
//! `PartialEq` struct.

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use edgelog_codec::FormatHint;
use edgelog_codec::escape::Escape;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::reader::{Diagnostics, Dirs, Section};
use crate::event::{Device, Event};
use crate::ingest::Ingest;
use crate::stats::DestinationStats;

/// Equality across trait objects: `other` is the same type and equal.
pub(crate) trait Same: Any + fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Any) -> bool;
}

impl<T: Any + PartialEq + fmt::Debug + Send + Sync> Same for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// Reads a type's own keys from its table (the shared ones are read already); `None` when a
/// required one is missing or bad, which is reported in the diagnostics.
pub(crate) type Read<T> = fn(&mut Diagnostics<'_>, &mut Section<'_, '_>, &Dirs) -> Option<T>;

/// The types the daemon knows, by `type` name.
pub(crate) struct Registry {
    pub sources: &'static [SourceType],
    pub destinations: &'static [DestinationType],
    /// Source types that are planned but not in this build: refused with that reason rather
    /// than as unknown.
    pub sources_later: &'static [&'static str],
}

impl Registry {
    pub(crate) fn source(&self, name: &str) -> Option<&SourceType> {
        self.sources.iter().find(|t| t.name == name)
    }

    pub(crate) fn destination(&self, name: &str) -> Option<&DestinationType> {
        self.destinations.iter().find(|t| t.name == name)
    }
}

/// A source type: its name, its default `format`, and how its table is read.
#[derive(Clone, Copy)]
pub(crate) struct SourceType {
    pub name: &'static str,
    /// How frames are decoded when the table gives no `format`.
    pub format: FormatHint,
    pub read: Read<Arc<dyn SourceSpec>>,
}

/// A source's own config: what it claims, how it is described, how it starts.
pub(crate) trait SourceSpec: Same {
    fn type_name(&self) -> &'static str;
    /// What it listens on that no other source may (`tcp 127.0.0.1:514`, `unix socket /dev/log`).
    fn endpoints(&self) -> Vec<String> {
        Vec::new()
    }
    /// Its line in the start-up summary and in `GET /v1/status`.
    fn describe(&self) -> String;
    /// The app name of records that carry none, given the configured `app_name`.
    fn app_name(&self, configured: Option<&str>) -> Option<String> {
        configured.map(str::to_owned)
    }
    /// Binds its socket or opens its file now — so what cannot be opened fails the start with
    /// the source's name — and only then spawns its loop.
    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<JoinHandle<()>>;
}

/// Whether two specs are the same config (same type, equal fields).
pub(crate) fn same<T: Same + ?Sized>(a: &T, b: &T) -> bool {
    a.same(b.as_any())
}

/// What a starting source gets besides its own config.
pub(crate) struct SourceStart<'a> {
    pub name: &'a str,
    pub ingest: Ingest,
    pub stop: Stop,
    /// The configured `max_frame`.
    pub max_frame: usize,
    /// The configured `app_name`.
    pub app_name: Option<&'a str>,
    pub run_dir: &'a Path,
    pub state_dir: &'a Path,
    /// The sockets systemd passed (socket activation).
    pub activated: &'a crate::systemd::Activated,
}

/// The signal that tells a source to stop.
#[derive(Debug, Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A stop signal and the switch that fires it.
    pub(crate) fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Resolves once stopping was asked for (at once if it already was).
    pub(crate) async fn wait(&mut self) {
        // An error means the switch is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// A destination type: its name and how its table is read.
#[derive(Clone, Copy)]
pub(crate) struct DestinationType {
    pub name: &'static str,
    pub read: Read<Arc<dyn DestinationSpec>>,
}

/// A destination's own config: where it writes, how it is described, how it starts.
pub(crate) trait DestinationSpec: Same {
    fn type_name(&self) -> &'static str;
    /// Where it writes: a path, or a transport and an address (`tls logs.example:6514`).
    fn endpoint(&self) -> String;
    /// How it writes, for the start-up summary (format, rotation, queue).
    fn how(&self) -> String;
    /// The delimiter framing it writes text records in, when a newline or NUL in a record
    /// could end the record and forge another (`escape = "none"` is refused there).
    fn breakable_framing(&self) -> Option<&'static str> {
        None
    }
    /// Whether a full queue holds up the pipeline (`when_full = "block"`).
    fn blocks(&self) -> bool {
        false
    }
    /// Whether it is the box's local archive (what a blocking destination would hold up).
    fn local_store(&self) -> bool {
        false
    }
    /// Prepares the sink (checks what can be checked, starts a network sender); the sink is
    /// opened by the returned [`Built::open`], on the destination's thread when it replaces
    /// another.
    fn build(&self, cx: DestinationStart<'_>) -> anyhow::Result<Built>;
}

/// What a starting destination gets besides its own config.
pub(crate) struct DestinationStart<'a> {
    pub name: &'a str,
    pub escape: Escape,
    pub stats: Arc<DestinationStats>,
    pub state_dir: &'a Path,
    pub runtime: &'a tokio::runtime::Handle,
    /// Set when the daemon begins to stop: until then a full disk or queue is waited out.
    pub stop_at: watch::Receiver<Option<Instant>>,
}

/// Opens a destination's sink.
pub(crate) type Opener = Box<dyn FnOnce() -> anyhow::Result<Box<dyn Sink>> + Send>;

/// A destination ready to open: its sink's opener, and the sender task of a network one.
pub(crate) struct Built {
    pub open: Opener,
    pub sender: Option<JoinHandle<()>>,
}

impl Built {
    /// A destination with no task of its own.
    pub(crate) fn local(open: Opener) -> Built {
        Built { open, sender: None }
    }
}

/// What a destination writes records with, on its own thread.
pub(crate) trait Sink: Send {
    /// Writes one record; returns the bytes written.
    fn write(&mut self, e: &Event, device: &Device) -> std::io::Result<usize>;
    /// Makes what was written visible (to readers of the file, to the pipe).
    fn flush(&mut self) -> std::io::Result<()>;
    /// Called at least once a second: time-based work such as rotation by age.
    fn tick(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// Makes everything written so far survive a crash of the daemon (for a batch that
    /// carries a ticket): flushed to the file, synced into the disk queue.
    fn durable(&mut self) -> std::io::Result<()> {
        self.flush()
    }
    /// The sink's own work besides the router's batches, waited on with them: a queue's
    /// sender asking for records or saying what became of them. Done when `Ready`.
    fn poll_work(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
    /// Called once at the end: flush and make durable.
    fn close(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}
