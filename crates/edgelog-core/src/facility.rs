//! Syslog facilities, 0–23.
//!
//! Names follow rsyslog and util-linux `logger`, so a `-p auth.info` or a `facility = "local3"`
//! in a config means what an operator already expects. Facilities 12–15 have no POSIX names;
//! we use `ntp`, `audit`, `console` and `clock`, and accept the spellings other tools print.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

/// A syslog facility (RFC 5424 table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Facility {
    Kern = 0,
    User = 1,
    Mail = 2,
    Daemon = 3,
    Auth = 4,
    Syslog = 5,
    Lpr = 6,
    News = 7,
    Uucp = 8,
    Cron = 9,
    Authpriv = 10,
    Ftp = 11,
    Ntp = 12,
    Audit = 13,
    Console = 14,
    Clock = 15,
    Local0 = 16,
    Local1 = 17,
    Local2 = 18,
    Local3 = 19,
    Local4 = 20,
    Local5 = 21,
    Local6 = 22,
    Local7 = 23,
}

impl Facility {
    /// All facilities in numeric order.
    pub const ALL: [Facility; 24] = [
        Facility::Kern,
        Facility::User,
        Facility::Mail,
        Facility::Daemon,
        Facility::Auth,
        Facility::Syslog,
        Facility::Lpr,
        Facility::News,
        Facility::Uucp,
        Facility::Cron,
        Facility::Authpriv,
        Facility::Ftp,
        Facility::Ntp,
        Facility::Audit,
        Facility::Console,
        Facility::Clock,
        Facility::Local0,
        Facility::Local1,
        Facility::Local2,
        Facility::Local3,
        Facility::Local4,
        Facility::Local5,
        Facility::Local6,
        Facility::Local7,
    ];

    /// The facility with this number, if it is 0–23.
    pub const fn from_u8(n: u8) -> Option<Facility> {
        if n < 24 {
            Some(Facility::ALL[n as usize])
        } else {
            None
        }
    }

    /// The facility number, 0–23.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The canonical name, as shown in JSON and tables.
    pub const fn name(self) -> &'static str {
        const NAMES: [&str; 24] = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp", "ntp", "audit", "console", "clock", "local0", "local1", "local2",
            "local3", "local4", "local5", "local6", "local7",
        ];
        NAMES[self as usize]
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Facility {
    type Err = Error;

    /// A name or alias (case-insensitive) or a number 0–23.
    fn from_str(s: &str) -> Result<Facility, Error> {
        let t = s.trim();
        let err = || Error::new(ErrorKind::UnknownFacility, s);
        if let Ok(n) = t.parse::<u8>() {
            return Facility::from_u8(n).ok_or_else(err);
        }
        let lower = t.to_ascii_lowercase();
        if let Some(f) = Facility::ALL.iter().find(|f| f.name() == lower) {
            return Ok(*f);
        }
        let alias = match lower.as_str() {
            "kernel" => Facility::Kern,
            // util-linux and rsyslog both map the deprecated "security" to auth.
            "security" => Facility::Auth,
            "log_audit" => Facility::Audit,
            "alert" | "log_alert" => Facility::Console,
            "cron2" | "solaris-cron" | "clockd" => Facility::Clock,
            _ => return Err(err()),
        };
        Ok(alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_facility_parses_from_its_name_and_number() {
        for f in Facility::ALL {
            assert_eq!(f.name().parse::<Facility>().unwrap(), f);
            assert_eq!(f.name().to_uppercase().parse::<Facility>().unwrap(), f);
            assert_eq!(f.as_u8().to_string().parse::<Facility>().unwrap(), f);
        }
        assert_eq!("security".parse::<Facility>().unwrap(), Facility::Auth);
    }

    #[test]
    fn unknown_facility_is_refused_with_the_choices() {
        let err = "local8".parse::<Facility>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownFacility);
        assert!(err.to_string().contains("local0-local7"));
        assert!("24".parse::<Facility>().is_err());
    }
}
