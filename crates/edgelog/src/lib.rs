//! edgelog, the in-process library: an application declares its log events once and logs them
//! in hot paths for nanoseconds into tables an operator can read on the box.
//!
//! ```no_run
//! use edgelog::{Event, Level};
//!
//! // Declared once: module, group, name, severity, template. The log ID is derived from module
//! // and name, so it is the same in every build and run.
//! pub static BGP_PEER_UP: Event =
//!     Event::new("bgp", "peer", "BGP_PEER_UP", Level::Notice, "peer {peer} (AS {asn}) is up");
//!
//! edgelog::init("bgpd", edgelog::Options::new().events(&[&BGP_PEER_UP])).unwrap();
//! let peer: std::net::IpAddr = "10.0.0.2".parse().unwrap();
//! edgelog::event!(BGP_PEER_UP, peer = peer, asn = 65001u64);
//! ```
//!
//! Design, after tracing's call-site cache and NanoLog's deferred formatting:
//!
//! - Each `event!` expands to a `static` [`Callsite`] that caches whether it is enabled
//!   together with the level generation it computed that for. The hot-path check is two
//!   relaxed loads and a compare; only a level change (anywhere on the box: the control block
//!   is shared memory written by `edgelog set log level`) sends a call site to its `#[cold]`
//!   slow path to re-resolve its level.
//! - An enabled event encodes its arguments (typed, unformatted) into a stack buffer and
//!   appends them to its module's table: one `fetch_add`, one compare-and-swap and a few
//!   stores into shared memory. No allocation, lock or system call (a clock read aside).
//!   Formatting happens when someone reads the table, with the published log maps.
//! - Everything else — opening tables, publishing log maps, reading level rules — happens
//!   once per call site or per level change, behind a mutex, off the hot path.

#[cfg(any(feature = "log", feature = "tracing"))]
pub mod bridge;
mod callsite;
mod clock;
mod limit;
mod runtime;

pub use callsite::{Arg, Callsite, INLINE_PAYLOAD, InlinePayload, MAX_INLINE_PAYLOAD};
pub use clock::{ClockStats, clock_stats};
pub use edgelog_core::table::args::ArgWriter;
pub use edgelog_core::{Level, LevelFilter};
pub use runtime::{InitError, Options, dropped_no_space, flush_rate_limits, init, log_text};

use edgelog_core::maps;

/// A log event, declared once as a `static`.
#[derive(Debug)]
pub struct Event {
    pub module: &'static str,
    pub group: &'static str,
    pub name: &'static str,
    pub level: Level,
    pub template: &'static str,
    id: u32,
}

impl Event {
    /// Declares an event. Its log ID is derived from `module` and `name`.
    pub const fn new(
        module: &'static str,
        group: &'static str,
        name: &'static str,
        level: Level,
        template: &'static str,
    ) -> Event {
        Event {
            module,
            group,
            name,
            level,
            template,
            id: maps::log_id(module, name),
        }
    }

    /// A dynamic-text event (bridges, free text): one argument, the text.
    #[doc(hidden)]
    pub const fn dynamic(module: &'static str, group: &'static str, level: Level) -> Event {
        Event {
            module,
            group,
            name: "TEXT",
            level,
            template: "{text}",
            id: maps::text_id(module, group),
        }
    }

    /// The stable log ID.
    pub const fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn map(&self) -> maps::LogMap {
        maps::LogMap {
            id: self.id,
            level: self.level,
            module: self.module.into(),
            group: self.group.into(),
            name: self.name.into(),
            template: self.template.into(),
        }
    }
}

/// Logs a declared event: `event!(BGP_PEER_UP, peer = addr, asn = 65001u64)`. Arguments are
/// given in template order; their names document the call and are checked against the
/// template once, when the call site is first resolved.
#[macro_export]
macro_rules! event {
    ($event:path $(, $name:ident = $value:expr)* $(,)?) => {{
        static __EDGELOG_SITE: $crate::Callsite =
            $crate::Callsite::new(&$event, &[$(stringify!($name)),*]);
        if __EDGELOG_SITE.enabled() {
            let mut __buf = $crate::INLINE_PAYLOAD;
            let mut __w = __EDGELOG_SITE.writer(&mut __buf);
            $( $crate::Arg::encode(&$value, &mut __w); )*
            __EDGELOG_SITE.emit(&__w, 0);
        }
    }};
}

/// Logs free text in a module and group: `text!("bgp", "misc", Level::Info, "x = {}", x)`.
/// Formats (and allocates) only when enabled; for bridges and rare messages, not hot paths.
#[macro_export]
macro_rules! text {
    ($module:expr, $group:expr, $level:expr, $($fmt:tt)+) => {{
        static __EDGELOG_EVENT: $crate::Event = $crate::Event::dynamic($module, $group, $level);
        static __EDGELOG_SITE: $crate::Callsite = $crate::Callsite::new(&__EDGELOG_EVENT, &["text"]);
        if __EDGELOG_SITE.enabled() {
            __EDGELOG_SITE.emit_text(&::std::format!($($fmt)+));
        }
    }};
}
