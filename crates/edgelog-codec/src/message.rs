//! The decoded message: one shape for every wire format.
//!
//! Every decoder in this crate fills the same [`Message`], which is the union of what the
//! formats carry (the RFC 5424 header, structured data, GELF and kmsg fields, a sequence
//! number). Strings borrow from the frame whenever the wire bytes are the value (`Cow`), and
//! structured data is kept as its checked wire text, so a syslog decoder allocates nothing
//! unless it has to unescape or repair something.
//!
//! Decoders never fail. A frame that breaks its grammar still yields a `Message`: in lenient mode
//! with what could be recovered plus [`Diagnostic`]s, in strict mode with the fields parsed before
//! the first violation and that violation as [`Message::error`]. A message carries no more than
//! [`MAX_DIAGNOSTICS`] diagnostics, so hostile input cannot grow them without bound.

use std::borrow::Cow;
use std::fmt;

use edgelog_core::{Facility, Level, Timestamp, Value};

use crate::sd::StructuredData;

/// The most diagnostics one message keeps; later ones are counted in the last.
pub const MAX_DIAGNOSTICS: usize = 8;

/// The grammar a frame was decoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rfc5424,
    Rfc3164,
    Gelf,
    Kmsg,
    /// Nothing recognisable: the whole frame is the message.
    Raw,
}

impl Format {
    /// The name used in JSON and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Gelf => "gelf",
            Format::Kmsg => "kmsg",
            Format::Raw => "raw",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Strict decoding stops at the first grammar violation; lenient decoding recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    Strict,
    #[default]
    Lenient,
}

/// A syslog priority: facility and severity, `facility * 8 + severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pri {
    pub facility: Facility,
    pub severity: Level,
}

impl Pri {
    /// The priority with this PRIVAL, if it is 0–191.
    pub fn from_u8(prival: u8) -> Option<Pri> {
        Some(Pri {
            facility: Facility::from_u8(prival >> 3)?,
            severity: Level::from_u8(prival & 7)?,
        })
    }

    /// The PRIVAL, 0–191.
    pub fn as_u8(self) -> u8 {
        self.facility.as_u8() * 8 + self.severity.as_u8()
    }
}

/// What was wrong with a frame, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagKind {
    /// The frame was empty.
    EmptyFrame,
    /// The frame was longer than the framing's maximum and was cut.
    FrameTruncated,
    /// The stream ended inside an octet-counted frame.
    FrameIncomplete,
    /// No `<PRI>` at the start.
    MissingPri,
    /// `<PRI>` malformed or above 191.
    InvalidPri,
    /// RFC 5424 VERSION missing or malformed.
    InvalidVersion,
    /// An RFC 5424 VERSION other than 1.
    UnsupportedVersion,
    /// A space separating two fields is missing.
    MissingSpace,
    /// A header field is empty (two spaces in a row).
    EmptyField,
    /// The timestamp is malformed or names an impossible date or time.
    InvalidTimestamp,
    /// More than six fraction digits in an RFC 5424 timestamp.
    TimestampTooPrecise,
    /// No timestamp where one is expected.
    MissingTimestamp,
    /// A space between `<PRI>` and the timestamp (read past, as rsyslog does).
    SpaceBeforeTimestamp,
    /// A field is longer than its grammar allows.
    FieldTooLong,
    /// A byte outside the field's character set (PRINTUSASCII for RFC 5424 headers).
    InvalidCharacter,
    /// The frame ended before the header did.
    Truncated,
    /// Structured data does not follow the grammar.
    InvalidStructuredData,
    /// An SD-ID appears twice in one message.
    DuplicateSdId,
    /// Bytes that must be UTF-8 are not; they were replaced with U+FFFD.
    InvalidUtf8,
    /// A GELF payload is not a JSON object.
    InvalidJson,
    /// A required GELF field (`version`, `host`, `short_message`) is missing.
    MissingField,
    /// A GELF field has the wrong type, or an additional field's name is not `^[\w.\-]*$`.
    InvalidField,
    /// A GELF additional field `_id`, which the spec reserves.
    ReservedField,
    /// A compressed payload could not be inflated.
    DecompressFailed,
    /// A payload is larger than the configured limit (after inflating).
    PayloadTooLarge,
    /// A kmsg record header is not `pri,seq,ts_usec,flags[,…];`.
    InvalidKmsgHeader,
    /// More diagnostics than [`MAX_DIAGNOSTICS`]; the rest were dropped.
    TooManyDiagnostics,
}

impl DiagKind {
    /// The stable snake_case name used in JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            DiagKind::EmptyFrame => "empty_frame",
            DiagKind::FrameTruncated => "frame_truncated",
            DiagKind::FrameIncomplete => "frame_incomplete",
            DiagKind::MissingPri => "missing_pri",
            DiagKind::InvalidPri => "invalid_pri",
            DiagKind::InvalidVersion => "invalid_version",
            DiagKind::UnsupportedVersion => "unsupported_version",
            DiagKind::MissingSpace => "missing_space",
            DiagKind::EmptyField => "empty_field",
            DiagKind::InvalidTimestamp => "invalid_timestamp",
            DiagKind::TimestampTooPrecise => "timestamp_too_precise",
            DiagKind::MissingTimestamp => "missing_timestamp",
            DiagKind::FieldTooLong => "field_too_long",
            DiagKind::InvalidCharacter => "invalid_character",
            DiagKind::Truncated => "truncated",
            DiagKind::InvalidStructuredData => "invalid_structured_data",
            DiagKind::DuplicateSdId => "duplicate_sd_id",
            DiagKind::InvalidUtf8 => "invalid_utf8",
            DiagKind::InvalidJson => "invalid_json",
            DiagKind::MissingField => "missing_field",
            DiagKind::InvalidField => "invalid_field",
            DiagKind::ReservedField => "reserved_field",
            DiagKind::DecompressFailed => "decompress_failed",
            DiagKind::PayloadTooLarge => "payload_too_large",
            DiagKind::InvalidKmsgHeader => "invalid_kmsg_header",
            DiagKind::TooManyDiagnostics => "too_many_diagnostics",
            DiagKind::SpaceBeforeTimestamp => "space_before_timestamp",
        }
    }
}

impl fmt::Display for DiagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A grammar violation at a byte offset into the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub kind: DiagKind,
    pub offset: usize,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

/// A decoded frame. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub format: Format,
    pub pri: Option<Pri>,
    /// RFC 5424 VERSION.
    pub version: Option<u16>,
    pub timestamp: Option<Timestamp>,
    pub hostname: Option<Cow<'a, str>>,
    pub app_name: Option<Cow<'a, str>>,
    pub proc_id: Option<Cow<'a, str>>,
    pub msg_id: Option<Cow<'a, str>>,
    /// RFC 5424 structured data; `None` for the NILVALUE or when absent.
    pub structured_data: Option<StructuredData<'a>>,
    pub message: Option<Cow<'a, str>>,
    /// GELF additional fields (without the leading `_`) and kmsg dictionary entries.
    pub fields: Vec<(Cow<'a, str>, Value<'a>)>,
    /// A sender's sequence number: kmsg `seq`, Cisco `nnn:` prefixes.
    pub sequence: Option<u64>,
    /// kmsg: microseconds since boot.
    pub monotonic_usec: Option<u64>,
    /// Lenient mode: what was wrong and was recovered from.
    pub diagnostics: Vec<Diagnostic>,
    /// Strict mode: the first violation; fields after it are not filled.
    pub error: Option<Diagnostic>,
}

impl<'a> Message<'a> {
    /// An empty message of `format`.
    pub fn new(format: Format) -> Message<'a> {
        Message {
            format,
            pri: None,
            version: None,
            timestamp: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: None,
            message: None,
            fields: Vec::new(),
            sequence: None,
            monotonic_usec: None,
            diagnostics: Vec::new(),
            error: None,
        }
    }

    /// Records a lenient-mode diagnostic, keeping at most [`MAX_DIAGNOSTICS`].
    pub fn diagnose(&mut self, kind: DiagKind, offset: usize) {
        let n = self.diagnostics.len();
        if n + 1 < MAX_DIAGNOSTICS {
            self.diagnostics.push(Diagnostic { kind, offset });
        } else if n + 1 == MAX_DIAGNOSTICS {
            self.diagnostics.push(Diagnostic {
                kind: DiagKind::TooManyDiagnostics,
                offset,
            });
        }
    }

    /// The value of the first field named `key`.
    pub fn field(&self, key: &str) -> Option<&Value<'a>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether the frame decoded without any violation.
    pub fn is_clean(&self) -> bool {
        self.error.is_none() && self.diagnostics.is_empty()
    }

    /// The first violation, strict or lenient: what a counter of malformed frames counts.
    pub fn first_problem(&self) -> Option<Diagnostic> {
        self.error.or_else(|| self.diagnostics.first().copied())
    }

    /// The severity, defaulting to `notice` (RFC 3164 §4.3.3's default PRI 13 is user.notice).
    pub fn severity(&self) -> Level {
        self.pri.map_or(Level::Notice, |p| p.severity)
    }

    /// The facility, defaulting to `user`.
    pub fn facility(&self) -> Facility {
        self.pri.map_or(Facility::User, |p| p.facility)
    }

    /// Detaches the message from the frame it borrows.
    pub fn into_owned(self) -> Message<'static> {
        fn own(s: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            s.map(|s| Cow::Owned(s.into_owned()))
        }
        Message {
            format: self.format,
            pri: self.pri,
            version: self.version,
            timestamp: self.timestamp,
            hostname: own(self.hostname),
            app_name: own(self.app_name),
            proc_id: own(self.proc_id),
            msg_id: own(self.msg_id),
            structured_data: self.structured_data.map(StructuredData::into_owned),
            message: own(self.message),
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
            sequence: self.sequence,
            monotonic_usec: self.monotonic_usec,
            diagnostics: self.diagnostics,
            error: self.error,
        }
    }
}

/// Whether `bytes` is UTF-8. Log lines are nearly always ASCII, and the word-at-a-time ASCII
/// check costs a fraction of full validation on short strings.
#[inline]
pub(crate) fn is_utf8(bytes: &[u8]) -> bool {
    is_ascii(bytes) || std::str::from_utf8(bytes).is_ok()
}

/// `<[u8]>::is_ascii`, eight bytes per step. (The standard one compiled to a byte loop here,
/// and it runs over every message body.)
#[inline]
pub(crate) fn is_ascii(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= u64::from_le_bytes(w.try_into().unwrap_or_default());
    }
    let tail = words.remainder().iter().fold(0u8, |a, &b| a | b);
    acc & 0x8080_8080_8080_8080 == 0 && tail < 0x80
}

/// Text from wire bytes: borrowed when valid UTF-8, else lossily replaced (and reported).
pub(crate) fn utf8_lossy(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    if is_ascii(bytes) {
        // SAFETY: ASCII is UTF-8.
        return (
            Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) }),
            true,
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), true),
        Err(_) => (String::from_utf8_lossy(bytes), false),
    }
}

/// The index of the first byte of `s` outside PRINTUSASCII (%d33-126), or `s.len()`. A space
/// ends a syslog token and is outside the range, so this finds the end of a clean token and
/// the first bad byte of a dirty one in one pass.
///
/// Eight bytes at a time: a byte below 33 borrows out of `x - 0x21…` with its top bit clear in
/// `x`, a byte above 126 carries into (or already has) its top bit in `x + 0x01…`. A borrow or
/// carry only moves upwards from a flagged byte, so the lowest flag is exact.
#[inline]
pub(crate) fn printusascii_len(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let below = x.wrapping_sub(ONES * 0x21) & !x & HIGH;
        let above = (x.wrapping_add(ONES) | x) & HIGH;
        let flags = below | above;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + s[i..]
        .iter()
        .position(|&b| !(33..=126).contains(&b))
        .unwrap_or(s.len() - i)
}
