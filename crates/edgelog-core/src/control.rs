//! The level control block: log levels, shared by every process on the box.
//!
//! ```text
//! <run_dir>/levels.ctl, little-endian u64 words:
//!   0  magic "EDGLLVL\0"       2  generation (even = stable, odd = being changed)
//!   1  major | minor << 32     3  rule count (at most MAX_RULES)
//!   4  clock steps seen by the library's clock (any process)
//!   5  the last step: when (real-time ns)   6  by how much (signed ns)
//!   8 + 16·k  rule k: word 0 = scope bits (1 bd, 2 module, 4 group) | level << 8
//!                     words 1–4 bd, 5–8 module, 9–12 group (NUL-padded, ≤ 31 bytes)
//! <state_dir>/levels.conf     the same rules as text, one per line, so a reboot keeps them
//! ```
//!
//! A rule sets a level for a scope: global, a BD, a module (in one BD or in all), a group
//! within a module (in one BD or in all). The most specific matching rule wins ([`resolve`]);
//! between BD rules and module rules sit the application's own defaults (modules it declares
//! off by default); without any, the level is `error`.
//!
//! The CLI (or any process) changes rules under an exclusive file lock, making the generation
//! odd while it writes and even again after. Applications keep one pointer to the generation
//! word: their hot path compares it with the generation each call site cached, and only a
//! change sends a call site to the slow path, which reads a consistent copy of the rules (a
//! seqlock read) and recomputes whether it is enabled.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering, fence};

use crate::LevelFilter;
use crate::paths::valid_name;
use crate::shm::Words;

/// The most rules a control block holds.
pub const MAX_RULES: usize = 255;
/// The control block's file name in the run directory.
pub const FILE_NAME: &str = "levels.ctl";
/// The persisted rules' file name in the state directory.
pub const PERSIST_NAME: &str = "levels.conf";

const MAGIC: u64 = u64::from_le_bytes(*b"EDGLLVL\0");
const MAJOR: u32 = 1;
const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_GEN: usize = 2;
const W_COUNT: usize = 3;
const W_CLOCK_STEPS: usize = 4;
const W_CLOCK_STEP_AT: usize = 5;
const W_CLOCK_STEP_BY: usize = 6;
const W_RULES: usize = 8;
const RULE_WORDS: usize = 16;
const NAME: usize = 32;
/// Where an application's module default ranks among rules: above BD and global rules, below
/// any rule that names the module.
const MODULE_DEFAULT_RANK: u8 = 5;
const FILE_SIZE: u64 = ((W_RULES + MAX_RULES * RULE_WORDS) * 8) as u64;

/// Where a rule applies. `group` needs `module`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub bd: Option<String>,
    pub module: Option<String>,
    pub group: Option<String>,
}

impl Scope {
    /// Every BD, module and group.
    pub fn global() -> Scope {
        Scope::default()
    }

    /// Checks names and shape: a group needs a module; names are 1–31 of `[A-Za-z0-9_.-]`.
    pub fn validate(&self) -> Result<(), String> {
        for (what, name) in [
            ("bd", &self.bd),
            ("module", &self.module),
            ("group", &self.group),
        ] {
            if let Some(n) = name.as_deref().filter(|n| !valid_name(n)) {
                return Err(format!(
                    "invalid {what} name {n:?}: use 1-31 letters, digits, '_', '-' or '.'"
                ));
            }
        }
        if self.group.is_some() && self.module.is_none() {
            return Err("a group is set within a module: give --module too".into());
        }
        Ok(())
    }

    /// Specificity: higher wins. Module defaults rank between BD rules and module rules
    /// ([`MODULE_DEFAULT_RANK`]).
    pub fn rank(&self) -> u8 {
        match (
            self.bd.is_some(),
            self.module.is_some(),
            self.group.is_some(),
        ) {
            (true, true, true) => 10,
            (false, true, true) => 9,
            (true, true, false) => 8,
            (false, true, false) => 6,
            (true, false, false) => 4,
            _ => 2,
        }
    }

    /// Whether the scope covers `group` of `module` in `bd` (unset parts match anything).
    pub fn matches(&self, bd: &str, module: &str, group: &str) -> bool {
        self.bd.as_deref().is_none_or(|b| b == bd)
            && self.module.as_deref().is_none_or(|m| m == module)
            && self.group.as_deref().is_none_or(|g| g == group)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("bd", &self.bd),
            ("module", &self.module),
            ("group", &self.group),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        if parts.is_empty() {
            f.write_str("global")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// A level for a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub scope: Scope,
    pub level: LevelFilter,
}

/// Which setting decided a level, for `show log levels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A rule in the control block.
    Rule(Scope),
    /// The application's default for the module.
    ModuleDefault,
    /// Nothing matched: the product default, `error`.
    Default,
}

/// The level of events of `module`/`group` in `bd`: the most specific matching rule, else the
/// module's default, else `error`.
pub fn resolve(
    rules: &[Rule],
    bd: &str,
    module: &str,
    group: &str,
    module_default: Option<LevelFilter>,
) -> (LevelFilter, Source) {
    let best = rules
        .iter()
        .filter(|r| r.scope.matches(bd, module, group))
        .max_by_key(|r| r.scope.rank());
    match (best, module_default) {
        (Some(r), None) => (r.level, Source::Rule(r.scope.clone())),
        (Some(r), Some(_)) if r.scope.rank() > MODULE_DEFAULT_RANK => {
            (r.level, Source::Rule(r.scope.clone()))
        }
        (_, Some(d)) => (d, Source::ModuleDefault),
        (None, None) => (LevelFilter::DEFAULT, Source::Default),
    }
}

/// An error opening or changing the control block, naming the file.
#[derive(Debug)]
pub struct ControlError {
    path: PathBuf,
    detail: String,
    no_space: bool,
}

impl ControlError {
    fn new(path: &Path, detail: impl Into<String>) -> ControlError {
        ControlError {
            path: path.to_owned(),
            detail: detail.into(),
            no_space: false,
        }
    }

    /// Whether the run directory (or the state directory) had no space for the change.
    pub fn is_no_space(&self) -> bool {
        self.no_space
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.detail)
    }
}

impl std::error::Error for ControlError {}

/// Steps of the real-time clock that the library's clock saw (see [`Control::note_clock_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSteps {
    pub count: u64,
    pub last_at: crate::Timestamp,
    /// Signed: negative for a step backwards.
    pub last_by_ns: i64,
}

/// The mapped control block.
#[derive(Debug)]
pub struct Control {
    words: Words,
    file: File,
    path: PathBuf,
    persist: Option<PathBuf>,
    writable: bool,
}

impl Control {
    /// Opens an existing `<run_dir>/levels.ctl` read-only, for viewing: no lock, no write
    /// access needed. `Ok(None)` if there is none yet (every level at its default).
    /// [`Control::set`] on a read-only block fails.
    pub fn open_read_only(run_dir: &Path) -> Result<Option<Control>, ControlError> {
        let path = run_dir.join(FILE_NAME);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ControlError::new(&path, format!("opening: {e}"))),
        };
        let len = file
            .metadata()
            .map_err(|e| ControlError::new(&path, format!("reading size: {e}")))?
            .len();
        if len != FILE_SIZE {
            return Err(ControlError::new(
                &path,
                format!("{len} bytes, expected {FILE_SIZE}: not a level control block"),
            ));
        }
        let words = Words::map(&file, false)
            .map_err(|e| ControlError::new(&path, format!("mapping: {e}")))?;
        if words.get(W_MAGIC) != MAGIC {
            return Err(ControlError::new(
                &path,
                "not a level control block (bad magic)",
            ));
        }
        Ok(Some(Control {
            words,
            file,
            path,
            persist: None,
            writable: false,
        }))
    }

    /// Opens `<run_dir>/levels.ctl`, creating it (and `run_dir`) if needed. A new block is
    /// seeded from `<state_dir>/levels.conf` when `state_dir` is given, and changes are written
    /// back there.
    pub fn open(run_dir: &Path, state_dir: Option<&Path>) -> Result<Control, ControlError> {
        let path = run_dir.join(FILE_NAME);
        let err = |what: &str, e: io::Error| ControlError {
            no_space: crate::is_no_space(&e),
            ..ControlError::new(&path, format!("{what}: {e}"))
        };
        std::fs::create_dir_all(run_dir).map_err(|e| err("creating the run directory", e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| err("opening", e))?;
        file.lock().map_err(|e| err("locking", e))?;
        let len = file.metadata().map_err(|e| err("reading size", e))?.len();
        if len == 0 {
            file.set_len(FILE_SIZE).map_err(|e| err("sizing", e))?;
        } else if len != FILE_SIZE {
            return Err(ControlError::new(
                &path,
                format!("{len} bytes, expected {FILE_SIZE}: not a level control block"),
            ));
        }
        // Every page allocated before any is written (a block an older build made may be
        // sparse): a store into an unallocated page of a full tmpfs is a SIGBUS.
        if let Err(e) = crate::shm::reserve(&file, 0, FILE_SIZE) {
            if len == 0 {
                let _ = std::fs::remove_file(&path);
            }
            return Err(err("reserving space", e));
        }
        let words = Words::map(&file, true).map_err(|e| err("mapping", e))?;
        let persist = state_dir.map(|d| d.join(PERSIST_NAME));
        let control = Control {
            words,
            file,
            path: path.clone(),
            persist,
            writable: true,
        };
        if len == 0 {
            control.words.set(W_VERSION, u64::from(MAJOR));
            control.words.set(W_GEN, 2);
            control.words.at(W_MAGIC).store(MAGIC, Ordering::Release);
            if let Some(rules) = control.load_persisted()? {
                control.write_rules(&rules);
            }
        } else {
            if control.words.get(W_MAGIC) != MAGIC {
                return Err(ControlError::new(
                    &path,
                    "not a level control block (bad magic)",
                ));
            }
            if control.words.get(W_VERSION) as u32 != MAJOR {
                return Err(ControlError::new(
                    &path,
                    format!(
                        "control block version {}, this build reads version {MAJOR}",
                        control.words.get(W_VERSION) as u32
                    ),
                ));
            }
            // A writer that died mid-change left the generation odd: settle it.
            let generation = control.generation().load(Ordering::Acquire);
            if generation % 2 == 1 {
                control
                    .generation()
                    .store(generation + 1, Ordering::Release);
            }
        }
        control.file.unlock().map_err(|e| err("unlocking", e))?;
        Ok(control)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation word: it changes whenever a rule does.
    pub fn generation(&self) -> &AtomicU64 {
        self.words.at(W_GEN)
    }

    /// Notes a step of the real-time clock that a library process saw at `at` (real-time
    /// nanoseconds, after the step), `by` nanoseconds (negative: backwards). A read-only
    /// block notes nothing.
    pub fn note_clock_step(&self, at: i64, by: i64) {
        if self.writable {
            self.words.set(W_CLOCK_STEP_AT, at as u64);
            self.words.set(W_CLOCK_STEP_BY, by as u64);
            self.words.at(W_CLOCK_STEPS).fetch_add(1, Ordering::Release);
        }
    }

    /// Clock steps noted so far, and the last one's time and size: `None` if there were none.
    pub fn clock_steps(&self) -> Option<ClockSteps> {
        let count = self.words.at(W_CLOCK_STEPS).load(Ordering::Acquire);
        (count > 0).then(|| ClockSteps {
            count,
            last_at: crate::Timestamp::from_unix_nanos(self.words.get(W_CLOCK_STEP_AT) as i64),
            last_by_ns: self.words.get(W_CLOCK_STEP_BY) as i64,
        })
    }

    /// A consistent copy of the rules.
    pub fn rules(&self) -> Vec<Rule> {
        for attempt in 0..10_000 {
            let before = self.generation().load(Ordering::Acquire);
            if before % 2 == 1 && attempt < 9_999 {
                std::thread::yield_now();
                continue;
            }
            let rules = self.read_rules();
            fence(Ordering::Acquire);
            if self.generation().load(Ordering::Relaxed) == before {
                return rules;
            }
        }
        self.read_rules()
    }

    fn read_rules(&self) -> Vec<Rule> {
        let n = (self.words.get(W_COUNT) as usize).min(MAX_RULES);
        (0..n)
            .filter_map(|k| {
                let base = W_RULES + k * RULE_WORDS;
                let head = self.words.get(base);
                let name = |bit: u64, at: usize| {
                    (head & bit != 0).then(|| self.words.name(base + at, NAME))
                };
                let scope = Scope {
                    bd: name(1, 1),
                    module: name(2, 5),
                    group: name(4, 9),
                };
                scope.validate().ok()?;
                Some(Rule {
                    scope,
                    level: LevelFilter::from_raw((head >> 8) as u8),
                })
            })
            .collect()
    }

    /// Sets the level of `scope` (replacing its rule), under the file lock; persists the rules.
    pub fn set(&self, scope: Scope, level: LevelFilter) -> Result<(), ControlError> {
        scope
            .validate()
            .map_err(|e| ControlError::new(&self.path, e))?;
        self.change(|rules| {
            rules.retain(|r| r.scope != scope);
            rules.push(Rule { scope, level });
        })
    }

    /// Removes the rule of `scope`: its events fall back to the next matching setting.
    pub fn clear(&self, scope: &Scope) -> Result<(), ControlError> {
        self.change(|rules| rules.retain(|r| &r.scope != scope))
    }

    fn change(&self, edit: impl FnOnce(&mut Vec<Rule>)) -> Result<(), ControlError> {
        if !self.writable {
            return Err(ControlError::new(&self.path, "opened read-only"));
        }
        let err = |what: &str, e: io::Error| ControlError::new(&self.path, format!("{what}: {e}"));
        self.file.lock().map_err(|e| err("locking", e))?;
        let mut rules = self.read_rules();
        edit(&mut rules);
        let result = if rules.len() > MAX_RULES {
            Err(ControlError::new(
                &self.path,
                format!("more than {MAX_RULES} level rules"),
            ))
        } else {
            rules.sort_by(|a, b| a.scope.cmp(&b.scope));
            self.write_rules(&rules);
            self.persist(&rules)
        };
        self.file.unlock().map_err(|e| err("unlocking", e))?;
        result
    }

    /// Writes all rules between an odd and an even generation. Caller holds the file lock.
    fn write_rules(&self, rules: &[Rule]) {
        let generation = self.generation();
        let g = generation.load(Ordering::Relaxed);
        generation.store(g + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (k, r) in rules.iter().enumerate() {
            let base = W_RULES + k * RULE_WORDS;
            let s = &r.scope;
            let bits = u64::from(s.bd.is_some())
                | u64::from(s.module.is_some()) << 1
                | u64::from(s.group.is_some()) << 2;
            self.words
                .set(base, bits | u64::from(r.level.to_raw()) << 8);
            for (at, name) in [(1, &s.bd), (5, &s.module), (9, &s.group)] {
                self.words
                    .set_name(base + at, NAME, name.as_deref().unwrap_or(""));
            }
        }
        self.words.set(W_COUNT, rules.len() as u64);
        generation.store(g + 2, Ordering::Release);
    }

    fn persist(&self, rules: &[Rule]) -> Result<(), ControlError> {
        let Some(path) = &self.persist else {
            return Ok(());
        };
        let err = |e: io::Error| ControlError::new(path, format!("persisting levels: {e}"));
        let mut text = String::from("# edgelog log levels, written by `edgelog set log level`\n");
        for r in rules {
            text.push_str(&rule_line(r));
            text.push('\n');
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        crate::paths::write_atomically(path, text.as_bytes()).map_err(err)
    }

    fn load_persisted(&self) -> Result<Option<Vec<Rule>>, ControlError> {
        let Some(path) = &self.persist else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ControlError::new(path, format!("reading: {e}"))),
        };
        parse_persisted(&text)
            .map(Some)
            .map_err(|(line, e)| ControlError::new(path, format!("line {line}: {e}")))
    }
}

/// A rule as a line of `levels.conf`: `<level> [bd=B] [module=M] [group=G]`.
fn rule_line(r: &Rule) -> String {
    let mut line = r.level.name().to_owned();
    for (k, v) in [
        ("bd", &r.scope.bd),
        ("module", &r.scope.module),
        ("group", &r.scope.group),
    ] {
        if let Some(v) = v {
            line.push_str(&format!(" {k}={v}"));
        }
    }
    line
}

/// Export levels of the daemon's destinations (plugin aliases), set with
/// `edgelog set log level … --plugin-alias NAME` and kept in the state directory:
/// `<alias> <level> [bd=B] [module=M] [group=G]` per line. For a record the most specific
/// matching rule of its destination wins over the destination's configured `level`.
pub const PLUGIN_LEVELS_NAME: &str = "plugin-levels.conf";

/// Reads the plugin-alias levels (none if the file does not exist).
pub fn read_plugin_levels(state_dir: &Path) -> Result<PluginLevels, ControlError> {
    let path = state_dir.join(PLUGIN_LEVELS_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PluginLevels::default()),
        Err(e) => return Err(ControlError::new(&path, format!("reading: {e}"))),
    };
    let mut out = PluginLevels::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (alias, rule) = line.split_once(' ').unwrap_or((line, ""));
        let parsed = parse_persisted(rule)
            .map_err(|(_, e)| e)
            .and_then(|mut rules| rules.pop().ok_or_else(|| "no level".to_owned()))
            .and_then(|rule| check_plugin_rule(alias, &rule.scope).map(|()| rule));
        match parsed {
            Ok(rule) => out.rules.push((alias.to_owned(), rule)),
            Err(e) => out.skipped.push(format!(
                "{}: line {}: {e}; the line is skipped",
                path.display(),
                n + 1
            )),
        }
    }
    Ok(out)
}

/// Export levels per plugin alias, as read; a line that does not read (the file was edited, or
/// written by another build) is skipped and said, never fatal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginLevels {
    pub rules: Vec<(String, Rule)>,
    pub skipped: Vec<String>,
}

/// What every entry point checks of a plugin-alias rule: the alias is a component name, the
/// scope is well-formed.
pub fn check_plugin_rule(alias: &str, scope: &Scope) -> Result<(), String> {
    if !valid_name(alias) {
        return Err(format!(
            "invalid plugin alias {alias:?}: use 1-31 letters, digits, '_', '-' or '.'"
        ));
    }
    scope.validate()
}

/// Sets (or, with `None`, removes) the export level of `alias` for `scope`, keeping the
/// others; written atomically.
pub fn set_plugin_level(
    state_dir: &Path,
    alias: &str,
    scope: &Scope,
    level: Option<LevelFilter>,
) -> Result<(), ControlError> {
    check_plugin_rule(alias, scope).map_err(|e| ControlError::new(state_dir, e))?;
    let mut all = read_plugin_levels(state_dir)?.rules;
    all.retain(|(a, r)| !(a == alias && r.scope == *scope));
    if let Some(level) = level {
        all.push((
            alias.to_owned(),
            Rule {
                scope: scope.clone(),
                level,
            },
        ));
    }
    let path = state_dir.join(PLUGIN_LEVELS_NAME);
    let err = |e: io::Error| ControlError::new(&path, format!("writing: {e}"));
    let mut text = String::from(
        "# export levels of edgelogd destinations, written by `edgelog set log level --plugin-alias`\n",
    );
    for (a, r) in &all {
        text.push_str(&format!("{a} {}\n", rule_line(r)));
    }
    std::fs::create_dir_all(state_dir).map_err(err)?;
    crate::paths::write_atomically(&path, text.as_bytes()).map_err(err)
}

/// The file, in a BD's directory, listing the modules whose level the application sets when
/// no rule names them (`<module> <level>` per line), so readers resolve levels as it does.
pub const DEFAULTS_NAME: &str = "module-defaults";

/// Writes a BD's module defaults (replacing the file).
pub fn write_module_defaults(path: &Path, defaults: &[(String, LevelFilter)]) -> io::Result<()> {
    let mut text =
        String::from("# module levels when no rule names them, set by the application\n");
    for (module, level) in defaults {
        text.push_str(&format!("{module} {level}\n"));
    }
    crate::paths::write_atomically(path, text.as_bytes())
}

/// Reads a BD's module defaults; a missing file means none. Malformed lines are skipped.
pub fn read_module_defaults(path: &Path) -> Vec<(String, LevelFilter)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (module, level) = l.split_once(' ')?;
            Some((module.to_owned(), level.trim().parse().ok()?))
        })
        .collect()
}

/// The file, in a BD's directory, naming the level its events get when no rule names them,
/// for a BD whose default is not the product's `error` (the daemon's own tables record
/// everything unless told otherwise).
pub const BD_DEFAULT_NAME: &str = "bd-default";

/// Writes a BD's default level (replacing the file).
pub fn write_bd_default(path: &Path, level: LevelFilter) -> io::Result<()> {
    let text = format!("# the level when no rule names this BD's events\n{level}\n");
    crate::paths::write_atomically(path, text.as_bytes())
}

/// Reads a BD's default level; `None` when there is no such file (the product default).
pub fn read_bd_default(path: &Path) -> Option<LevelFilter> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())?
        .trim()
        .parse()
        .ok()
}

/// Parses `levels.conf`: `<level> [bd=B] [module=M] [group=G]` per line, `#` comments.
pub fn parse_persisted(text: &str) -> Result<Vec<Rule>, (usize, String)> {
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let level: LevelFilter = words
            .next()
            .unwrap_or("")
            .parse()
            .map_err(|e| (n + 1, format!("{e}")))?;
        let mut scope = Scope::default();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or((n + 1, format!("expected key=value, found {w:?}")))?;
            let slot = match k {
                "bd" => &mut scope.bd,
                "module" => &mut scope.module,
                "group" => &mut scope.group,
                _ => {
                    return Err((
                        n + 1,
                        format!("unknown key {k:?}: expected bd, module or group"),
                    ));
                }
            };
            *slot = Some(v.to_owned());
        }
        scope.validate().map_err(|e| (n + 1, e))?;
        rules.push(Rule { scope, level });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(bd: Option<&str>, module: Option<&str>, group: Option<&str>) -> Scope {
        Scope {
            bd: bd.map(Into::into),
            module: module.map(Into::into),
            group: group.map(Into::into),
        }
    }

    fn lv(s: &str) -> LevelFilter {
        s.parse().unwrap()
    }

    #[test]
    fn the_most_specific_setting_wins() {
        let rules = vec![
            Rule {
                scope: Scope::global(),
                level: lv("warning"),
            },
            Rule {
                scope: scope(Some("bgpd"), None, None),
                level: lv("notice"),
            },
            Rule {
                scope: scope(None, Some("bgp"), None),
                level: lv("info"),
            },
            Rule {
                scope: scope(Some("bgpd"), Some("bgp"), None),
                level: lv("critical"),
            },
            Rule {
                scope: scope(None, Some("bgp"), Some("peer")),
                level: lv("none"),
            },
            Rule {
                scope: scope(Some("bgpd"), Some("bgp"), Some("peer")),
                level: lv("debug"),
            },
        ];
        // (bd, module, group, module default) -> level and which rule decided
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str, &'a str);
        let cases: [Case<'_>; 9] = [
            (
                "bgpd",
                "bgp",
                "peer",
                None,
                "debug",
                "bd=bgpd module=bgp group=peer",
            ),
            (
                "ospfd",
                "bgp",
                "peer",
                None,
                "none",
                "module=bgp group=peer",
            ),
            (
                "bgpd",
                "bgp",
                "route",
                None,
                "critical",
                "bd=bgpd module=bgp",
            ),
            ("ospfd", "bgp", "route", None, "info", "module=bgp"),
            ("bgpd", "rib", "x", None, "notice", "bd=bgpd"),
            ("ifmgrd", "rib", "x", None, "warning", "global"),
            // A module the application turns off by default stays off under BD and global
            // rules, and follows module rules.
            (
                "ifmgrd",
                "noisy",
                "x",
                Some("none"),
                "none",
                "module default",
            ),
            ("bgpd", "noisy", "x", Some("none"), "none", "module default"),
            (
                "bgpd",
                "bgp",
                "peer",
                Some("none"),
                "debug",
                "bd=bgpd module=bgp group=peer",
            ),
        ];
        for (bd, module, group, default, want, why) in cases {
            let (got, source) = resolve(&rules, bd, module, group, default.map(lv));
            let source = match source {
                Source::Rule(s) => s.to_string(),
                Source::ModuleDefault => "module default".into(),
                Source::Default => "default".into(),
            };
            assert_eq!(
                (got.name(), source.as_str()),
                (want, why),
                "{bd}/{module}/{group}"
            );
        }
        assert_eq!(
            resolve(&[], "a", "b", "c", None),
            (LevelFilter::DEFAULT, Source::Default)
        );
    }

    #[test]
    fn rules_round_trip_through_the_block_and_the_state_file() {
        let run = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let c = Control::open(run.path(), Some(state.path())).unwrap();
        let g0 = c.generation().load(Ordering::Relaxed);
        c.set(scope(Some("bgpd"), Some("bgp"), Some("peer")), lv("debug"))
            .unwrap();
        c.set(Scope::global(), lv("warning")).unwrap();
        c.set(Scope::global(), lv("info")).unwrap();
        assert_eq!(c.generation().load(Ordering::Relaxed), g0 + 6);
        assert_eq!(c.rules().len(), 2);
        // Another process opening the block sees the same rules.
        let other = Control::open(run.path(), None).unwrap();
        assert_eq!(other.rules(), c.rules());
        // After a reboot (fresh run dir), the state file restores them.
        let run2 = tempfile::tempdir().unwrap();
        let rebooted = Control::open(run2.path(), Some(state.path())).unwrap();
        assert_eq!(rebooted.rules(), c.rules());
        c.clear(&Scope::global()).unwrap();
        assert_eq!(c.rules().len(), 1);
    }

    #[test]
    fn module_defaults_round_trip_through_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULTS_NAME);
        assert!(read_module_defaults(&path).is_empty());
        let defaults = vec![
            ("noisy".to_string(), LevelFilter::NONE),
            ("rib".into(), lv("info")),
        ];
        write_module_defaults(&path, &defaults).unwrap();
        assert_eq!(read_module_defaults(&path), defaults);
    }

    #[test]
    fn a_read_only_view_sees_the_rules_and_refuses_changes() {
        let run = tempfile::tempdir().unwrap();
        assert!(Control::open_read_only(run.path()).unwrap().is_none());
        let c = Control::open(run.path(), None).unwrap();
        c.set(Scope::global(), lv("debug")).unwrap();
        let view = Control::open_read_only(run.path()).unwrap().unwrap();
        assert_eq!(view.rules(), c.rules());
        assert!(
            view.set(Scope::global(), lv("none"))
                .unwrap_err()
                .to_string()
                .contains("read-only")
        );
    }

    #[test]
    fn bad_scopes_and_files_are_refused_with_reasons() {
        let run = tempfile::tempdir().unwrap();
        let c = Control::open(run.path(), None).unwrap();
        let e = c
            .set(scope(None, None, Some("peer")), lv("debug"))
            .unwrap_err();
        assert!(e.to_string().contains("--module"), "{e}");
        let e = c
            .set(scope(Some("bad name"), None, None), lv("debug"))
            .unwrap_err();
        assert!(e.to_string().contains("invalid bd name"), "{e}");
        let e = parse_persisted("debug bd=x\nloud module=y\n").unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("unknown level"), "{}", e.1);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"not a control block").unwrap();
        let e = Control::open(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("levels.ctl"), "{e}");
    }
}
