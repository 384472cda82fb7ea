//! The crate's error: a kind to match on and the input that caused it, for messages that say
//! exactly what was wrong.

use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A level name or number that is not one of the eight severities (or `none`).
    UnknownLevel,
    /// A facility name or number outside 0–23.
    UnknownFacility,
    /// A timestamp that is not RFC 3339, or out of the representable range.
    InvalidTimestamp,
}

/// An error from parsing one of the model's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    input: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, input: &str) -> Error {
        Error {
            kind,
            input: input.to_owned(),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The input that was refused.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::UnknownLevel => write!(
                f,
                "unknown level {:?}: expected emergency, alert, critical, error, warning, \
                 notice, info, debug, none (or 0-7)",
                self.input
            ),
            ErrorKind::UnknownFacility => write!(
                f,
                "unknown facility {:?}: expected kern, user, mail, daemon, auth, syslog, lpr, \
                 news, uucp, cron, authpriv, ftp, ntp, audit, console, clock, local0-local7 \
                 (or 0-23)",
                self.input
            ),
            ErrorKind::InvalidTimestamp => write!(
                f,
                "invalid timestamp {:?}: expected RFC 3339, e.g. 2024-05-01T12:00:00Z",
                self.input
            ),
        }
    }
}

impl std::error::Error for Error {}
