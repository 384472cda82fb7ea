//! Typed field values.
//!
//! Structured fields (GELF extras, RFC 5424 structured data, kmsg dictionaries, library event
//! arguments) keep their type: numbers stay numbers end to end, so a receiver can graph them.
//! Strings borrow from the input when they can (`Cow`), so a decoder stays zero-copy; a
//! [`Record`](crate::Record) holds `Value<'static>`.

use std::borrow::Cow;
use std::fmt;

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl Value<'_> {
    /// Detaches the value from the input it borrows.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::I64(n) => Value::I64(n),
            Value::U64(n) => Value::U64(n),
            Value::F64(n) => Value::F64(n),
            Value::Bool(b) => Value::Bool(b),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::I64(n) => write!(f, "{n}"),
            Value::U64(n) => write!(f, "{n}"),
            Value::F64(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'static> {
    fn from(s: String) -> Value<'static> {
        Value::Str(Cow::Owned(s))
    }
}

impl From<i64> for Value<'static> {
    fn from(n: i64) -> Value<'static> {
        Value::I64(n)
    }
}

impl From<u64> for Value<'static> {
    fn from(n: u64) -> Value<'static> {
        Value::U64(n)
    }
}

impl From<f64> for Value<'static> {
    fn from(n: f64) -> Value<'static> {
        Value::F64(n)
    }
}

impl From<bool> for Value<'static> {
    fn from(b: bool) -> Value<'static> {
        Value::Bool(b)
    }
}
