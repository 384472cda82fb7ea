//! Severities and the filters that select them.
//!
//! A [`Level`] is one of the eight syslog severities, `0` (emergency, most severe) to `7`
//! (debug). A [`LevelFilter`] is what a setting holds: a level, meaning "this severity and every
//! more severe one", or `none`, meaning nothing. The filter is stored as `level + 1` with `none`
//! as `0`, so the hot-path question "is this level enabled?" is one byte comparison.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

/// A syslog severity. Lower numbers are more severe; `Ord` follows the numbers, so
/// `Level::Error < Level::Debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Level {
    /// All levels, most severe first.
    pub const ALL: [Level; 8] = [
        Level::Emergency,
        Level::Alert,
        Level::Critical,
        Level::Error,
        Level::Warning,
        Level::Notice,
        Level::Info,
        Level::Debug,
    ];

    /// The level with this syslog number, if it is 0–7.
    pub const fn from_u8(n: u8) -> Option<Level> {
        if n < 8 {
            Some(Level::ALL[n as usize])
        } else {
            None
        }
    }

    /// The syslog number, 0–7.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The canonical name, as shown in tables and JSON: `"critical"`, `"warning"`, …
    pub const fn name(self) -> &'static str {
        match self {
            Level::Emergency => "emergency",
            Level::Alert => "alert",
            Level::Critical => "critical",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// The short name used by syslog configs and `logger -p`: `"crit"`, `"warn"`, …
    pub const fn short_name(self) -> &'static str {
        match self {
            Level::Emergency => "emerg",
            Level::Alert => "alert",
            Level::Critical => "crit",
            Level::Error => "err",
            Level::Warning => "warn",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    fn parse_name(s: &str) -> Option<Level> {
        if let Ok(n) = s.parse::<u8>() {
            return Level::from_u8(n);
        }
        let level = match s.to_ascii_lowercase().as_str() {
            "emergency" | "emerg" | "panic" => Level::Emergency,
            "alert" => Level::Alert,
            "critical" | "crit" => Level::Critical,
            "error" | "err" => Level::Error,
            "warning" | "warn" => Level::Warning,
            "notice" => Level::Notice,
            "info" | "informational" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        };
        Some(level)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Parses a name or alias (case-insensitive) or a number 0–7. `none` is a filter, not a
    /// level, and is refused here.
    fn from_str(s: &str) -> Result<Level, Error> {
        Level::parse_name(s.trim()).ok_or_else(|| Error::new(ErrorKind::UnknownLevel, s))
    }
}

/// A level setting: `none`, or a level meaning that severity and every more severe one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelFilter(u8);

impl LevelFilter {
    /// Nothing is enabled.
    pub const NONE: LevelFilter = LevelFilter(0);
    /// Everything is enabled.
    pub const ALL: LevelFilter = LevelFilter(8);
    /// The product-wide default, `error`.
    pub const DEFAULT: LevelFilter = LevelFilter::from_level(Level::Error);

    /// The filter enabling `level` and every more severe level.
    pub const fn from_level(level: Level) -> LevelFilter {
        LevelFilter(level as u8 + 1)
    }

    /// Whether an event of `level` passes. One comparison: this sits on hot paths.
    #[inline(always)]
    pub const fn enabled(self, level: Level) -> bool {
        (level as u8) < self.0
    }

    /// The least severe level that passes, or `None` for [`LevelFilter::NONE`].
    pub const fn level(self) -> Option<Level> {
        match self.0 {
            0 => None,
            n => Level::from_u8(n - 1),
        }
    }

    /// The compact encoding used in shared memory: `0` is `none`, `n` is level `n - 1`.
    pub const fn to_raw(self) -> u8 {
        self.0
    }

    /// Decodes [`LevelFilter::to_raw`]; values above 8 mean "all".
    pub const fn from_raw(raw: u8) -> LevelFilter {
        LevelFilter(if raw > 8 { 8 } else { raw })
    }

    /// The name as written in configs and shown by the CLI.
    pub const fn name(self) -> &'static str {
        match self.level() {
            None => "none",
            Some(level) => level.name(),
        }
    }
}

impl Default for LevelFilter {
    fn default() -> LevelFilter {
        LevelFilter::DEFAULT
    }
}

impl From<Level> for LevelFilter {
    fn from(level: Level) -> LevelFilter {
        LevelFilter::from_level(level)
    }
}

impl fmt::Debug for LevelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LevelFilter({})", self.name())
    }
}

impl fmt::Display for LevelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for LevelFilter {
    type Err = Error;

    /// A level name or number, or `none` / `off`.
    fn from_str(s: &str) -> Result<LevelFilter, Error> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("off") {
            return Ok(LevelFilter::NONE);
        }
        Level::parse_name(t)
            .map(LevelFilter::from_level)
            .ok_or_else(|| Error::new(ErrorKind::UnknownLevel, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_numbers_parse_case_insensitively() {
        let cases = [
            ("emergency", Level::Emergency),
            ("EMERG", Level::Emergency),
            ("panic", Level::Emergency),
            ("Alert", Level::Alert),
            ("crit", Level::Critical),
            ("critical", Level::Critical),
            ("err", Level::Error),
            ("Error", Level::Error),
            ("warn", Level::Warning),
            ("WARNING", Level::Warning),
            ("notice", Level::Notice),
            ("info", Level::Info),
            ("debug", Level::Debug),
            ("0", Level::Emergency),
            ("7", Level::Debug),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Level>().unwrap(), want, "{input}");
        }
    }

    #[test]
    fn unknown_level_names_the_input_and_the_choices() {
        let err = "verbose".parse::<Level>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownLevel);
        let msg = err.to_string();
        assert!(
            msg.contains("\"verbose\"") && msg.contains("warning"),
            "{msg}"
        );
        assert!("8".parse::<Level>().is_err());
        assert!("none".parse::<Level>().is_err());
    }

    #[test]
    fn filter_enables_its_level_and_more_severe_ones() {
        let f: LevelFilter = "warning".parse().unwrap();
        assert!(f.enabled(Level::Emergency));
        assert!(f.enabled(Level::Warning));
        assert!(!f.enabled(Level::Notice));
        assert!(!f.enabled(Level::Debug));
        let none: LevelFilter = "None".parse().unwrap();
        assert!(Level::ALL.iter().all(|&l| !none.enabled(l)));
        assert!(Level::ALL.iter().all(|&l| LevelFilter::ALL.enabled(l)));
        assert_eq!(LevelFilter::default().name(), "error");
    }

    #[test]
    fn filter_raw_encoding_round_trips() {
        for raw in 0..=8 {
            assert_eq!(LevelFilter::from_raw(raw).to_raw(), raw);
        }
        assert_eq!(LevelFilter::from_raw(200), LevelFilter::ALL);
    }
}
