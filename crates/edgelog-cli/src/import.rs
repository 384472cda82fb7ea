//! `edgelog import rsyslog FILE`: edgelogd's TOML for the common subset of an rsyslog.conf.
//!
//! An operator who replaces rsyslog keeps what rsyslog did: the inputs it listened on, which
//! facility and severity went to which file or receiver, and how hard it tried. This reads the
//! parts of rsyslog.conf that carry that — input modules and `input(…)`, legacy selectors
//! (`facility.severity;facility.none`) with their actions, `action(type="omfwd"|"omfile"|
//! "omrelp" …)`, action queues, `$IncludeConfig`, and the file defaults (`$FileOwner`,
//! `$FileCreateMode`, the default template) — and writes them as sources and destinations.
//!
//! Nothing is dropped silently. A line it cannot express is kept in the output as a comment
//! with the reason (`file:line: text — not converted: why`), and the exit status says whether
//! anything that carries records was among them (1): a selector with severities edgelog's one
//! `level` per destination cannot say, a RainerScript `if`, a property filter, an input or an
//! action of a kind edgelogd has not. Settings that only tune rsyslog itself (`$WorkDirectory`,
//! `$Umask`, `global(…)`) are noted and cost nothing.
//!
//! The output is text written by hand rather than through a TOML serializer, so it reads the
//! way a person would write it: sources first, then destinations in the order rsyslog had
//! them, each with a comment naming the rsyslog line it came from.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use edgelog_core::{Facility, Level};

/// What conversion made of a configuration.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub toml: String,
    /// Something that carries records (an input, an action) was not converted.
    pub incomplete: bool,
}

/// Converts the rsyslog configuration at `path` (and the files it includes).
pub(crate) fn rsyslog(path: &Path) -> anyhow::Result<Converted> {
    let mut c = Conversion::default();
    c.file(path)?;
    Ok(c.finish(path))
}

/// A table for the output: its name, the rsyslog line it came from, its keys.
#[derive(Debug)]
struct Table {
    name: String,
    origin: String,
    body: String,
}

/// How rsyslog writes files created from here on (`$FileOwner`, `$FileCreateMode`, …).
#[derive(Debug, Clone)]
struct FileDefaults {
    owner: Option<String>,
    group: Option<String>,
    mode: Option<String>,
    format: &'static str,
}

impl Default for FileDefaults {
    fn default() -> FileDefaults {
        // rsyslog 8's default file template is RSYSLOG_FileFormat.
        FileDefaults {
            owner: None,
            group: None,
            mode: None,
            format: "precise",
        }
    }
}

/// An action queue (`$ActionQueue…` for the next action, or `queue.*` of `action(…)`).
#[derive(Debug, Default, Clone)]
struct Queue {
    kind: Option<String>,
    file_name: Option<String>,
    size: Option<String>,
    max_disk: Option<String>,
}

impl Queue {
    fn set(&mut self, key: &str, value: &str) -> bool {
        let v = Some(value.to_owned());
        match key.to_ascii_lowercase().as_str() {
            "type" => self.kind = v,
            "filename" => self.file_name = v,
            "size" => self.size = v,
            "maxdiskspace" => self.max_disk = v,
            _ => return false,
        }
        true
    }

    /// The edgelogd `queue = { … }` line, if the queue says anything.
    fn toml(&self) -> Option<String> {
        let kind = self.kind.as_deref().map(str::to_ascii_lowercase);
        let mut keys = Vec::new();
        match (kind.as_deref(), &self.file_name) {
            (Some("disk"), _) => keys.push("kind = \"disk\"".to_owned()),
            (_, Some(_)) => keys.push("kind = \"spill\"".to_owned()),
            (Some("linkedlist" | "fixedarray"), None) => keys.push("kind = \"memory\"".to_owned()),
            _ => {}
        }
        if let Some(n) = &self.size {
            keys.push(format!("max_records = {n}"));
        }
        if let Some(b) = &self.max_disk {
            let key = if kind.as_deref() == Some("disk") {
                "max_bytes"
            } else {
                "spill_max_bytes"
            };
            keys.push(format!("{key} = \"{}\"", size(b)));
        }
        (!keys.is_empty()).then(|| format!("queue = {{ {} }}\n", keys.join(", ")))
    }
}

/// An rsyslog size (`1g`, `512m`, `100k`) as edgelogd writes one (`1GiB`).
fn size(s: &str) -> String {
    let t = s.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let unit = match unit.to_ascii_lowercase().as_str() {
        "k" | "kb" => "KiB",
        "m" | "mb" => "MiB",
        "g" | "gb" => "GiB",
        "t" | "tb" => "TiB",
        _ => "B",
    };
    format!("{n}{unit}")
}

#[derive(Debug, Default)]
struct Conversion {
    sources: Vec<Table>,
    destinations: Vec<Table>,
    notes: Vec<String>,
    incomplete: bool,
    names: BTreeSet<String>,
    files: FileDefaults,
    /// `$ActionQueue…` settings waiting for the next action.
    queue: Queue,
    /// The last selector, for `&` lines (another action for the same selector).
    last_selector: Option<String>,
    /// Legacy inputs: the address `$UDPServerAddress` gives the next `$UDPServerRun`.
    udp_address: Option<String>,
    /// Files already written by a destination (one destination per file).
    paths: BTreeSet<String>,
    /// How deep in `$IncludeConfig` we are (a loop stops at 16).
    depth: usize,
}

/// Why a line was not converted, and whether records are lost for it.
enum Skip {
    /// Records would not go where rsyslog sent them.
    Loses(String),
    /// A setting edgelogd does not need, or has its own way for.
    Harmless(String),
}

impl Conversion {
    fn file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        for (line, stmt) in statements(&text) {
            let at = format!("{}:{line}", path.display());
            if let Err(skip) = self.statement(&stmt, &at, path) {
                let one_line = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
                let (why, loses) = match skip {
                    Skip::Loses(why) => (why, true),
                    Skip::Harmless(why) => (why, false),
                };
                self.incomplete |= loses;
                self.notes
                    .push(format!("{at}: {one_line} — not converted: {why}"));
            }
        }
        Ok(())
    }

    fn statement(&mut self, s: &str, at: &str, path: &Path) -> Result<(), Skip> {
        if let Some(rest) = s.strip_prefix('$') {
            return self.directive(rest, at, path);
        }
        if let Some((name, params)) = call(s) {
            return self.object(&name, &params, at);
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("if ") || lower.starts_with("ruleset") || s.starts_with(':') {
            return Err(Skip::Loses(
                "RainerScript conditions, rulesets and property filters are not converted; \
                 express the filter with a destination's `level` and `match`"
                    .into(),
            ));
        }
        if let Some(action) = s.strip_prefix('&') {
            let selector = self
                .last_selector
                .clone()
                .ok_or_else(|| Skip::Loses("`&` with no selector before it".into()))?;
            return self.selector_action(&selector, action.trim(), at);
        }
        let (selector, action) = s
            .split_once(char::is_whitespace)
            .ok_or_else(|| Skip::Loses("not a statement this converter knows".into()))?;
        self.last_selector = Some(selector.to_owned());
        self.selector_action(selector, action.trim(), at)
    }

    /// A legacy `$Directive value`.
    fn directive(&mut self, d: &str, at: &str, path: &Path) -> Result<(), Skip> {
        let (name, value) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
        let value = value.trim();
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "modload" => self.module(value, at),
            "fileowner" => {
                self.files.owner = Some(value.to_owned());
                Ok(())
            }
            "filegroup" => {
                self.files.group = Some(value.to_owned());
                Ok(())
            }
            "filecreatemode" => {
                self.files.mode = Some(value.to_owned());
                Ok(())
            }
            "actionfiledefaulttemplate" => {
                self.files.format = file_format(value)?;
                Ok(())
            }
            "includeconfig" => self.include(value, path),
            "udpserveraddress" => {
                self.udp_address = Some(value.to_owned());
                Ok(())
            }
            "udpserverrun" => {
                let address = self.udp_address.clone().unwrap_or_else(|| "0.0.0.0".into());
                self.listen("syslog_udp", &address, value, at)
            }
            "inputtcpserverrun" => self.listen("syslog_tcp", "0.0.0.0", value, at),
            "inputrelpserverrun" => Err(relp_input()),
            "systemlogsocketname" => {
                self.set_devlog(value, at);
                Ok(())
            }
            _ if lower.starts_with("actionqueue") => {
                let key = &lower["actionqueue".len()..];
                if self.queue.set(key, value) {
                    Ok(())
                } else {
                    Err(Skip::Harmless(
                        "edgelogd's queues size and retry themselves (docs/configuration.md)"
                            .into(),
                    ))
                }
            }
            _ if lower.starts_with("actionresume") => Err(Skip::Harmless(
                "edgelogd retries a receiver for as long as it is away, with backoff".into(),
            )),
            "workdirectory"
            | "umask"
            | "dircreatemode"
            | "dirowner"
            | "dirgroup"
            | "repeatedmsgreduction"
            | "privdroptouser"
            | "privdroptogroup"
            | "escapecontrolcharactersonreceive"
            | "maxmessagesize"
            | "preservefqdn" => Err(Skip::Harmless(
                "rsyslog's own setting; edgelogd needs none".into(),
            )),
            _ => Err(Skip::Harmless(format!(
                "`${name}` is not converted; check whether it changes what is logged"
            ))),
        }
    }

    /// `module(…)`, `input(…)`, `action(…)` and the RainerScript objects around them.
    fn object(&mut self, name: &str, p: &[(String, String)], at: &str) -> Result<(), Skip> {
        let get = |k: &str| {
            p.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        match name {
            "module" => {
                let load = get("load").unwrap_or_default();
                if load == "builtin:omfile" {
                    if let Some(t) = get("template") {
                        self.files.format = file_format(t)?;
                    }
                    return Ok(());
                }
                if load == "imuxsock" && get("SysSock.Use").is_some_and(|v| v == "off") {
                    return Ok(());
                }
                self.module(load, at)
            }
            "input" => match get("type").unwrap_or_default() {
                "imudp" => {
                    let address = get("address").unwrap_or("0.0.0.0");
                    self.listen("syslog_udp", address, get("port").unwrap_or("514"), at)
                }
                "imtcp" | "imptcp" => {
                    let address = get("address").unwrap_or("0.0.0.0");
                    self.listen("syslog_tcp", address, get("port").unwrap_or("514"), at)
                }
                "imuxsock" => {
                    self.set_devlog(get("socket").unwrap_or("/dev/log"), at);
                    Ok(())
                }
                "imfile" => self.imfile(get("file"), get("tag"), at),
                "imrelp" => Err(relp_input()),
                other => Err(Skip::Loses(format!(
                    "input type {other:?} is not in edgelogd"
                ))),
            },
            "action" => {
                let selector = self.last_selector.clone().unwrap_or_else(|| "*.*".into());
                self.typed_action(&selector, p, at)
            }
            "global" | "main_queue" => Err(Skip::Harmless(
                "rsyslog's own setting; edgelogd needs none".into(),
            )),
            "template" => Err(Skip::Harmless(
                "templates are not converted; file destinations use `format`".into(),
            )),
            _ => Err(Skip::Loses(format!("`{name}(…)` is not converted"))),
        }
    }

    /// A module loaded: the inputs that listen as soon as they are loaded.
    fn module(&mut self, module: &str, at: &str) -> Result<(), Skip> {
        match module.trim_matches('"') {
            "imuxsock" => {
                self.set_devlog("/dev/log", at);
                Ok(())
            }
            "imklog" => {
                if !self.names.contains("kmsg") {
                    self.add_source("kmsg", at, "type = \"kmsg\"\n".into());
                }
                Ok(())
            }
            // These listen once an input or a Run directive says where.
            "imudp" | "imtcp" | "imptcp" | "imfile" | "omrelp" | "builtin:omfile" | "omfwd" => {
                Ok(())
            }
            "imrelp" => Ok(()),
            "imjournal" => Err(Skip::Loses(
                "edgelogd does not read the journal; set ForwardToSyslog=yes in journald.conf \
                 and journald sends to /dev/log"
                    .into(),
            )),
            "immark" => Err(Skip::Harmless("edgelogd writes no -- MARK -- lines".into())),
            other => Err(Skip::Loses(format!("module {other:?} is not in edgelogd"))),
        }
    }

    fn set_devlog(&mut self, path: &str, at: &str) {
        let body = format!("type = \"unix_datagram\"\npath = \"{}\"\n", esc(path));
        match self.sources.iter_mut().find(|t| t.name == "devlog") {
            Some(t) => {
                t.body = body;
                t.origin = at.to_owned();
            }
            None => self.add_source("devlog", at, body),
        }
    }

    fn listen(&mut self, ty: &str, address: &str, port: &str, at: &str) -> Result<(), Skip> {
        let port: u16 = port
            .trim_matches('"')
            .parse()
            .map_err(|_| Skip::Loses(format!("port {port:?} is not a number")))?;
        let address = match address {
            "*" | "" => "0.0.0.0",
            a => a,
        };
        let name = self.name(&format!("{}_{port}", &ty[7..]));
        let address = if address.contains(':') {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        };
        self.add_source(
            &name,
            at,
            format!("type = \"{ty}\"\naddress = \"{address}\"\n"),
        );
        Ok(())
    }

    fn imfile(&mut self, file: Option<&str>, tag: Option<&str>, at: &str) -> Result<(), Skip> {
        let file = file.ok_or_else(|| Skip::Loses("imfile input without File".into()))?;
        let stem = Path::new(file)
            .file_stem()
            .map_or("file".into(), |s| s.to_string_lossy().into_owned());
        let name = self.name(&stem);
        let mut body = format!("type = \"file\"\npaths = [\"{}\"]\n", esc(file));
        if let Some(tag) = tag
            .map(|t| t.trim_end_matches(':'))
            .filter(|t| !t.is_empty())
        {
            let _ = writeln!(body, "app_name = \"{}\"", esc(tag));
        }
        self.add_source(&name, at, body);
        Ok(())
    }

    /// A legacy selector and its action (`auth,authpriv.* /var/log/auth.log`).
    fn selector_action(&mut self, selector: &str, action: &str, at: &str) -> Result<(), Skip> {
        let filter = selector_filter(selector)?;
        let (action, template) = match action.split_once(';') {
            Some((a, t)) => (a.trim(), Some(t.trim())),
            None => (action, None),
        };
        let queue = std::mem::take(&mut self.queue);
        if let Some(path) = action
            .strip_prefix('-')
            .or(Some(action))
            .filter(|a| a.starts_with('/'))
        {
            let format = match template {
                Some(t) => file_format(t)?,
                None => self.files.format,
            };
            let files = FileDefaults {
                format,
                ..self.files.clone()
            };
            return self.file_action(path, &files, &filter, at);
        }
        if let Some(rest) = action.strip_prefix("@@") {
            let (framing, target) = forward_options(rest)?;
            return self.forward("syslog_tcp", target, framing, &filter, &queue, at);
        }
        if let Some(rest) = action.strip_prefix('@') {
            let (_, target) = forward_options(rest)?;
            return self.forward("syslog_udp", target, None, &filter, &queue, at);
        }
        if let Some(target) = action.strip_prefix(":omrelp:") {
            return self.forward("relp", target, None, &filter, &queue, at);
        }
        if action.starts_with(":omusrmsg:") || action == "*" {
            return Err(Skip::Harmless(
                "edgelogd does not write to users' terminals; these records still reach every \
                 other destination"
                    .into(),
            ));
        }
        if action == "~" || action == "stop" {
            return Err(Skip::Loses(
                "discarding records for the actions after this one has no edgelogd form; \
                 narrow those destinations' `match` instead"
                    .into(),
            ));
        }
        Err(Skip::Loses(format!("action {action:?} is not converted")))
    }

    /// `action(type="omfile"|"omfwd"|"omrelp" …)` under `selector`.
    fn typed_action(
        &mut self,
        selector: &str,
        p: &[(String, String)],
        at: &str,
    ) -> Result<(), Skip> {
        let get = |k: &str| {
            p.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let filter = selector_filter(selector)?;
        let mut queue = std::mem::take(&mut self.queue);
        for (k, v) in p {
            if let Some(key) = k.to_ascii_lowercase().strip_prefix("queue.") {
                queue.set(key, v);
            }
        }
        match get("type").unwrap_or_default() {
            "omfile" => {
                let file = get("file").ok_or_else(|| {
                    Skip::Loses("omfile with dynaFile (a file per record) is not converted".into())
                })?;
                let files = FileDefaults {
                    owner: get("fileOwner")
                        .map(str::to_owned)
                        .or(self.files.owner.clone()),
                    group: get("fileGroup")
                        .map(str::to_owned)
                        .or(self.files.group.clone()),
                    mode: get("fileCreateMode")
                        .map(str::to_owned)
                        .or(self.files.mode.clone()),
                    format: match get("template") {
                        Some(t) => file_format(t)?,
                        None => self.files.format,
                    },
                };
                self.file_action(file, &files, &filter, at)
            }
            "omfwd" => {
                let target =
                    get("target").ok_or_else(|| Skip::Loses("omfwd without target".into()))?;
                let port = get("port").unwrap_or("514");
                let tcp = get("protocol").is_some_and(|p| p.eq_ignore_ascii_case("tcp"));
                let framing = get("TCP_Framing")
                    .filter(|f| f.eq_ignore_ascii_case("octet-counted"))
                    .map(|_| "octet-counting");
                let ty = if tcp { "syslog_tcp" } else { "syslog_udp" };
                let framing = if tcp {
                    Some(framing.unwrap_or("lf"))
                } else {
                    None
                };
                self.forward(
                    ty,
                    &format!("{target}:{port}"),
                    framing,
                    &filter,
                    &queue,
                    at,
                )
            }
            "omrelp" => {
                let target =
                    get("target").ok_or_else(|| Skip::Loses("omrelp without target".into()))?;
                let port = get("port").unwrap_or("514");
                self.forward(
                    "relp",
                    &format!("{target}:{port}"),
                    None,
                    &filter,
                    &queue,
                    at,
                )
            }
            other => Err(Skip::Loses(format!(
                "action type {other:?} is not in edgelogd"
            ))),
        }
    }

    fn file_action(
        &mut self,
        path: &str,
        files: &FileDefaults,
        filter: &str,
        at: &str,
    ) -> Result<(), Skip> {
        if !self.paths.insert(path.to_owned()) {
            return Err(Skip::Loses(format!(
                "{path} is written by an earlier selector already; edgelogd has one destination \
                 per file — widen that one's `level` or `match`"
            )));
        }
        let stem = Path::new(path)
            .file_stem()
            .map_or("file".into(), |s| s.to_string_lossy().into_owned());
        let name = self.name(&stem);
        let mut body = format!(
            "type = \"file\"\npath = \"{}\"\nformat = \"{}\"\n",
            esc(path),
            files.format
        );
        for (key, v) in [
            ("owner", &files.owner),
            ("group", &files.group),
            ("mode", &files.mode),
        ] {
            if let Some(v) = v {
                let _ = writeln!(body, "{key} = \"{}\"", esc(v));
            }
        }
        body += filter;
        self.add_destination(&name, at, body);
        Ok(())
    }

    fn forward(
        &mut self,
        ty: &str,
        target: &str,
        framing: Option<&str>,
        filter: &str,
        queue: &Queue,
        at: &str,
    ) -> Result<(), Skip> {
        let target = target.trim().trim_matches('"');
        let address = match target.rsplit_once(':') {
            Some((host, port)) if !host.contains(']') || host.ends_with(']') => {
                if port.parse::<u16>().is_err() {
                    return Err(Skip::Loses(format!("{target:?}: the port is not a number")));
                }
                format!("{host}:{port}")
            }
            _ => format!("{target}:514"),
        };
        let host = address.rsplit_once(':').map_or(target, |(h, _)| h);
        let name = self.name(&format!("{}_{}", &ty[ty.len().saturating_sub(3)..], host));
        let mut body = format!("type = \"{ty}\"\naddress = \"{}\"\n", esc(&address));
        if ty != "relp" {
            // rsyslog forwards RSYSLOG_TraditionalForwardFormat by default.
            body += "format = \"rfc3164\"\n";
        }
        if let Some(f) = framing {
            let _ = writeln!(body, "framing = \"{f}\"");
        }
        if let Some(q) = queue.toml() {
            body += &q;
        }
        body += filter;
        self.add_destination(&name, at, body);
        Ok(())
    }

    fn include(&mut self, pattern: &str, from: &Path) -> Result<(), Skip> {
        if self.depth >= 16 {
            return Err(Skip::Loses("includes nested 16 deep: a loop?".into()));
        }
        let pattern = Path::new(pattern.trim_matches('"'));
        let pattern = if pattern.is_relative() {
            from.parent().unwrap_or(Path::new(".")).join(pattern)
        } else {
            pattern.to_owned()
        };
        let mut files = matching(&pattern);
        files.sort();
        self.depth += 1;
        let mut result = Ok(());
        for f in files {
            if let Err(e) = self.file(&f) {
                result = Err(Skip::Loses(format!("{e}")));
            }
        }
        self.depth -= 1;
        result
    }

    /// A name for a new source or destination, unique, 1–31 letters, digits, `_` and `-` (no
    /// `.`, which a TOML table header would read as nesting).
    fn name(&mut self, want: &str) -> String {
        let mut base: String = want
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(28)
            .collect();
        if base.is_empty() {
            base = "imported".into();
        }
        let mut name = base.clone();
        let mut n = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.names.insert(name.clone());
        name
    }

    fn add_source(&mut self, name: &str, at: &str, body: String) {
        self.names.insert(name.to_owned());
        self.sources.push(Table {
            name: name.to_owned(),
            origin: at.to_owned(),
            body,
        });
    }

    fn add_destination(&mut self, name: &str, at: &str, body: String) {
        self.destinations.push(Table {
            name: name.to_owned(),
            origin: at.to_owned(),
            body,
        });
    }

    fn finish(self, path: &Path) -> Converted {
        let mut out = format!(
            "# edgelogd configuration converted from {} by `edgelog import rsyslog`.\n\
             # Check it with `edgelogd --check-config -c FILE`; docs/migrating-from-rsyslog.md\n\
             # maps rsyslog's concepts to edgelogd's.\n",
            path.display()
        );
        for (kind, tables) in [
            ("sources", &self.sources),
            ("destinations", &self.destinations),
        ] {
            for t in tables {
                let _ = write!(
                    out,
                    "\n# from {}\n[{kind}.{}]\n{}",
                    t.origin, t.name, t.body
                );
            }
        }
        if self.destinations.is_empty() {
            out += "\n# rsyslog wrote nothing anywhere edgelogd can: a local store keeps the records.\n\
                    [destinations.store]\ntype = \"file_store\"\n";
        }
        if !self.notes.is_empty() {
            out += "\n# Not converted:\n";
            for n in &self.notes {
                let _ = writeln!(out, "# {n}");
            }
        }
        Converted {
            toml: out,
            incomplete: self.incomplete,
        }
    }
}

fn relp_input() -> Skip {
    Skip::Loses("RELP input is not in edgelogd yet; senders can use TCP (or TLS) meanwhile".into())
}

/// An rsyslog file template as an edgelogd `format`.
fn file_format(template: &str) -> Result<&'static str, Skip> {
    match template.trim().trim_matches('"') {
        "RSYSLOG_TraditionalFileFormat" => Ok("traditional"),
        "RSYSLOG_FileFormat" => Ok("precise"),
        "RSYSLOG_SyslogProtocol23Format" => Ok("rfc5424"),
        other => Err(Skip::Loses(format!(
            "template {other:?} is not converted; file destinations write `traditional`, \
             `precise`, `rfc3164`, `rfc5424` or `json` lines"
        ))),
    }
}

/// `(o)host:port` — rsyslog's forwarding options before the target: `o` is octet counting.
fn forward_options(rest: &str) -> Result<(Option<&'static str>, &str), Skip> {
    let Some(opts) = rest.strip_prefix('(') else {
        return Ok((Some("lf"), rest));
    };
    let (opts, target) = opts
        .split_once(')')
        .ok_or_else(|| Skip::Loses("unclosed forwarding options".into()))?;
    if opts.chars().any(|c| c != 'o') {
        return Err(Skip::Loses(format!(
            "forwarding options ({opts}) other than o (octet counting) are not converted"
        )));
    }
    Ok((Some("octet-counting"), target))
}

/// A legacy selector as a destination's `level` and `match` lines.
fn selector_filter(selector: &str) -> Result<String, Skip> {
    let mut included: Vec<Facility> = Vec::new();
    let mut level: Option<Level> = None;
    for part in selector.split(';') {
        let (facilities, severity) = part
            .rsplit_once('.')
            .ok_or_else(|| Skip::Loses(format!("{part:?} is not facility.severity")))?;
        let facilities: Vec<Facility> = if facilities == "*" {
            Facility::ALL.to_vec()
        } else {
            facilities
                .split(',')
                .map(|f| {
                    f.trim()
                        .parse::<Facility>()
                        .map_err(|_| Skip::Loses(format!("unknown facility {f:?} in {selector:?}")))
                })
                .collect::<Result<_, _>>()?
        };
        if severity == "none" {
            included.retain(|f| !facilities.contains(f));
            continue;
        }
        if severity.starts_with(['=', '!']) {
            return Err(Skip::Loses(format!(
                "{severity:?}: an exact or excluded severity has no edgelogd form (a \
                 destination takes a severity and everything more severe)"
            )));
        }
        let sev = if severity == "*" {
            Level::Debug
        } else {
            severity
                .parse::<Level>()
                .map_err(|_| Skip::Loses(format!("unknown severity {severity:?}")))?
        };
        if level.is_some_and(|l| l != sev) {
            return Err(Skip::Loses(format!(
                "{selector:?} gives its facilities different severities; an edgelogd \
                 destination has one `level` — split it into one selector per severity"
            )));
        }
        level = Some(sev);
        for f in facilities {
            if !included.contains(&f) {
                included.push(f);
            }
        }
    }
    let level = level.unwrap_or(Level::Debug);
    let mut out = format!("level = \"{}\"\n", level.name());
    if included.is_empty() {
        return Err(Skip::Harmless(format!("{selector:?} selects nothing")));
    }
    if included.len() < Facility::ALL.len() {
        included.sort_by_key(|f| f.as_u8());
        let names: Vec<String> = included
            .iter()
            .map(|f| format!("\"{}\"", f.name()))
            .collect();
        let _ = writeln!(out, "match = {{ facility = [{}] }}", names.join(", "));
    }
    Ok(out)
}

/// The files a `$IncludeConfig` pattern names: a path, or `*` and `?` in its last part.
fn matching(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return if pattern.is_file() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| glob(name.as_bytes(), n.to_string_lossy().as_bytes()))
        })
        .collect()
}

/// `*` and `?` matching, as the shell does within one path component.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Text for inside a TOML basic string.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `name(key="value" …)` — a RainerScript object — as its name and parameters.
fn call(s: &str) -> Option<(String, Vec<(String, String)>)> {
    let open = s.find('(')?;
    let name = s[..open].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let close = s.rfind(')')?;
    let mut params = Vec::new();
    let mut rest = &s[open + 1..close];
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_owned(), &q[(end + 1).min(q.len())..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        params.push((key, value));
        rest = tail;
    }
    Some((name.to_ascii_lowercase(), params))
}

/// The statements of a file with the line each starts on: comments dropped, a RainerScript
/// object `name( … )` (with a `{ … }` body) and an `if … then` block joined across lines.
fn statements(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut depth = 0i32;
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() && depth == 0 {
            continue;
        }
        if current.is_empty() {
            start = n + 1;
        } else {
            current.push(' ');
        }
        current += line.trim();
        depth += depth_change(line);
        let open_if = current.to_ascii_lowercase().starts_with("if ")
            && !current.contains('{')
            && !current.contains(" then ")
            && current.ends_with("then");
        if depth <= 0 && !open_if {
            out.push((start, std::mem::take(&mut current)));
            depth = 0;
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

/// The line without a `#` comment outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Parentheses and braces opened minus closed, outside quotes.
fn depth_change(line: &str) -> i32 {
    let mut quoted = false;
    let mut d = 0;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' | '{' if !quoted => d += 1,
            ')' | '}' if !quoted => d -= 1,
            _ => {}
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_a_level_and_a_facility_match() {
        assert_eq!(
            selector_filter("*.*;auth,authpriv.none").ok().unwrap(),
            "level = \"debug\"\nmatch = { facility = [\"kern\", \"user\", \"mail\", \"daemon\", \
             \"syslog\", \"lpr\", \"news\", \"uucp\", \"cron\", \"ftp\", \"ntp\", \"audit\", \
             \"console\", \"clock\", \"local0\", \"local1\", \"local2\", \"local3\", \
             \"local4\", \"local5\", \"local6\", \"local7\"] }\n"
        );
        assert_eq!(
            selector_filter("mail.err").ok().unwrap(),
            "level = \"error\"\nmatch = { facility = [\"mail\"] }\n"
        );
        assert_eq!(
            selector_filter("*.emerg").ok().unwrap(),
            "level = \"emergency\"\n"
        );
        assert!(matches!(
            selector_filter("*.info;mail.err"),
            Err(Skip::Loses(_))
        ));
        assert!(matches!(selector_filter("mail.=info"), Err(Skip::Loses(_))));
        assert!(matches!(selector_filter("bogus.info"), Err(Skip::Loses(_))));
    }

    #[test]
    fn objects_spanning_lines_are_one_statement() {
        let text = "# c\nmodule(load=\"imudp\") # udp\ninput(type=\"imudp\"\n  port=\"514\")\n\
                    action(type=\"omfwd\" target=\"10.0.0.1\"\n port=\"514\" protocol=\"tcp\")\n";
        let s = statements(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1], (3, "input(type=\"imudp\" port=\"514\")".to_owned()));
        let (name, params) = call(&s[2].1).unwrap();
        assert_eq!(name, "action");
        assert_eq!(params[1], ("target".to_owned(), "10.0.0.1".to_owned()));
        assert_eq!(params[3], ("protocol".to_owned(), "tcp".to_owned()));
    }

    #[test]
    fn include_patterns_match_like_the_shell() {
        assert!(glob(b"*.conf", b"50-default.conf"));
        assert!(!glob(b"*.conf", b"x.conf.bak"));
        assert!(glob(b"?0-*.conf", b"20-ufw.conf"));
    }
}
