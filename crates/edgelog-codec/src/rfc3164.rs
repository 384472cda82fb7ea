//! RFC 3164 ("BSD") syslog and the shapes real devices send under that name.
//!
//! ```text
//! <PRI>TIMESTAMP SP HOSTNAME SP TAG[PID]: MSG          RFC 3164 §4.1
//! <PRI>TIMESTAMP SP TAG[PID]: MSG                      /dev/log local form (glibc, logger)
//! <PRI>SEQ: *TIMESTAMP TZ: %FAC-SEV-MNEMONIC: MSG      Cisco IOS (`*`/`.` = clock not synced)
//! <PRI>Mmm dd yyyy hh:mm:ss: %ASA-6-302013: MSG        Cisco ASA, with a year
//! <PRI>2024-05-01T12:00:00.123+02:00 HOST TAG: MSG     RFC 3339 in the 3164 position (rsyslog)
//! TIMESTAMP HOST TAG: MSG                              no PRI (relayed from files)
//! ```
//!
//! BSD syslog has no grammar a parser can rely on, only conventions; this parser is a sequence
//! of recognisers, each optional: PRI, a Cisco sequence number, a timestamp in any of the shapes
//! above, a hostname, a tag. What none of them claims is the message, so no byte is dropped.
//!
//! Timestamps without a year or zone are resolved with a [`Context`]: the year that puts the
//! instant closest to the receiver's clock (so a `Dec 31 23:59:59` read on January 1st lands in
//! the old year), in the zone the sender is known to use.
//!
//! Strict mode follows the RFC: PRI and a `Mmm dd hh:mm:ss` timestamp (day space-padded) are
//! required; everything after them is read by the same conventions as in lenient mode.

use std::borrow::Cow;

use edgelog_core::{Civil, Timestamp, Value};
use jiff::tz::TimeZone;

use crate::message::{DiagKind, Diagnostic, Format, Message, Mode, Pri};
use crate::rfc5424::{PriParse, parse_pri, parse_rfc3339};

/// Byte classes for the header recognisers: one table load per byte.
const HOST: u8 = 1; // letters, digits, `.-_:`
const TAG: u8 = 2; // anything but controls, SP, `:`, `[`, `]`
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 33;
    while b < 256 {
        if b != b':' as usize && b != b'[' as usize && b != b']' as usize && b != 127 {
            t[b] = TAG;
        }
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'_' || c == b':' {
            t[b] |= HOST;
        }
        b += 1;
    }
    t
};

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// How to read times that lack a year or a zone.
#[derive(Debug, Clone)]
pub struct Context {
    now: Timestamp,
    zone: TimeZone,
    /// The zone is UTC (or a zero fixed offset): no zone database work per message.
    utc: bool,
    /// `now`'s year in `zone`.
    year: i32,
    /// For UTC, the first second of last, this and next year and whether each is a leap year:
    /// a yearless time then costs a table lookup and a few multiplications.
    year_starts: [(i64, bool); 3],
    /// `now` plus [`FUTURE_TOLERANCE_SECS`]: the latest instant a yearless time may name.
    limit: Timestamp,
}

impl Context {
    /// Times read relative to `now` in `zone`.
    pub fn new(now: Timestamp, zone: TimeZone) -> Context {
        let utc = zone
            .to_fixed_offset()
            .is_ok_and(|o| o == jiff::tz::Offset::UTC);
        let year = if utc {
            now.to_civil().year
        } else {
            i32::from(now.to_jiff().to_zoned(zone.clone()).year())
        };
        let year_starts = [year - 1, year, year + 1].map(|y| {
            let jan1 = Civil {
                year: y,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                nanosecond: 0,
            };
            let start = Timestamp::from_civil(jan1).map_or(i64::MIN, Timestamp::unix_seconds);
            (start, Civil::is_leap_year(y))
        });
        Context {
            now,
            zone,
            utc,
            year,
            year_starts,
            limit: now.add_seconds(FUTURE_TOLERANCE_SECS),
        }
    }

    /// Times read as UTC, relative to `now`.
    pub fn utc(now: Timestamp) -> Context {
        Context::new(now, TimeZone::UTC)
    }

    /// The system's clock and zone.
    pub fn system() -> Context {
        Context::new(Timestamp::now(), TimeZone::system())
    }

    /// The clock the context reads yearless times against.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The zone the context reads zoneless times in.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The instant of a local civil time in this context's zone.
    fn local(&self, c: Civil) -> Option<Timestamp> {
        if self.utc {
            return match usize::try_from(c.year - (self.year - 1)) {
                Ok(k) if k < 3 => self.utc_in_year(k, c),
                _ => Timestamp::from_civil(c),
            };
        }
        // Validate with our own calendar first: jiff would reject the same dates, more slowly.
        Timestamp::from_civil(c)?;
        let dt = jiff::civil::DateTime::new(
            c.year as i16,
            c.month as i8,
            c.day as i8,
            c.hour as i8,
            c.minute as i8,
            c.second as i8,
            c.nanosecond as i32,
        )
        .ok()?;
        let ts = self.zone.to_ambiguous_timestamp(dt).compatible().ok()?;
        Timestamp::from_jiff(ts)
    }

    /// [`Timestamp::from_civil`] for a UTC time in one of the three cached years.
    fn utc_in_year(&self, k: usize, c: Civil) -> Option<Timestamp> {
        const DAYS_BEFORE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let (start, leap) = self.year_starts[k];
        if c.month.wrapping_sub(1) >= 12
            || c.day.wrapping_sub(1) >= Civil::days_in_month(c.year, c.month)
            || c.hour > 23
            || c.minute > 59
            || c.second > 59
            || start == i64::MIN
        {
            return None;
        }
        let doy = i64::from(DAYS_BEFORE[usize::from(c.month - 1)])
            + i64::from(leap && c.month > 2)
            + i64::from(c.day - 1);
        let secs = start
            + doy * 86_400
            + i64::from(c.hour) * 3600
            + i64::from(c.minute) * 60
            + i64::from(c.second);
        Timestamp::from_unix(secs, c.nanosecond)
    }

    /// The instant of a yearless local time: the latest of last, this and next year that is
    /// not more than [`FUTURE_TOLERANCE_SECS`] ahead of `now`. Logs describe the past, so a
    /// `Dec 31 23:59:59` read on January 1st is last year's, and a sender whose clock runs a
    /// little ahead across New Year still lands in the new year.
    fn infer_year(&self, mut c: Civil) -> Option<Timestamp> {
        let limit = self.limit;
        let mut at = |year: i32| {
            c.year = year;
            self.local(c)
        };
        match at(self.year) {
            // Far in the past: next year's date may be the one just behind us (Jan 1 read on
            // Dec 31 by a receiver whose clock is slow).
            Some(ts) if ts < limit.add_seconds(-366 * 86_400) => Some(
                at(self.year + 1)
                    .filter(|&next| next <= limit)
                    .unwrap_or(ts),
            ),
            Some(ts) if ts <= limit => Some(ts),
            // Ahead of now, or not a date this year (Feb 29): last year's.
            _ => at(self.year - 1).or_else(|| at(self.year + 1).filter(|&next| next <= limit)),
        }
    }
}

/// How far ahead of the receiver's clock a yearless timestamp may be and still be read in the
/// current year: 31 days.
pub const FUTURE_TOLERANCE_SECS: i64 = 31 * 86_400;

/// Parses one BSD syslog frame. Never fails; see the module documentation.
///
/// Inlined so that the message is built in the caller's frame: returned from an outlined
/// call it was copied (a few hundred bytes) on every frame.
#[inline]
pub fn parse<'a>(frame: &'a [u8], ctx: &Context, mode: Mode) -> Message<'a> {
    let mut m = Message::new(Format::Rfc3164);
    let _ = parse_into(&mut m, frame, ctx, mode == Mode::Strict);
    if m.pri.is_none() && m.timestamp.is_none() && m.app_name.is_none() && m.error.is_none() {
        m.format = Format::Raw;
    }
    m
}

struct Stop;

fn violation(m: &mut Message<'_>, strict: bool, kind: DiagKind, offset: usize) -> Result<(), Stop> {
    if strict {
        m.error = Some(Diagnostic { kind, offset });
        Err(Stop)
    } else {
        m.diagnose(kind, offset);
        Ok(())
    }
}

fn parse_into<'a>(
    m: &mut Message<'a>,
    s: &'a [u8],
    ctx: &Context,
    strict: bool,
) -> Result<(), Stop> {
    if s.is_empty() {
        violation(m, strict, DiagKind::EmptyFrame, 0)?;
        m.message = Some(Cow::Borrowed(""));
        return Ok(());
    }
    let mut i = 0;
    match parse_pri(s) {
        PriParse::Ok(pri, len) => {
            m.pri = Some(pri);
            i = len;
        }
        PriParse::Missing => violation(m, strict, DiagKind::MissingPri, 0)?,
        PriParse::Invalid(at) => violation(m, strict, DiagKind::InvalidPri, at)?,
    }
    if !strict {
        // Cisco IOS: `<189>123: ` sequence number before the timestamp, and with
        // `logging origin-id hostname` the host name after it: `<189>123: r1: *Mar  1 …`
        // (or `r1 *Mar  1 …`).
        if let Some((seq, len)) = cisco_sequence(&s[i..]) {
            m.sequence = Some(seq);
            i += len;
            let (tok, end) = token(s, i);
            let host = tok.strip_suffix(b":").unwrap_or(tok);
            if is_hostname(host)
                && timestamp(s.get(end + 1..).unwrap_or_default(), ctx, false).is_some()
            {
                m.hostname = Some(ascii(host));
                i = end + 1;
            }
        }
    }
    // A space before the timestamp (HP ProCurve and others): rsyslog reads past it.
    if !strict
        && s.get(i) == Some(&b' ')
        && timestamp(&s[i..], ctx, false).is_none()
        && timestamp(&s[i + 1..], ctx, false).is_some()
    {
        m.diagnose(DiagKind::SpaceBeforeTimestamp, i);
        i += 1;
    }
    match timestamp(&s[i..], ctx, strict) {
        Some((ts, len)) => {
            m.timestamp = ts;
            if ts.is_none() {
                violation(m, strict, DiagKind::InvalidTimestamp, i)?;
            }
            i += len;
        }
        None => {
            let kind = if strict && s.len() > i && s[i] != b' ' {
                DiagKind::InvalidTimestamp
            } else {
                DiagKind::MissingTimestamp
            };
            violation(m, strict, kind, i)?;
        }
    }
    // One validation for the frame: every piece cut at ASCII delimiters can then borrow.
    let utf8 = crate::message::is_utf8(s);
    if m.pri.is_none() && m.timestamp.is_none() && !tagged(s, i) {
        // Nothing syslog-shaped: the whole frame is the message, no guessing at hosts or tags.
        body(m, s, 0, utf8);
    } else {
        header_and_message(m, s, i, utf8);
    }
    Ok(())
}

/// `nnn: ` — digits, a colon and a space, as Cisco's `service sequence-numbers` writes them.
fn cisco_sequence(s: &[u8]) -> Option<(u64, usize)> {
    let n = s.iter().take(20).take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || s.get(n..n + 2) != Some(b": ") {
        return None;
    }
    let seq = std::str::from_utf8(&s[..n]).ok()?.parse().ok()?;
    Some((seq, n + 2))
}

/// Recognises a timestamp at the start of `s`, with the separator after it. `Some((None, len))`
/// is a timestamp-shaped token that names no valid instant (e.g. `Feb 30`).
fn timestamp(s: &[u8], ctx: &Context, strict: bool) -> Option<(Option<Timestamp>, usize)> {
    if let Some(found) = plain_bsd_time(s, ctx, strict) {
        return Some(found);
    }
    if strict {
        let (c, len) = bsd_time(s, true)?;
        let len = expect_space(s, len)?;
        return Some((ctx.infer_year(c), len));
    }
    // Cisco marks an unsynchronised clock with '*' and a once-synchronised one with '.'.
    let marker = matches!(s.first(), Some(b'*' | b'.')) as usize;
    let t = &s[marker..];
    let (ts, mut len) = if let Some((c, len)) = bsd_time(t, false) {
        let (c, len) = trailing_year(t, c, len);
        resolve_bsd(t, c, len, ctx)
    } else if let Some((c, len)) = year_first_bsd_time(t) {
        resolve_bsd(t, c, len, ctx)
    } else {
        iso_time(t, ctx)?
    };
    // Cisco ends the timestamp with a colon.
    if t.get(len) == Some(&b':') {
        len += 1;
    }
    match t.get(len) {
        Some(b' ') => len += 1,
        None => {}
        Some(_) => return None,
    }
    Some((ts, marker + len))
}

/// The instant of a BSD civil time (year 0 = unknown), reading a zone name after it if any
/// (Cisco: `... 18:46:11.231 UTC:`).
fn resolve_bsd(t: &[u8], c: Civil, mut len: usize, ctx: &Context) -> (Option<Timestamp>, usize) {
    let mut utc = false;
    if let Some((name_len, is_utc)) = zone_name(&t[len..]) {
        len += name_len;
        utc = is_utc;
    }
    let ts = match (c.year != 0, utc) {
        (true, true) => Timestamp::from_civil(c),
        (true, false) => ctx.local(c),
        (false, true) => Context::utc(ctx.now).infer_year(c),
        (false, false) => ctx.infer_year(c),
    };
    (ts, len)
}

/// The common case in one straight-line pass: `Mmm dd hh:mm:ss ` (16 bytes, day space- or
/// zero-padded) followed by something that is neither a year nor a zone name. Anything else —
/// markers, fractions, years, zones, the frame ending at the time — goes to the general path,
/// so both read every input the same way.
#[inline]
fn plain_bsd_time(s: &[u8], ctx: &Context, strict: bool) -> Option<(Option<Timestamp>, usize)> {
    let h: &[u8; 16] = s.get(..16)?.try_into().ok()?;
    if h[3] != b' ' || h[6] != b' ' || h[9] != b':' || h[12] != b':' || h[15] != b' ' {
        return None;
    }
    let month = month(h)?;
    let day = match (h[4], h[5]) {
        (b' ', d) if d.is_ascii_digit() => d - b'0',
        (b'0', _) if strict => return None,
        _ => two_digits(h, 4)?,
    };
    let (hour, minute, second) = (two_digits(h, 7)?, two_digits(h, 10)?, two_digits(h, 13)?);
    let rest = &s[16..];
    let year_follows = rest.len() >= 4
        && rest[..4].iter().all(u8::is_ascii_digit)
        && matches!(rest.get(4), None | Some(b' '));
    let zone_follows =
        rest.first().is_some_and(u8::is_ascii_uppercase) && zone_name(&s[15..]).is_some();
    if !strict && (year_follows || zone_follows) {
        return None;
    }
    let c = Civil {
        year: 0,
        month,
        day,
        hour,
        minute,
        second,
        nanosecond: 0,
    };
    Some((ctx.infer_year(c), 16))
}

fn expect_space(s: &[u8], len: usize) -> Option<usize> {
    match s.get(len) {
        Some(b' ') => Some(len + 1),
        None => Some(len),
        Some(_) => None,
    }
}

fn month(s: &[u8]) -> Option<u8> {
    let m = s.get(..3)?;
    // Lower-case the three letters at once and match them as one number.
    let key = u32::from_le_bytes([m[0], m[1], m[2], 0]) | 0x0020_2020;
    let n = match &key.to_le_bytes()[..3] {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(n)
}

fn two_digits(s: &[u8], at: usize) -> Option<u8> {
    let d = s.get(at..at + 2)?;
    if d[0].is_ascii_digit() && d[1].is_ascii_digit() {
        Some((d[0] - b'0') * 10 + (d[1] - b'0'))
    } else {
        None
    }
}

/// `hh:mm:ss[.frac]` at `s[at..]`: hour, minute, second, nanoseconds and the end offset.
fn clock(s: &[u8], at: usize, fraction: bool) -> Option<(u8, u8, u8, u32, usize)> {
    let h = two_digits(s, at)?;
    let mi = (s.get(at + 2) == Some(&b':')).then(|| two_digits(s, at + 3))??;
    let se = (s.get(at + 5) == Some(&b':')).then(|| two_digits(s, at + 6))??;
    let mut end = at + 8;
    let mut nanos = 0u32;
    if fraction && s.get(end) == Some(&b'.') && s.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end += 1;
        let mut n = 0;
        while let Some(&b) = s.get(end).filter(|b| b.is_ascii_digit()) {
            if n < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
                n += 1;
            }
            end += 1;
        }
        nanos *= 10u32.pow(9 - n);
    }
    Some((h, mi, se, nanos, end))
}

/// `Mmm dd hh:mm:ss[.frac]` (and in lenient mode `Mmm d`, `Mmm 0d`, `Mmm dd yyyy hh:mm:ss`).
/// The year is left 0 when absent.
fn bsd_time(s: &[u8], strict: bool) -> Option<(Civil, usize)> {
    let month = month(s)?;
    if s.get(3) != Some(&b' ') {
        return None;
    }
    // Day: " 5" (RFC), "05" or "5" (lenient).
    let (day, mut at) = match (s.get(4)?, s.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => (d - b'0', 6),
        (a, b) if a.is_ascii_digit() && b.is_ascii_digit() => {
            if strict && *a == b'0' {
                return None;
            }
            ((a - b'0') * 10 + (b - b'0'), 6)
        }
        (a, b' ') if a.is_ascii_digit() && !strict => (a - b'0', 5),
        _ => return None,
    };
    if s.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    let mut year = 0i32;
    if !strict && s.get(at + 4) == Some(&b' ') && s[at..at + 4].iter().all(u8::is_ascii_digit) {
        year = std::str::from_utf8(&s[at..at + 4]).ok()?.parse().ok()?;
        at += 5;
    }
    let (hour, minute, second, nanosecond, end) = clock(s, at, !strict)?;
    Some((
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanosecond,
        },
        end,
    ))
}

/// `... hh:mm:ss yyyy`: a year after the time (some embedded stacks).
fn trailing_year(s: &[u8], mut c: Civil, len: usize) -> (Civil, usize) {
    if c.year == 0
        && s.get(len) == Some(&b' ')
        && s.get(len + 1..len + 5)
            .is_some_and(|y| y.iter().all(u8::is_ascii_digit))
        && matches!(s.get(len + 5), None | Some(b' '))
    {
        let year = std::str::from_utf8(&s[len + 1..len + 5])
            .ok()
            .and_then(|y| y.parse().ok());
        if let Some(year) = year {
            c.year = year;
            return (c, len + 5);
        }
    }
    (c, len)
}

/// `yyyy Mmm dd hh:mm:ss` (RFC 3164 §5.4 example 4 shape).
fn year_first_bsd_time(s: &[u8]) -> Option<(Civil, usize)> {
    let y = s.get(..4)?;
    if !y.iter().all(u8::is_ascii_digit) || s.get(4) != Some(&b' ') {
        return None;
    }
    let (mut c, len) = bsd_time(&s[5..], false)?;
    if c.year != 0 {
        return None;
    }
    c.year = std::str::from_utf8(y).ok()?.parse().ok()?;
    Some((c, 5 + len))
}

/// RFC 3339 / ISO 8601 in the timestamp position, with or without an offset (without one,
/// the context's zone). Returns the instant and its length.
fn iso_time(s: &[u8], ctx: &Context) -> Option<(Option<Timestamp>, usize)> {
    if s.len() < 19 || s[4] != b'-' || !s[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    let tok = &s[..end];
    // Cisco-style trailing colon belongs to the separator, not the time.
    let tok = tok.strip_suffix(b":").unwrap_or(tok);
    if tok.len() < 19 {
        return None;
    }
    if let Ok((ts, _)) = parse_rfc3339(tok) {
        return Some((Some(ts), tok.len()));
    }
    // No offset: read as local time.
    let year = std::str::from_utf8(&tok[..4]).ok()?.parse().ok()?;
    let month = two_digits(tok, 5)?;
    let day = two_digits(tok, 8)?;
    if tok[7] != b'-' || !matches!(tok[10], b'T' | b't' | b' ') {
        return None;
    }
    let (hour, minute, second, nanosecond, len) = clock(tok, 11, true)?;
    if len != tok.len() {
        return None;
    }
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanosecond,
    };
    Some((ctx.local(c), len))
}

/// A zone abbreviation after the time, as Cisco writes it: ` UTC:`, ` CEST: %LINK-…`. Any 2–5
/// capitals could also be a tag (`AA: msg`, `AA: %`), so a name other than UTC/GMT counts as a
/// zone only when a Cisco mnemonic follows (`%FACILITY-SEVERITY-…`, severity a digit 0–7).
/// Returns its length with the space and whether it names UTC.
fn zone_name(s: &[u8]) -> Option<(usize, bool)> {
    if s.first() != Some(&b' ') {
        return None;
    }
    let n = s[1..]
        .iter()
        .take(6)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    if !(2..=5).contains(&n) || !matches!(s.get(1 + n), None | Some(b':')) {
        return None;
    }
    let is_utc = matches!(&s[1..1 + n], b"UTC" | b"GMT" | b"UT");
    let mnemonic = s.get(2 + n..4 + n) == Some(b" %") && cisco_mnemonic(&s[4 + n..]);
    (is_utc || mnemonic).then_some((1 + n, is_utc))
}

/// Whether `s` (after the `%`) opens a Cisco mnemonic: `FACILITY-SEVERITY-`, the facility in
/// capitals, digits and `_`, the severity one digit 0–7.
fn cisco_mnemonic(s: &[u8]) -> bool {
    let facility = s
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
        .count();
    facility > 0
        && s.get(facility) == Some(&b'-')
        && s.get(facility + 1)
            .is_some_and(|b| (b'0'..=b'7').contains(b))
        && s.get(facility + 2) == Some(&b'-')
}

/// After the timestamp: `[HOSTNAME SP] [TAG] MSG`, split the way rsyslog (and BSD syslogd
/// before it) splits it, since downstream filters and dashboards key on that split:
///
/// - the host name is a run of letters, digits, `.`, `_` and `-` that ends in a letter or
///   digit and is followed by a space, or ends the line (an IPv6 address, which rsyslog
///   cannot take, is a host name too);
/// - the tag is everything up to the first `:` or space — a colon is part of it, a space is
///   not — so `-- MARK --`, `host tag text` and `%ASA-6-302013:` have tags;
/// - the app name is the tag up to `[`, `/` or its end (`postfix/smtpd[9]` → `postfix`, as
///   rsyslog's `programname`), and the process id what the brackets hold.
///
/// Where edgelog departs from rsyslog on purpose, docs/syslog-compatibility.md says why.
fn header_and_message<'a>(m: &mut Message<'a>, s: &'a [u8], mut i: usize, utf8: bool) {
    if m.hostname.is_none()
        && let Some(end) = hostname_end(s, i)
    {
        m.hostname = Some(ascii(&s[i..end]));
        i = (end + 1).min(s.len());
    }
    let rest = &s[i..];
    let len = rest
        .iter()
        .position(|&b| b == b':' || b == b' ')
        .unwrap_or(rest.len());
    match tag(&rest[..len], utf8) {
        Some((app, pid)) => {
            m.app_name = Some(app);
            m.proc_id = pid;
        }
        // A tag with no name in it (`[10.0.0.1]`, a word that starts with a BOM) is rsyslog's
        // `%syslogtag%` with an empty `%programname%`: kept as the field `syslog_tag`, its
        // brackets as the process id, so the message splits as rsyslog's and no byte is lost.
        None if len > 0 => match text(&rest[..len], utf8) {
            Some(t) => {
                m.proc_id = bracketed(&rest[..len], utf8).map(Cow::Borrowed);
                m.fields
                    .push((Cow::Borrowed("syslog_tag"), Value::Str(Cow::Borrowed(t))));
            }
            None => return body(m, s, i, utf8),
        },
        None => {}
    }
    let mut end = i + len;
    if s.get(end) == Some(&b':') {
        end += 1;
    }
    body(m, s, skip_one_space(s, end), utf8);
}

/// Whether a line with neither PRI nor timestamp still has a syslog header: a tag ending in a
/// colon first (`sshd[7]: …`, `%ASA-6-302013: …`), or after a host name (`fw1 sshd: …`).
/// Such a line is split as rsyslog splits it; any other is text, kept whole — where rsyslog
/// would take prose's first word for a host and the second for a tag.
fn tagged(s: &[u8], i: usize) -> bool {
    let colon_tag = |t: &[u8]| t.len() > 1 && t.ends_with(b":") && t[0] != b':';
    let (first, end) = token(s, i);
    colon_tag(first)
        || (hostname_end(s, i) == Some(end) && end < s.len() && colon_tag(token(s, end + 1).0))
}

/// Where a host name that starts at `i` ends (see [`header_and_message`]), if one does.
fn hostname_end(s: &[u8], i: usize) -> Option<usize> {
    let rest = s.get(i..)?;
    let n = rest
        .iter()
        .take(255)
        .take_while(|&&b| CLASS[b as usize] & HOST != 0 && b != b':')
        .count();
    match rest.get(n) {
        None if n > 0 => Some(i + n),
        Some(b' ') if n > 0 && rest[n - 1].is_ascii_alphanumeric() => Some(i + n),
        // `2001:db8::1 ` — an address rsyslog would cut at its first colon.
        Some(b':') => {
            let (tok, end) = token(s, i);
            let addr = std::str::from_utf8(tok).ok()?;
            (end < s.len() && addr.parse::<std::net::Ipv6Addr>().is_ok()).then_some(end)
        }
        _ => None,
    }
}

/// `bytes` as text. `bytes` is cut from the frame at ASCII delimiters (or its ends), so when
/// the whole frame is UTF-8 (`utf8`), `bytes` is too.
fn text(bytes: &[u8], utf8: bool) -> Option<&str> {
    if utf8 {
        // SAFETY: see above: a slice of valid UTF-8 starting and ending next to ASCII bytes
        // (or at the ends) is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// The message text from `i` on.
fn body<'a>(m: &mut Message<'a>, s: &'a [u8], i: usize, utf8: bool) {
    let rest = &s[i.min(s.len())..];
    if let Some(t) = text(rest, utf8).filter(|_| utf8) {
        m.message = Some(Cow::Borrowed(t));
        return;
    }
    let (text, valid) = crate::message::utf8_lossy(rest);
    if !valid {
        let bad = std::str::from_utf8(rest)
            .err()
            .map_or(0, |e| e.valid_up_to());
        m.diagnose(DiagKind::InvalidUtf8, i + bad);
    }
    m.message = Some(text);
}

fn token(s: &[u8], i: usize) -> (&[u8], usize) {
    let rest = s.get(i..).unwrap_or_default();
    // Host names and tags are short and nearly always PRINTUSASCII, which the word-at-a-time
    // scan crosses fastest; anything else it stopped at is walked byte by byte.
    let mut end = crate::message::printusascii_len(rest);
    end += rest[end..]
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(rest.len() - end);
    (&rest[..end], i + end)
}

fn skip_one_space(s: &[u8], i: usize) -> usize {
    if s.get(i) == Some(&b' ') { i + 1 } else { i }
}

/// The app name and process id of a tag (its colon cut off), as rsyslog reads them: the name
/// up to `[`, `/`, or a byte that is not printable ASCII; the id between the first `[` and
/// the `]` after it. A tag that starts with `/` (`/usr/sbin/cron[99]`) keeps its path, where
/// rsyslog would leave no name at all. `None` for an empty name.
fn tag(tok: &[u8], utf8: bool) -> Option<(Cow<'_, str>, Option<Cow<'_, str>>)> {
    let path = tok.first() == Some(&b'/');
    let name_end = tok
        .iter()
        .position(|&b| b == b'[' || (b == b'/' && !path) || !(33..127).contains(&b))
        .unwrap_or(tok.len());
    if name_end == 0 {
        return None;
    }
    let name = text(&tok[..name_end], utf8)?;
    Some((Cow::Borrowed(name), bracketed(tok, utf8).map(Cow::Borrowed)))
}

/// What a tag's first `[` … `]` holds (the process id), if anything.
fn bracketed(tok: &[u8], utf8: bool) -> Option<&str> {
    let open = tok.iter().position(|&b| b == b'[')?;
    let inside = &tok[open + 1..];
    let close = inside
        .iter()
        .position(|&b| b == b']')
        .unwrap_or(inside.len());
    text(&inside[..close], utf8).filter(|p| !p.is_empty())
}

/// Host names and addresses: letters, digits, `.-_` and `:` (IPv6), not ending in `:`.
fn is_hostname(tok: &[u8]) -> bool {
    !tok.is_empty()
        && tok.len() <= 255
        && tok.last() != Some(&b':')
        && tok.iter().all(|&b| CLASS[b as usize] & HOST != 0)
}

/// A host name token as text (`is_hostname` admits ASCII only).
fn ascii(tok: &[u8]) -> Cow<'_, str> {
    if crate::message::is_ascii(tok) {
        // SAFETY: ASCII is UTF-8.
        Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(tok) })
    } else {
        String::from_utf8_lossy(tok)
    }
}

/// Options for [`format`].
#[derive(Debug, Clone)]
pub struct FormatOptions {
    /// The zone timestamps are written in (receivers will assume their own).
    pub zone: TimeZone,
    /// Write the HOSTNAME field; off gives the `/dev/log` local form.
    pub hostname: bool,
    /// Write the `<PRI>`; off gives the line of a traditional log file (`/var/log/syslog`).
    pub pri: bool,
    /// Write the time as RFC 3339 with microseconds and the zone's offset
    /// (`2024-06-15T12:00:00.123456+02:00`), as rsyslog's default file format does, instead
    /// of `Mmm dd hh:mm:ss`.
    pub precise_time: bool,
}

impl Default for FormatOptions {
    fn default() -> FormatOptions {
        FormatOptions {
            zone: TimeZone::UTC,
            hostname: true,
            pri: true,
            precise_time: false,
        }
    }
}

/// Writes `m` as one RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`. Second
/// precision; no year (the format has none). A missing timestamp is written as the epoch.
pub fn format(out: &mut Vec<u8>, m: &Message<'_>, opts: &FormatOptions) {
    if opts.pri {
        out.push(b'<');
        let mut ibuf = itoa::Buffer::new();
        out.extend_from_slice(ibuf.format(m.pri.map_or(13, Pri::as_u8)).as_bytes());
        out.push(b'>');
    }
    let ts = m.timestamp.unwrap_or(Timestamp::EPOCH);
    let zoned = ts.to_jiff().to_zoned(opts.zone.clone());
    if opts.precise_time {
        use std::io::Write as _;
        let _ = write!(out, "{}", zoned.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z"));
    } else {
        bsd_time_of(out, &zoned);
    }
    if let Some(host) = m
        .hostname
        .as_deref()
        .filter(|h| opts.hostname && !h.is_empty())
    {
        out.push(b' ');
        out.extend(
            host.bytes()
                .map(|b| if b > 32 && b < 127 { b } else { b'_' }),
        );
    }
    if let Some(app) = m.app_name.as_deref().filter(|a| !a.is_empty()) {
        out.push(b' ');
        out.extend(app.bytes().map(|b| {
            if b <= 32 || matches!(b, b'[' | b']' | b':') {
                b'_'
            } else {
                b
            }
        }));
        if let Some(pid) = m.proc_id.as_deref().filter(|p| !p.is_empty()) {
            out.push(b'[');
            out.extend(
                pid.bytes()
                    .map(|b| if b <= 32 || b == b']' { b'_' } else { b }),
            );
            out.push(b']');
        }
        out.push(b':');
    }
    if let Some(msg) = m.message.as_deref() {
        out.push(b' ');
        out.extend_from_slice(msg.as_bytes());
    }
}

/// `Mmm dd hh:mm:ss`, the day space-padded.
fn bsd_time_of(out: &mut Vec<u8>, zoned: &jiff::Zoned) {
    out.extend_from_slice(MONTHS[zoned.month() as usize - 1]);
    let day = zoned.day() as u8;
    out.extend_from_slice(&[
        b' ',
        if day < 10 { b' ' } else { b'0' + day / 10 },
        b'0' + day % 10,
        b' ',
    ]);
    for (k, v) in [zoned.hour(), zoned.minute(), zoned.second()]
        .into_iter()
        .enumerate()
    {
        if k > 0 {
            out.push(b':');
        }
        out.extend_from_slice(&[b'0' + v as u8 / 10, b'0' + v as u8 % 10]);
    }
}
