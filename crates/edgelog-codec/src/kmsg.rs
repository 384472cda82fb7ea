//! Linux `/dev/kmsg` records.
//!
//! ```text
//! PRI,SEQ,TS_USEC,FLAGS[,OTHER…];MESSAGE\n
//!  KEY=VALUE\n                                  dictionary, zero or more lines
//!
//! "6,1234,5678901,-;usb 1-1: new high-speed USB device number 2 using ehci-pci\n
//!  SUBSYSTEM=usb\n DEVICE=c189:1\n"
//! ```
//!
//! One `read(2)` of `/dev/kmsg` returns exactly one record. PRI is `facility * 8 + level`
//! (kernel messages are facility 0), SEQ a 64-bit counter that increases by one per record,
//! TS_USEC microseconds since boot, FLAGS `-`, `c` (continuation) or `+`. The kernel escapes
//! unprintable bytes in MESSAGE and VALUE as `\xNN`; we undo that. Fields after FLAGS (newer
//! kernels add `caller=T123`) become fields too.
//!
//! A reader learns that records were lost (overwritten in the kernel ring before it read them)
//! from a jump in SEQ; [`SequenceTracker`] turns the jumps into a count.

use std::borrow::Cow;

use edgelog_core::{Timestamp, Value};

use crate::message::{DiagKind, Diagnostic, Format, Message, Mode, Pri, utf8_lossy};

/// Parses one kmsg record. `boot_time` turns TS_USEC into a timestamp; without it the
/// timestamp stays empty and [`Message::monotonic_usec`] carries the raw value.
pub fn parse(record: &[u8], boot_time: Option<Timestamp>, mode: Mode) -> Message<'_> {
    let mut m = Message::new(Format::Kmsg);
    let record = record.strip_suffix(b"\n").unwrap_or(record);
    let (first, dict) = match memchr::memchr(b'\n', record) {
        Some(n) => (&record[..n], &record[n + 1..]),
        None => (record, &[][..]),
    };
    let Some(semi) = memchr::memchr(b';', first) else {
        return invalid_header(m, record, first.len(), mode);
    };
    let mut parts = first[..semi].split(|&b| b == b',');
    let mut number = || -> Option<u64> { std::str::from_utf8(parts.next()?).ok()?.parse().ok() };
    let (Some(prival), Some(seq), Some(ts_usec)) = (number(), number(), number()) else {
        return invalid_header(m, record, 0, mode);
    };
    let Some(flags) = parts.next() else {
        return invalid_header(m, record, semi, mode);
    };
    match u8::try_from(prival).ok().and_then(Pri::from_u8) {
        Some(pri) => m.pri = Some(pri),
        None if mode == Mode::Strict => {
            m.error = Some(Diagnostic {
                kind: DiagKind::InvalidPri,
                offset: 0,
            });
            return m;
        }
        None => m.diagnose(DiagKind::InvalidPri, 0),
    }
    m.sequence = Some(seq);
    m.monotonic_usec = Some(ts_usec);
    // A TS_USEC beyond the representable range (only a forged record has one) leaves the
    // timestamp empty rather than wrapping.
    m.timestamp = boot_time.and_then(|b| {
        let nanos = i64::try_from(ts_usec).ok()?.checked_mul(1000)?;
        Some(Timestamp::from_unix_nanos(
            b.as_unix_nanos().checked_add(nanos)?,
        ))
    });
    if flags != b"-" {
        m.fields
            .push((Cow::Borrowed("FLAGS"), Value::Str(lossy(flags))));
    }
    for extra in parts {
        let (k, v) = split_kv(extra);
        m.fields.push((lossy(k), Value::Str(unescape(v))));
    }
    m.message = Some(unescape(&first[semi + 1..]));
    for line in dict.split(|&b| b == b'\n') {
        let Some(line) = line.strip_prefix(b" ") else {
            if !line.is_empty() {
                m.diagnose(DiagKind::InvalidKmsgHeader, first.len() + 1);
            }
            continue;
        };
        let (k, v) = split_kv(line);
        m.fields.push((lossy(k), Value::Str(unescape(v))));
    }
    m
}

fn invalid_header<'a>(mut m: Message<'a>, record: &'a [u8], at: usize, mode: Mode) -> Message<'a> {
    let d = Diagnostic {
        kind: DiagKind::InvalidKmsgHeader,
        offset: at,
    };
    if mode == Mode::Strict {
        m.error = Some(d);
    } else {
        m.diagnostics.push(d);
        m.format = Format::Raw;
        m.message = Some(lossy(record));
    }
    m
}

fn split_kv(s: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'=', s) {
        Some(n) => (&s[..n], &s[n + 1..]),
        None => (s, &[][..]),
    }
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    utf8_lossy(b).0
}

/// Undoes the kernel's `\xNN` escaping; borrows when there is none.
fn unescape(s: &[u8]) -> Cow<'_, str> {
    if memchr::memmem::find(s, b"\\x").is_none() {
        return lossy(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'x') {
            let hex = s
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Counts records lost between reads, from the kernel's sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    next: Option<u64>,
    lost: u64,
}

impl SequenceTracker {
    /// A tracker that has seen nothing yet.
    pub fn new() -> SequenceTracker {
        SequenceTracker::default()
    }

    /// Notes a record's sequence number; returns how many records were skipped before it.
    /// A sequence number that goes backwards (a reader reopened at the start of the ring) is
    /// a restart, not a loss.
    pub fn observe(&mut self, seq: u64) -> u64 {
        let gap = match self.next {
            Some(next) if seq > next => seq - next,
            _ => 0,
        };
        self.lost += gap;
        self.next = Some(seq.saturating_add(1));
        gap
    }

    /// Records lost so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}
