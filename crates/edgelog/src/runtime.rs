//! The process-wide runtime: which BD this is, its directory of tables, the shared level
//! control block and the published log maps. Everything here runs off the hot path — at
//! `init`, and when a call site resolves after a level change.
//!
//! ```text
//! <run_dir>/levels.ctl                 level rules for every BD (edgelog_core::control)
//! <run_dir>/<bd>/<module>.<bd>.log     one table per module (edgelog_core::table)
//! <run_dir>/<bd>/logmaps               what each log ID means (edgelog_core::maps)
//! ```
//!
//! **A full run directory never stops the application.** The run directory is tmpfs on a
//! device, and it fills up for reasons that are not ours. `init` then still succeeds: without
//! a control block the levels are the defaults (and changes are not seen until a restart);
//! log maps and module defaults that cannot be written are said on stderr; a table that cannot
//! be created leaves its call sites enabled but without a table, and their events are counted
//! as dropped for want of space ([`dropped_no_space`]) while a later event retries the table at
//! most once a second. Inside a table, its own `no_space` counter takes over (see
//! `edgelog_core::table`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use edgelog_core::control::{self, Control};
use edgelog_core::maps::{self, LogMap};
use edgelog_core::paths;
use edgelog_core::table::args::ArgWriter;
use edgelog_core::table::flags;
use edgelog_core::table::{
    Backoff, DEFAULT_CAPACITY, DEFAULT_LANES, DEFAULT_SLOT_SIZE, TableConfig, TableError,
    TableErrorKind, TableWriter,
};
use edgelog_core::{Level, LevelFilter};

use crate::Event;
use crate::limit::{self, GroupLimiter};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The generation before `init`: call sites resolve once to "disabled" and stay so.
static NO_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The generation after an `init` that had no control block (no space for one): call sites
/// resolve once, against the default levels.
static FIXED_GENERATION: AtomicU64 = AtomicU64::new(2);

/// The generation in the child of a `fork`, until its first slow path: no call site has it
/// cached (real generations are even), so every site resolves again, and the first to do so
/// settles the child (see [`Runtime::settle_fork`]).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(1);

/// Set by the `fork` child handler, cleared once the child is settled.
static FORKED: AtomicBool = AtomicBool::new(false);

/// The `pthread_atfork` child handler: the child is another process, which must not write
/// the lanes its parent owns or continue its caches. Only atomic stores and `getpid` here
/// (async-signal-safe); the rest happens on the child's first slow path.
extern "C" fn in_forked_child() {
    edgelog_core::table::forked();
    FORKED.store(true, Ordering::Relaxed);
    GENERATION.store(
        ptr::from_ref(&FORK_GENERATION).cast_mut(),
        Ordering::Release,
    );
}

/// Events dropped because their table could not be created (no space in the run directory).
static DROPPED_NO_SPACE: AtomicU64 = AtomicU64::new(0);

/// When a table that could not be created may be tried again (`clock::now_ns` time).
static TABLE_RETRY: Backoff = Backoff::new();

/// Events this process dropped because their table could not be created in the run directory
/// (it was full). Entries a table could not keep for want of space are counted in the table
/// itself (`no_space` in `edgelog show log tables`).
pub fn dropped_no_space() -> u64 {
    DROPPED_NO_SPACE.load(Ordering::Relaxed)
}

/// The level generation call sites compare with: the control block's word after `init`.
static GENERATION: AtomicPtr<AtomicU64> = AtomicPtr::new(ptr::from_ref(&NO_GENERATION).cast_mut());

/// The current level generation. One relaxed load of a pointer and one through it.
#[inline(always)]
pub(crate) fn generation() -> u64 {
    // SAFETY: the pointer is either to a static or to the generation word of the control
    // block owned by the runtime, which lives in a `static OnceLock` and is never dropped.
    unsafe { (*GENERATION.load(Ordering::Relaxed)).load(Ordering::Relaxed) }
}

/// How to set the library up.
#[derive(Debug, Clone)]
pub struct Options {
    run_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    capacity: u64,
    slot_size: u32,
    lanes: u32,
    module_defaults: Vec<(String, LevelFilter)>,
    rate_limits: Vec<(String, String, u64)>,
    events: Vec<&'static Event>,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// Default directories (docs/configuration.md), 10,000 entries of 256 bytes per table and lane,
    /// four lanes.
    pub fn new() -> Options {
        Options {
            run_dir: None,
            state_dir: None,
            capacity: DEFAULT_CAPACITY,
            slot_size: DEFAULT_SLOT_SIZE,
            lanes: DEFAULT_LANES,
            module_defaults: Vec::new(),
            rate_limits: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The run directory (tables, control block); default `EDGELOG_RUN_DIR` or per user.
    pub fn run_dir(mut self, dir: impl Into<PathBuf>) -> Options {
        self.run_dir = Some(dir.into());
        self
    }

    /// The state directory (persisted levels); default `EDGELOG_STATE_DIR` or per user.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Options {
        self.state_dir = Some(dir.into());
        self
    }

    /// Entries per table and lane (for tables this process creates).
    pub fn capacity(mut self, entries: u64) -> Options {
        self.capacity = entries;
        self
    }

    /// Lanes per table (1 to 32, for tables this process creates): the first `lanes - 1`
    /// threads that log each write a lane of their own, with no locked instruction per event;
    /// the others share one. A lane keeps `capacity` entries.
    pub fn lanes(mut self, lanes: u32) -> Options {
        self.lanes = lanes;
        self
    }

    /// Bytes per entry (a multiple of 8, 64 to 65,536).
    pub fn slot_size(mut self, bytes: u32) -> Options {
        self.slot_size = bytes;
        self
    }

    /// The level of `module` when no rule names it — e.g. `none` for a noisy module that
    /// should stay off unless an operator turns it on.
    pub fn module_default(mut self, module: &str, level: LevelFilter) -> Options {
        self.module_defaults.push((module.to_owned(), level));
        self
    }

    /// At most `per_second` events per second of `group` in `module`; the excess is counted
    /// and summarised in one entry when the second ends.
    pub fn rate_limit(mut self, module: &str, group: &str, per_second: u64) -> Options {
        self.rate_limits
            .push((module.to_owned(), group.to_owned(), per_second));
        self
    }

    /// Events published in the log maps at `init` (others are published when first used);
    /// their IDs are checked for collisions up front.
    pub fn events(mut self, events: &[&'static Event]) -> Options {
        self.events.extend_from_slice(events);
        self
    }
}

/// Why `init` failed.
#[derive(Debug)]
pub struct InitError(String);

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InitError {}

#[derive(Debug)]
struct Runtime {
    bd: String,
    dir: PathBuf,
    /// `None` when the run directory had no room for it: default levels.
    control: Option<Control>,
    options: Options,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tables: HashMap<String, &'static TableWriter>,
    maps: BTreeMap<u32, LogMap>,
    /// Bridge sites by module, then group: what they resolved to, at which generation.
    dynamic: HashMap<String, HashMap<String, DynamicSite>>,
    /// Rate limiters by (module, group); they live as long as the process.
    limiters: HashMap<(String, String), &'static GroupLimiter>,
}

#[derive(Debug, Clone, Copy)]
struct DynamicSite {
    generation: u64,
    filter: LevelFilter,
    /// `None` while the table cannot be opened; `no_space` says whether that is for want of
    /// space (its records are counted as dropped, and it is tried again).
    table: Option<&'static TableWriter>,
    no_space: bool,
    limiter: Option<&'static GroupLimiter>,
}

/// Sets the library up for brick daemon `bd`: creates `<run_dir>/<bd>/`, maps the level
/// control block, publishes the log maps of `options.events`, and opens their modules'
/// tables (keeping the history of a previous run). Until `init`, every event is disabled.
pub fn init(bd: &str, options: Options) -> Result<(), InitError> {
    if !paths::valid_name(bd) {
        return Err(InitError(format!(
            "invalid BD name {bd:?}: use 1-31 letters, digits, '_', '-' or '.'"
        )));
    }
    let run_dir = options
        .run_dir
        .clone()
        .unwrap_or_else(paths::default_run_dir);
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(paths::default_state_dir);
    crate::clock::calibrate();
    let dir = run_dir.join(bd);
    std::fs::create_dir_all(&dir)
        .map_err(|e| InitError(format!("creating {}: {e}", dir.display())))?;
    let control = match Control::open(&run_dir, Some(&state_dir)) {
        Ok(c) => Some(c),
        // A block that exists but cannot be written (no space to make it whole) is still read.
        Err(e) => match Control::open_read_only(&run_dir) {
            Ok(Some(c)) => Some(c),
            _ if e.is_no_space() => {
                eprintln!("edgelog: {e}; running with the default levels");
                None
            }
            _ => return Err(InitError(e.to_string())),
        },
    };
    let mut inner = Inner::default();
    for event in &options.events {
        register(&mut inner.maps, event.map()).map_err(InitError)?;
    }
    let rt = Runtime {
        bd: bd.to_owned(),
        dir,
        control,
        options,
        inner: Mutex::new(inner),
    };
    // Claim the runtime before touching shared files: a second `init` must change nothing.
    RUNTIME
        .set(rt)
        .map_err(|_| InitError("edgelog::init was already called in this process".into()))?;
    let rt = RUNTIME
        .get()
        .ok_or_else(|| InitError("runtime vanished".into()))?;
    let defaults_path = rt.dir.join(control::DEFAULTS_NAME);
    if let Err(e) = control::write_module_defaults(&defaults_path, &rt.options.module_defaults) {
        // Readers then show this BD's modules at the global levels; the BD itself is not
        // affected (it resolves its defaults from its options).
        eprintln!("edgelog: writing {}: {e}", defaults_path.display());
    }
    {
        let mut inner = rt.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = rt.publish(&inner) {
            eprintln!("edgelog: {e}; readers show these events by number until it is written");
        }
        for event in &rt.options.events {
            match rt.table(&mut inner, event.module) {
                Ok(_) => {}
                Err(e) if e.kind() == TableErrorKind::NoSpace => {
                    eprintln!(
                        "edgelog: {e}; its events are dropped and counted until there is room"
                    );
                }
                Err(e) => return Err(InitError(e.to_string())),
            }
        }
    }
    GENERATION.store(
        ptr::from_ref(rt.generation_word()).cast_mut(),
        Ordering::Release,
    );
    // SAFETY: registering a handler is always sound; the handler only stores atomics and reads
    // the pid, which is allowed in a forked child of a multi-threaded process.
    if unsafe { nix::libc::pthread_atfork(None, None, Some(in_forked_child)) } != 0 {
        eprintln!(
            "edgelog: cannot register the fork handler; a child that logs after fork may share its parent's lanes"
        );
    }
    Ok(())
}

/// Adds `event`'s map; an ID already taken by another event is an error, never a merge.
fn register(maps: &mut BTreeMap<u32, LogMap>, map: LogMap) -> Result<bool, String> {
    match maps.get(&map.id) {
        Some(old)
            if (&old.module, &old.group, &old.name) == (&map.module, &map.group, &map.name) =>
        {
            Ok(false)
        }
        Some(old) => Err(format!(
            "log ID {} of {}/{} collides with {}/{}: rename one of them",
            map.id, map.module, map.name, old.module, old.name
        )),
        None => {
            maps.insert(map.id, map);
            Ok(true)
        }
    }
}

impl Runtime {
    /// The word call sites compare their cached generation with.
    fn generation_word(&self) -> &AtomicU64 {
        self.control
            .as_ref()
            .map_or(&FIXED_GENERATION, Control::generation)
    }

    /// In the child of a `fork`, on its first slow path (every call site takes one): forgets
    /// the parent's lanes in every table and the parent's rate-limit windows, and points call
    /// sites at the level generation again.
    fn settle_fork(&self) {
        if !FORKED.load(Ordering::Relaxed) {
            return;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !FORKED.swap(false, Ordering::Relaxed) {
            return;
        }
        for t in inner.tables.values() {
            t.after_fork();
        }
        for l in inner.limiters.values() {
            l.after_fork();
        }
        GENERATION.store(
            ptr::from_ref(self.generation_word()).cast_mut(),
            Ordering::Release,
        );
    }

    /// The rate limiter of `group` in `module`, created on first use, if one is configured.
    fn limiter(
        &self,
        inner: &mut Inner,
        module: &str,
        group: &str,
        table: &'static TableWriter,
    ) -> Option<&'static GroupLimiter> {
        let key = (module.to_owned(), group.to_owned());
        if let Some(l) = inner.limiters.get(&key) {
            return Some(*l);
        }
        let &(_, _, per_second) = self
            .options
            .rate_limits
            .iter()
            .find(|(m, g, _)| m == module && g == group)?;
        if let Err(e) = register(&mut inner.maps, limit::summary_map(module, group))
            .and_then(|_| self.publish(inner))
        {
            eprintln!("edgelog: {e}");
        }
        let limiter: &'static GroupLimiter = Box::leak(Box::new(GroupLimiter::new(
            module, group, per_second, table,
        )));
        inner.limiters.insert(key, limiter);
        Some(limiter)
    }

    fn publish(&self, inner: &Inner) -> Result<(), String> {
        let path = self.dir.join(maps::FILE_NAME);
        let all: Vec<LogMap> = inner.maps.values().cloned().collect();
        maps::write(&path, &all).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// The level rules now: none without a control block.
    fn rules(&self) -> Vec<control::Rule> {
        self.control
            .as_ref()
            .map(Control::rules)
            .unwrap_or_default()
    }

    fn table(&self, inner: &mut Inner, module: &str) -> Result<&'static TableWriter, TableError> {
        if let Some(t) = inner.tables.get(module) {
            return Ok(*t);
        }
        let config = TableConfig {
            capacity: self.options.capacity,
            slot_size: self.options.slot_size,
            lanes: self.options.lanes,
            ..TableConfig::new(&self.bd, module)
        };
        let writer = TableWriter::open(&self.dir.join(config.file_name()), &config)?;
        // Tables live as long as the process: call sites keep `&'static` references.
        let writer: &'static TableWriter = Box::leak(Box::new(writer));
        inner.tables.insert(module.to_owned(), writer);
        Ok(writer)
    }

    fn resolve_dynamic(
        &self,
        inner: &mut Inner,
        module: &str,
        group: &str,
        generation: u64,
    ) -> DynamicSite {
        let default = self
            .options
            .module_defaults
            .iter()
            .find(|(m, _)| m == module)
            .map(|(_, l)| *l);
        let rules = self.rules();
        let (filter, _) = control::resolve(&rules, &self.bd, module, group, default);
        let mut site = DynamicSite {
            generation,
            filter,
            table: None,
            no_space: false,
            limiter: None,
        };
        if filter == LevelFilter::NONE {
            return site;
        }
        let map = LogMap {
            id: maps::text_id(module, group),
            level: filter.level().unwrap_or(Level::Debug),
            module: module.to_owned(),
            group: group.to_owned(),
            name: "TEXT".into(),
            template: "{text}".into(),
        };
        match register(&mut inner.maps, map) {
            Ok(true) => {
                if let Err(e) = self.publish(inner) {
                    eprintln!("edgelog: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!("edgelog: {e}; bridged records of {module}/{group} are dropped");
                return site;
            }
        }
        match self.table(inner, module) {
            Ok(t) => {
                site.table = Some(t);
                site.limiter = self.limiter(inner, module, group, t);
            }
            Err(e) if e.kind() == TableErrorKind::NoSpace => site.no_space = true,
            Err(e) => eprintln!("edgelog: {e}; bridged records of module {module} are dropped"),
        }
        site
    }
}

/// What an enabled call site writes to: its table (`None` while the run directory has no room
/// for it) and its group's rate limiter, if any.
pub(crate) type Resolved = (Option<&'static TableWriter>, Option<&'static GroupLimiter>);

/// Resolves a call site: its table if its event is enabled now, else `None`. Problems (a log
/// ID collision, a table that cannot be opened) disable the site and are said on stderr once
/// per level change — a library must not panic or exit its host. A table that cannot be
/// created for want of space leaves the site enabled without one (see [`retry_table`]).
pub(crate) fn resolve(event: &'static Event, names: &[&str]) -> Option<Resolved> {
    let rt = RUNTIME.get()?;
    rt.settle_fork();
    let default = rt
        .options
        .module_defaults
        .iter()
        .find(|(m, _)| m == event.module)
        .map(|(_, l)| *l);
    let rules = rt.rules();
    let (filter, _) = control::resolve(&rules, &rt.bd, event.module, event.group, default);
    if !filter.enabled(event.level) {
        return None;
    }
    if maps::placeholders(event.template) != names {
        eprintln!(
            "edgelog: {}/{}: arguments {names:?} do not match the template {:?}",
            event.module, event.name, event.template
        );
    }
    let mut inner = rt.inner.lock().unwrap_or_else(|e| e.into_inner());
    let published = match register(&mut inner.maps, event.map()) {
        Ok(new) => !new || rt.publish(&inner).is_ok(),
        Err(e) => {
            eprintln!("edgelog: {e}; the event is disabled");
            return None;
        }
    };
    if !published {
        eprintln!(
            "edgelog: could not publish the log maps in {}",
            rt.dir.display()
        );
    }
    match rt.table(&mut inner, event.module) {
        Ok(table) => {
            let limiter = rt.limiter(&mut inner, event.module, event.group, table);
            Some((Some(table), limiter))
        }
        Err(e) if e.kind() == TableErrorKind::NoSpace => {
            TABLE_RETRY.failed(crate::clock::now_ns());
            Some((None, None))
        }
        Err(e) => {
            eprintln!(
                "edgelog: {e}; events of module {} are disabled",
                event.module
            );
            None
        }
    }
}

/// An enabled call site without a table: counts the event as dropped for want of space and,
/// at most once a second, tries to create the table again. Returns it once it exists.
#[cold]
#[inline(never)]
pub(crate) fn retry_table(event: &'static Event, now: i64) -> Option<Resolved> {
    DROPPED_NO_SPACE.fetch_add(1, Ordering::Relaxed);
    if !TABLE_RETRY.due(now) {
        return None;
    }
    let rt = RUNTIME.get()?;
    let mut inner = rt.inner.lock().unwrap_or_else(|e| e.into_inner());
    match rt.table(&mut inner, event.module) {
        Ok(table) => {
            let limiter = rt.limiter(&mut inner, event.module, event.group, table);
            Some((Some(table), limiter))
        }
        Err(_) => {
            TABLE_RETRY.failed(now);
            None
        }
    }
}

/// The library's clock saw the real-time clock step (`clock`): noted in the control block,
/// for `edgelog show log tables`, and said once on stderr.
pub(crate) fn note_clock_step(at: i64, by: i64) {
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Some(c) = RUNTIME.get().and_then(|rt| rt.control.as_ref()) {
        c.note_clock_step(at, by);
    }
    if !TOLD.swap(true, Ordering::Relaxed) {
        eprintln!(
            "edgelog: the real-time clock stepped by {:+.3} s; entry times follow it",
            by as f64 / 1e9
        );
    }
}

/// Records free text in `module`/`group` at `level`, if that is enabled — for bridges and for
/// daemons whose modules are only known at run time. Names are made valid (see
/// [`sanitize`]). Not the nanosecond path: one uncontended mutex and two map lookups, with the
/// level resolved again only after a level change.
pub fn log_text(module: &str, group: &str, level: Level, text: &str) {
    let Some(rt) = RUNTIME.get() else { return };
    let (module, group) = (&*sanitize(module), &*sanitize(group));
    rt.settle_fork();
    let generation = generation();
    let now = crate::clock::now_ns();
    let site = {
        let mut inner = rt.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.dynamic.get(module).and_then(|g| g.get(group)) {
            // A site whose table had no room is resolved again once the back-off has passed.
            Some(site)
                if site.generation == generation && !(site.no_space && TABLE_RETRY.due(now)) =>
            {
                *site
            }
            _ => {
                let site = rt.resolve_dynamic(&mut inner, module, group, generation);
                if site.no_space {
                    TABLE_RETRY.failed(now);
                }
                inner
                    .dynamic
                    .entry(module.to_owned())
                    .or_default()
                    .insert(group.to_owned(), site);
                site
            }
        }
    };
    if !site.filter.enabled(level) {
        return;
    }
    let Some(table) = site.table else {
        if site.no_space {
            DROPPED_NO_SPACE.fetch_add(1, Ordering::Relaxed);
        }
        return;
    };
    if site.limiter.is_some_and(|l| !l.admit(now)) {
        return;
    }
    let mut buf = [0u8; crate::MAX_INLINE_PAYLOAD];
    let room = table.payload_capacity().min(buf.len());
    let mut w = ArgWriter::new(&mut buf[..room]);
    w.str(text);
    let mut entry_flags = flags::DYNAMIC;
    if w.truncated() {
        entry_flags |= flags::TRUNCATED;
    }
    let _ = table.append(
        now,
        maps::text_id(module, group),
        level,
        entry_flags,
        w.as_bytes(),
    );
}

/// Writes the summary entries of every rate-limited group that suppressed events in the
/// current window — at shutdown, say, so a last burst is accounted for.
pub fn flush_rate_limits() {
    let Some(rt) = RUNTIME.get() else { return };
    let limiters: Vec<&'static GroupLimiter> = {
        let inner = rt.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.limiters.values().copied().collect()
    };
    let now = crate::clock::now_ns();
    for l in limiters {
        l.summarise(now);
    }
}

/// A valid module or group name from arbitrary text: bytes outside `[A-Za-z0-9_.-]` become
/// `_`, at most 31 bytes, `default` if empty.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(31)
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        out = "default".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_collision_is_an_error_never_a_merge() {
        static A: Event = Event::new("bgp", "peer", "A", Level::Info, "a");
        // Another event forced onto A's ID, as a hash collision would.
        let b = Event {
            id: A.id(),
            ..Event::new("ospf", "nbr", "B", Level::Info, "b")
        };
        let mut maps = BTreeMap::new();
        assert_eq!(register(&mut maps, A.map()), Ok(true));
        assert_eq!(register(&mut maps, A.map()), Ok(false));
        let err = register(&mut maps, b.map()).unwrap_err();
        assert!(err.contains("ospf/B") && err.contains("bgp/A"), "{err}");
        assert_eq!(maps.len(), 1);
    }
}
