//! The running daemon: sources → router → destinations, and how it changes shape.
//!
//! ```text
//!  source tasks ───Burst────► router task ──Arc<Batch>──► destination threads
//!   (Ingest: decode,  bounded mpsc   device facts,      bounded mpsc, one per destination
//!    fill host/app/pid)              followers          (Selector, Sink), the tables too
//! ```
//!
//! Every channel is bounded, so a slow destination slows the router, which slows the sources:
//! memory stays bounded and nothing is dropped between a source and a sink.
//!
//! **Reload** (SIGHUP) never loses a record. The new config is read and checked first; a bad one
//! is refused with its errors and the daemon goes on as it was. Components whose config is
//! unchanged keep running untouched (their sockets stay open). New and changed destinations
//! are started and published to the router before anything stops; then removed and changed
//! sources are stopped — each drains what it has read into the router, which routes it to the
//! new set — and new and changed sources start. A destination that is gone from the routes
//! writes out its channel and closes.
//!
//! **Shutdown** (SIGTERM) runs the same drain for everything: sources stop and flush, the
//! router ends when the last source's sender is gone, destinations write what they hold,
//! sync and end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::component::Stop;
use crate::config::{self, Config, DestinationConfig, Dirs, SourceConfig};
use crate::destinations;
use crate::event::{Batch, Burst, Device};
use crate::sources::{self, SourceContext};
use crate::stats::{DestinationDrop, DestinationStats, Registry};

/// Bursts the router may have waiting from all sources together. Small on purpose: more only
/// costs memory and cache (BENCHMARKS.md: 256 -> 64 -> 8, with 64 -> 16 -> 2 batches per
/// destination, took the relay's peak RSS from 52 to 13.5 MB and raised its rate each time).
const ROUTER_BURSTS: usize = 8;

/// What the router sends to: the destinations and the device facts of the current config.
#[derive(Debug)]
struct Routes {
    device: Arc<Device>,
    destinations: Vec<(Arc<DestinationStats>, mpsc::Sender<Arc<Batch>>)>,
}

#[derive(Debug)]
struct RunningSource {
    cfg: SourceConfig,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct RunningDestination {
    cfg: DestinationConfig,
    running: destinations::Running,
}

/// Where the configuration comes from, so a reload reads it the same way.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// `None`: the embedded default.
    pub file: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl ConfigSource {
    /// Whether edgelogd runs as the box's system logger: as root, in the system run
    /// directory. With a run directory of its own (`--run-dir`, `EDGELOG_RUN_DIR`) it is
    /// another instance — a test, a second daemon — and leaves the box's `/dev/log` and
    /// kernel log alone.
    pub fn system_logger(&self) -> bool {
        let own_run_dir = self.run_dir.is_some()
            || std::env::var_os("EDGELOG_RUN_DIR").is_some_and(|v| !v.is_empty());
        nix::unistd::geteuid().is_root() && !own_run_dir
    }

    /// The embedded default this source would run with.
    pub fn default_config(&self) -> String {
        config::default_config(self.system_logger())
    }

    /// Reads and checks the configuration; `Err` carries every error, ready to print.
    pub fn load(&self) -> Result<(Config, Dirs), String> {
        let (name, text) = match &self.file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(t) => (path.display().to_string(), t),
                Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
            },
            None => (
                config::DEFAULT_CONFIG_NAME.to_owned(),
                config::default_config(self.system_logger()),
            ),
        };
        let config_dir = self
            .file
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        config::parse(
            &name,
            &text,
            &crate::registry::REGISTRY,
            |run_dir, state_dir| {
                // docs/configuration.md: the flag, else the environment, else the config, else the default.
                let env = |var: &str| {
                    std::env::var_os(var)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                };
                Dirs {
                    run_dir: self
                        .run_dir
                        .clone()
                        .or_else(|| env("EDGELOG_RUN_DIR"))
                        .or_else(|| run_dir.map(Path::to_owned))
                        .unwrap_or_else(edgelog_core::paths::default_run_dir),
                    state_dir: self
                        .state_dir
                        .clone()
                        .or_else(|| env("EDGELOG_STATE_DIR"))
                        .or_else(|| state_dir.map(Path::to_owned))
                        .unwrap_or_else(edgelog_core::paths::default_state_dir),
                    config_dir,
                }
            },
        )
        .map_err(|e| e.to_string())
    }

    pub fn name(&self) -> String {
        self.file.as_ref().map_or_else(
            || config::DEFAULT_CONFIG_NAME.to_owned(),
            |p| p.display().to_string(),
        )
    }
}

/// Export levels the CLI set for plugin aliases (`<state_dir>/plugin-levels.conf`), by
/// destination. Runtime state, not config: they reach running destinations through
/// [`destinations::Running::set_overrides`] and never restart one. A file the daemon wrote
/// itself never stops it: a bad line is said and skipped.
fn plugin_levels(
    state_dir: &Path,
    config: &Config,
) -> Result<BTreeMap<String, Vec<edgelog_core::control::Rule>>, String> {
    let levels = edgelog_core::control::read_plugin_levels(state_dir).map_err(|e| e.to_string())?;
    for skipped in &levels.skipped {
        tracing::warn!("{skipped}");
    }
    let mut by_alias: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (alias, rule) in levels.rules {
        if config.destinations.contains_key(&alias) {
            by_alias.entry(alias).or_default().push(rule);
        } else {
            tracing::warn!("plugin-alias level for {alias:?}, which the config does not name");
        }
    }
    Ok(by_alias)
}

/// The running daemon. See the module documentation.
#[derive(Debug)]
pub struct Daemon {
    source: ConfigSource,
    config: Config,
    dirs: Dirs,
    pub stats: Arc<Registry>,
    sources: BTreeMap<String, RunningSource>,
    /// Optional sources that could not start, and why (tried again at each reload).
    left_out: BTreeMap<String, String>,
    /// The sockets systemd passed, and the sources made for those no configured one took.
    activated: Arc<crate::systemd::Activated>,
    activated_sources: BTreeMap<String, SourceConfig>,
    destinations: BTreeMap<String, RunningDestination>,
    routes: watch::Sender<Arc<Routes>>,
    /// The box's hostname as the sources fill it in, from the routes' device facts.
    local_host: watch::Sender<Option<Arc<str>>>,
    source_tx: mpsc::Sender<Burst>,
    router: JoinHandle<()>,
    /// Every batch as the router sends it on, for followers (`GET /v1/follow`).
    pub feed: tokio::sync::broadcast::Sender<Arc<Batch>>,
}

impl Daemon {
    /// Starts everything `config` names; fails (with the component's name) if any part
    /// cannot start.
    pub async fn start(source: ConfigSource, config: Config, dirs: Dirs) -> anyhow::Result<Daemon> {
        for (dir, what) in [(&dirs.run_dir, "run"), (&dirs.state_dir, "state")] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the {what} directory {}", dir.display()))?;
        }
        crate::sources::set_http_body_budget(config.http_body_budget);
        let stats = Arc::new(Registry::default());
        let mut overrides = plugin_levels(&dirs.state_dir, &config).map_err(anyhow::Error::msg)?;
        let mut destinations = BTreeMap::new();
        for (name, cfg) in &destinations_of(&config, &dirs, &stats) {
            let running = destinations::start(
                name,
                cfg,
                overrides.remove(name).unwrap_or_default(),
                stats.destination(name),
                &dirs.state_dir,
                tokio::runtime::Handle::current(),
                None,
            )
            .with_context(|| format!("destination {name:?}"))?;
            destinations.insert(
                name.clone(),
                RunningDestination {
                    cfg: cfg.clone(),
                    running,
                },
            );
        }
        let (routes_tx, routes_rx) = watch::channel(routes(&config.device, &destinations, &stats));
        let (local_host, _) = watch::channel(host_of(&routes_rx.borrow()));
        let (source_tx, source_rx) = mpsc::channel(ROUTER_BURSTS);
        let (feed, _) = tokio::sync::broadcast::channel(64);
        let router = tokio::spawn(route(source_rx, routes_rx, feed.clone()));
        let mut daemon = Daemon {
            source,
            config: config.clone(),
            dirs,
            stats,
            sources: BTreeMap::new(),
            left_out: BTreeMap::new(),
            activated: crate::systemd::passed_sockets(),
            activated_sources: BTreeMap::new(),
            destinations,
            routes: routes_tx,
            local_host,
            source_tx,
            router,
            feed,
        };
        for (name, cfg) in &config.sources {
            if let Err(e) = daemon.start_source(name, cfg).await {
                daemon.shutdown().await;
                return Err(e);
            }
        }
        if let Err(e) = daemon.start_activated_sources().await {
            daemon.shutdown().await;
            return Err(e);
        }
        Ok(daemon)
    }

    /// Sources for the sockets systemd passed that no configured source took, named after
    /// them (`FileDescriptorName=`).
    async fn start_activated_sources(&mut self) -> anyhow::Result<()> {
        let extra: Vec<(String, SourceConfig)> = self
            .activated
            .clone()
            .unclaimed()
            .filter_map(|p| Some((p.name.clone(), sources::for_endpoint(&p.endpoint)?)))
            .collect();
        for (want, cfg) in extra {
            let mut name: String = want
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(28)
                .collect();
            while self.sources.contains_key(&name) || self.activated_sources.contains_key(&name) {
                name.push('_');
            }
            self.start_source(&name, &cfg).await?;
            tracing::info!(source = %name, "taking the socket systemd passed: {}", cfg.spec.describe());
            self.activated_sources.insert(name, cfg);
        }
        Ok(())
    }

    async fn start_source(&mut self, name: &str, cfg: &SourceConfig) -> anyhow::Result<()> {
        let cx = SourceContext {
            run_dir: self.dirs.run_dir.clone(),
            state_dir: self.dirs.state_dir.clone(),
            tx: self.source_tx.clone(),
            local_host: self.local_host.subscribe(),
            activated: self.activated.clone(),
        };
        let (stop_tx, stop) = Stop::new();
        let task = match sources::start(name, cfg, &cx, self.stats.source(name), stop) {
            Ok(task) => task,
            Err(e) if cfg.optional => {
                let why = format!("{e:#}");
                tracing::warn!(source = name, "not started, going on without it: {why}");
                self.left_out.insert(name.to_owned(), why);
                return Ok(());
            }
            Err(e) => return Err(e.context(format!("source {name:?}"))),
        };
        self.left_out.remove(name);
        self.sources.insert(
            name.to_owned(),
            RunningSource {
                cfg: cfg.clone(),
                stop: stop_tx,
                task,
            },
        );
        Ok(())
    }

    /// The daemon as `GET /v1/status` describes it.
    pub fn status(&self, started: edgelog_core::Timestamp) -> serde_json::Value {
        let sources: Vec<_> = self
            .sources
            .iter()
            .map(|(name, s)| {
                serde_json::json!({"name": name, "type": s.cfg.spec.type_name(),
                                   "listens": s.cfg.spec.describe()})
            })
            .collect();
        let destinations: Vec<_> = self
            .destinations
            .iter()
            .map(|(name, d)| {
                let overrides: Vec<_> = d
                    .running
                    .overrides()
                    .iter()
                    .map(|r| serde_json::json!({"scope": r.scope.to_string(), "level": r.level.to_string()}))
                    .collect();
                serde_json::json!({"name": name, "type": d.cfg.spec.type_name(),
                                   "target": destinations::describe(&d.cfg),
                                   "endpoint": d.cfg.spec.endpoint(),
                                   "level": d.cfg.level.to_string(),
                                   "level_overrides": overrides})
            })
            .collect();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "config": self.source.name(),
            "run_dir": self.dirs.run_dir.display().to_string(),
            "state_dir": self.dirs.state_dir.display().to_string(),
            "started": started.to_string(),
            "sources": sources,
            "destinations": destinations,
        })
    }

    pub fn run_dir(&self) -> &std::path::Path {
        &self.dirs.run_dir
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.dirs.state_dir
    }

    /// What the daemon listens on and writes to, one line each.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "edgelogd {}: config {}\n  run dir    {}\n  state dir  {}\n",
            env!("CARGO_PKG_VERSION"),
            self.source.name(),
            self.dirs.run_dir.display(),
            self.dirs.state_dir.display()
        );
        for (name, s) in &self.sources {
            out += &format!(
                "  source      {name:<14} {:<14} {}\n",
                s.cfg.spec.type_name(),
                s.cfg.spec.describe()
            );
        }
        for (name, why) in &self.left_out {
            out += &format!("  source      {name:<14} (not started: {why})\n");
        }
        for (name, d) in &self.destinations {
            out += &format!(
                "  destination {name:<14} {:<14} {} [level {}]\n",
                d.cfg.spec.type_name(),
                destinations::describe(&d.cfg),
                d.cfg.level
            );
        }
        out
    }

    /// Re-reads the configuration and applies the difference. See the module documentation.
    pub async fn reload(&mut self) -> Result<(), String> {
        let (config, dirs) = self.source.load()?;
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        if dirs.run_dir != self.dirs.run_dir || dirs.state_dir != self.dirs.state_dir {
            tracing::warn!("reload: a new run_dir or state_dir takes effect at the next start");
        }
        if config.http_body_budget != self.config.http_body_budget {
            tracing::warn!("reload: a new http_body_budget takes effect at the next start");
        }
        // Destinations first: new ones must be there before sources drain into the router.
        let mut errors = self.reload_destinations(&config)?;
        errors.extend(self.reload_sources(&config).await);
        self.config = config;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Starts the new and changed destinations, retires the changed and removed ones, and
    /// switches the routes. Plugin-alias levels reach a destination whose config did not
    /// change as they are. Returns what could not start.
    fn reload_destinations(&mut self, config: &Config) -> Result<Vec<String>, String> {
        let mut overrides = plugin_levels(&self.dirs.state_dir, config)?;
        let mut retired = Vec::new();
        let mut errors = Vec::new();
        let wanted = destinations_of(config, &self.dirs, &self.stats);
        for (name, cfg) in &wanted {
            let rules = overrides.remove(name).unwrap_or_default();
            if let Some(d) = self.destinations.get(name)
                && d.cfg == *cfg
            {
                d.running.set_overrides(rules);
                continue;
            }
            // A changed destination takes over its queue or store once the old one has
            // written out what it was sent and let go of it.
            let after = self.destinations.get(name).map(|d| d.running.handover());
            match destinations::start(
                name,
                cfg,
                rules,
                self.stats.destination(name),
                &self.dirs.state_dir,
                tokio::runtime::Handle::current(),
                after,
            ) {
                Ok(running) => {
                    let new = RunningDestination {
                        cfg: cfg.clone(),
                        running,
                    };
                    if let Some(old) = self.destinations.insert(name.clone(), new) {
                        retired.push(old);
                    }
                    tracing::info!("reload: destination {name:?} started");
                }
                Err(e) => errors.push(format!("destination {name:?}: {e:#}")),
            }
        }
        let gone: Vec<String> = self
            .destinations
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = self.destinations.remove(&name) {
                tracing::info!("reload: destination {name:?} removed");
                retired.push(old);
            }
        }
        let new = routes(&config.device, &self.destinations, &self.stats);
        let host = host_of(&new);
        self.local_host.send_if_modified(|h| {
            let changed = *h != host;
            *h = host;
            changed
        });
        self.routes.send_replace(new);
        // Retired destinations write out what they were sent and end once the router has
        // let go of the old routes.
        for old in retired {
            tokio::spawn(old.running.stop());
        }
        Ok(errors)
    }

    /// Stops the removed and changed sources (they drain into the router), then starts the
    /// new and changed ones. Returns what could not start.
    async fn reload_sources(&mut self, config: &Config) -> Vec<String> {
        let mut wanted = config.sources.clone();
        for (name, cfg) in &self.activated_sources {
            wanted.entry(name.clone()).or_insert_with(|| cfg.clone());
        }
        let stale: Vec<String> = self
            .sources
            .iter()
            .filter(|(n, s)| wanted.get(*n) != Some(&s.cfg))
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            if let Some(s) = self.sources.remove(&name) {
                let _ = s.stop.send(true);
                let _ = s.task.await;
                tracing::info!("reload: source {name:?} stopped");
            }
        }
        let mut errors = Vec::new();
        for (name, cfg) in &wanted {
            if self.sources.contains_key(name) {
                continue;
            }
            match self.start_source(name, cfg).await {
                Ok(()) => tracing::info!("reload: source {name:?} started"),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        errors
    }

    /// Stops everything, draining every record in flight to its destinations.
    pub async fn shutdown(self) {
        let Daemon {
            sources,
            destinations,
            routes,
            source_tx,
            router,
            ..
        } = self;
        for d in destinations.values() {
            d.running.begin_stop();
        }
        for s in sources.values() {
            let _ = s.stop.send(true);
        }
        for (_, s) in sources {
            let _ = s.task.await;
        }
        drop(source_tx);
        let _ = router.await;
        drop(routes);
        let stopping: Vec<_> = destinations
            .into_values()
            .map(|d| tokio::spawn(d.running.stop()))
            .collect();
        for s in stopping {
            let _ = s.await;
        }
    }
}

/// The destinations to run: the config's, and the daemon's tables when they are enabled.
fn destinations_of(
    config: &Config,
    dirs: &Dirs,
    stats: &Registry,
) -> BTreeMap<String, DestinationConfig> {
    let mut all = config.destinations.clone();
    if config.tables.enabled {
        let spec = destinations::tables::TablesSpec {
            config: config.tables.clone(),
            run_dir: dirs.run_dir.clone(),
            stats: stats.tables.clone(),
        };
        let tables = DestinationConfig {
            spec: Arc::new(spec),
            level: config.tables.level,
            filter: config.tables.filter.clone(),
            escape: Default::default(),
        };
        all.insert(config::TABLES_DESTINATION.to_owned(), tables);
    }
    all
}

/// The hostname sources give records that name none.
fn host_of(routes: &Routes) -> Option<Arc<str>> {
    routes.device.hostname.as_deref().map(Arc::from)
}

fn routes(
    device: &config::DeviceConfig,
    destinations: &BTreeMap<String, RunningDestination>,
    stats: &Registry,
) -> Arc<Routes> {
    Arc::new(Routes {
        device: Arc::new(crate::device::resolve(device)),
        destinations: destinations
            .iter()
            .map(|(name, d)| (stats.destination(name), d.running.tx.clone()))
            .collect(),
    })
}

/// The router task. See the module documentation.
async fn route(
    mut rx: mpsc::Receiver<Burst>,
    mut routes: watch::Receiver<Arc<Routes>>,
    feed: tokio::sync::broadcast::Sender<Arc<Batch>>,
) {
    let mut current = routes.borrow_and_update().clone();
    let mut watching = true;
    loop {
        let events = tokio::select! {
            biased;
            changed = routes.changed(), if watching => {
                match changed {
                    Ok(()) => current = routes.borrow_and_update().clone(),
                    Err(_) => watching = false,
                }
                continue;
            }
            events = rx.recv() => match events {
                Some(events) => events,
                None => break,
            },
        };
        let Burst { events, ticket } = events;
        if let Some(t) = &ticket {
            t.arm(current.destinations.len());
        }
        let batch = Arc::new(Batch {
            events,
            device: current.device.clone(),
            ticket,
        });
        if feed.receiver_count() > 0 {
            // Followers that fall behind miss batches; the destinations never do.
            let _ = feed.send(batch.clone());
        }
        for (stats, tx) in &current.destinations {
            // Destinations end only after the router lets go of them, so a closed channel
            // means the destination's thread failed: count what it was offered.
            if tx.send(batch.clone()).await.is_err() {
                stats.add_drop(DestinationDrop::Down, batch.events.len() as u64);
                if let Some(t) = &batch.ticket {
                    t.complete_one();
                }
            }
        }
    }
}
