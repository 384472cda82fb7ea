//! RFC 5424 syslog: a strict and a lenient parser in one pass, and a formatter.
//!
//! ```text
//! SYSLOG-MSG      = HEADER SP STRUCTURED-DATA [SP MSG]
//! HEADER          = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
//! PRI             = "<" PRIVAL ">"            ; PRIVAL 0..191
//! VERSION         = NONZERO-DIGIT 0*2DIGIT    ; this RFC defines 1
//! TIMESTAMP       = NILVALUE / FULL-DATE "T" FULL-TIME     ; RFC 3339, <= 6 fraction digits
//! HOSTNAME        = NILVALUE / 1*255PRINTUSASCII
//! APP-NAME        = NILVALUE / 1*48PRINTUSASCII
//! PROCID          = NILVALUE / 1*128PRINTUSASCII
//! MSGID           = NILVALUE / 1*32PRINTUSASCII
//! STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT
//! SD-ELEMENT      = "[" SD-ID *(SP PARAM-NAME "=" %d34 PARAM-VALUE %d34) "]"
//! SD-ID, PARAM-NAME = 1*32 PRINTUSASCII except '=', SP, ']', %d34
//! PARAM-VALUE     = UTF-8-STRING with '"', '\' and ']' escaped by '\'
//! MSG             = MSG-ANY / BOM MSG-UTF8    ; BOM = %xEF.BB.BF
//! ```
//!
//! One cursor walks the frame once. Every grammar check calls [`Parser::violation`], which in
//! strict mode records the error and stops (leaving later fields empty) and in lenient mode
//! records a diagnostic and goes on with the most useful reading: an over-long field is kept,
//! an invalid timestamp becomes `null`, structured data that does not parse is kept verbatim at
//! the start of the message. Header fields are validated ASCII, so they borrow from the frame;
//! only escaped SD values allocate.

use std::borrow::Cow;

use edgelog_core::{Civil, Timestamp};

use crate::message::{
    DiagKind, Diagnostic, Format, Message, Mode, Pri, printusascii_len, utf8_lossy,
};
use crate::sd::{MAX_SD_NAME, StructuredData};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_PROC_ID: usize = 128;
const MAX_MSG_ID: usize = 32;

/// Byte classes, so each byte of a token costs one table load and one test.
const PRINT: u8 = 1; // PRINTUSASCII, %d33-126
const SD_NAME: u8 = 2; // PRINTUSASCII except '=', ']', '"'
const SD_SPECIAL: u8 = 4; // '"', '\' and ']' inside a PARAM-VALUE
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 33;
    while b <= 126 {
        t[b] = PRINT
            | if b == b'=' as usize || b == b']' as usize || b == b'"' as usize {
                0
            } else {
                SD_NAME
            };
        b += 1;
    }
    t[b'"' as usize] |= SD_SPECIAL;
    t[b'\\' as usize] |= SD_SPECIAL;
    t[b']' as usize] |= SD_SPECIAL;
    t
};

/// Powers of ten for scaling a fraction of `n` digits to nanoseconds.
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Parses one RFC 5424 frame. Never fails; see the module documentation.
///
/// Inlined so that the message is built in the caller's frame: returned from an outlined
/// call it was copied (a few hundred bytes) on every frame.
#[inline]
pub fn parse(frame: &[u8], mode: Mode) -> Message<'_> {
    // Built in place and returned once: the message is a few hundred bytes, and moving it
    // in and out of a parser struct showed up as memmove in profiles.
    let mut m = Message::new(Format::Rfc5424);
    let _ = Parser {
        s: frame,
        i: 0,
        strict: mode == Mode::Strict,
        tail_utf8: false,
        sd_spaces: Vec::new(),
        m: &mut m,
    }
    .run();
    m
}

/// Parsing cannot go on (strict violation, or nothing more to read).
struct Stop;

struct Parser<'a, 'm> {
    s: &'a [u8],
    i: usize,
    strict: bool,
    /// Everything from the structured data on is valid UTF-8 (checked once): SD values and the
    /// message can then borrow without validating each on its own.
    tail_utf8: bool,
    /// Lenient mode: spaces around a parameter's `=` (`[id a= "b"]`, which rsyslog reads),
    /// cut from the structured data kept so it is canonical.
    sd_spaces: Vec<std::ops::Range<usize>>,
    m: &'m mut Message<'a>,
}

impl<'a> Parser<'a, '_> {
    /// A grammar violation: fatal in strict mode, a diagnostic in lenient mode.
    fn violation(&mut self, kind: DiagKind, offset: usize) -> Result<(), Stop> {
        if self.strict {
            // The first violation is the one reported; an inner check may have set it already.
            self.m.error.get_or_insert(Diagnostic { kind, offset });
            Err(Stop)
        } else {
            self.m.diagnose(kind, offset);
            Ok(())
        }
    }

    /// Lenient give-up: the rest of the frame from `from` becomes the message.
    fn rest_as_message(&mut self, from: usize) -> Stop {
        if from < self.s.len() {
            self.message(from);
        }
        Stop
    }

    fn run(&mut self) -> Result<(), Stop> {
        if self.s.is_empty() {
            self.violation(DiagKind::EmptyFrame, 0)?;
            return Err(Stop);
        }
        self.pri()?;
        self.version()?;
        self.sp()?;
        self.timestamp()?;
        self.sp()?;
        self.m.hostname = self.field(MAX_HOSTNAME)?;
        self.sp()?;
        self.m.app_name = self.field(MAX_APP_NAME)?;
        self.sp()?;
        self.m.proc_id = self.field(MAX_PROC_ID)?;
        self.sp()?;
        self.m.msg_id = self.field(MAX_MSG_ID)?;
        self.sp()?;
        self.structured_data()?;
        if self.i == self.s.len() {
            return Ok(());
        }
        if self.s[self.i] == b' ' {
            self.i += 1;
        } else {
            self.violation(DiagKind::MissingSpace, self.i)?;
        }
        self.message(self.i);
        Ok(())
    }

    fn pri(&mut self) -> Result<(), Stop> {
        match parse_pri(self.s) {
            PriParse::Ok(pri, len) => {
                self.m.pri = Some(pri);
                self.i = len;
            }
            PriParse::Missing => self.violation(DiagKind::MissingPri, 0)?,
            PriParse::Invalid(at) => {
                self.violation(DiagKind::InvalidPri, at)?;
                // Skip a bracketed value if there is one, so the header can still be read.
                if let Some(close) = self.s.iter().take(6).position(|&b| b == b'>') {
                    self.i = close + 1;
                }
            }
        }
        Ok(())
    }

    fn version(&mut self) -> Result<(), Stop> {
        let start = self.i;
        let mut v: u16 = 0;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() && self.i - start < 3 {
            v = v * 10 + u16::from(self.s[self.i] - b'0');
            self.i += 1;
        }
        let bad = self.i == start
            || self.s[start] == b'0'
            || self.s.get(self.i).is_some_and(|&b| b != b' ');
        if bad {
            self.violation(DiagKind::InvalidVersion, start)?;
            return Err(self.rest_as_message(start));
        }
        self.m.version = Some(v);
        if v != 1 {
            // The ABNF allows 1–999; later versions are read by version 1's grammar, noted
            // (not refused, in strict mode either).
            self.m.diagnose(DiagKind::UnsupportedVersion, start);
        }
        Ok(())
    }

    /// The SP between two header fields. A frame that ends here is truncated.
    #[inline(always)]
    fn sp(&mut self) -> Result<(), Stop> {
        match self.s.get(self.i) {
            Some(b' ') => {
                self.i += 1;
                Ok(())
            }
            None => {
                self.violation(DiagKind::Truncated, self.i)?;
                Err(Stop)
            }
            Some(_) => {
                self.violation(DiagKind::MissingSpace, self.i)?;
                Err(self.rest_as_message(self.i))
            }
        }
    }

    /// The next token, up to a space or the end. Header tokens are short and nearly always
    /// PRINTUSASCII, which the word-at-a-time scan crosses fastest.
    fn token(&mut self) -> (usize, usize) {
        let start = self.i;
        let mut end = start + printusascii_len(&self.s[start..]);
        end += self.s[end..]
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(self.s.len() - end);
        self.i = end;
        (start, end)
    }

    fn timestamp(&mut self) -> Result<(), Stop> {
        let (start, end) = self.token();
        let tok = &self.s[start..end];
        if tok == b"-" {
            return Ok(());
        }
        match parse_rfc3339(tok) {
            Ok((ts, digits)) => {
                self.m.timestamp = Some(ts);
                if digits > 6 {
                    self.violation(DiagKind::TimestampTooPrecise, start + 26)?;
                }
                // RFC 5424 §6.2.3: "T" and "Z" MUST be upper case (RFC 3339 allows either).
                if self.strict {
                    if tok[10] == b't' {
                        self.violation(DiagKind::InvalidTimestamp, start + 10)?;
                    }
                    if tok.last() == Some(&b'z') {
                        self.violation(DiagKind::InvalidTimestamp, end - 1)?;
                    }
                }
            }
            Err(at) => self.violation(DiagKind::InvalidTimestamp, start + at)?,
        }
        Ok(())
    }

    /// A PRINTUSASCII header field of at most `max` bytes, or the NILVALUE.
    #[inline(always)]
    fn field(&mut self, max: usize) -> Result<Option<Cow<'a, str>>, Stop> {
        let start = self.i;
        let end = start + printusascii_len(&self.s[start..]);
        if end < self.s.len() && self.s[end] != b' ' {
            // A byte outside PRINTUSASCII: the slow path finds the token's real end.
            return self.dirty_field(max);
        }
        self.i = end;
        let tok = &self.s[start..end];
        match tok {
            [] => {
                self.violation(DiagKind::EmptyField, start)?;
                Ok(None)
            }
            b"-" => Ok(None),
            _ => {
                if tok.len() > max {
                    self.violation(DiagKind::FieldTooLong, start + max)?;
                }
                // SAFETY: the loop admitted only PRINTUSASCII bytes, which are ASCII and so UTF-8.
                Ok(Some(Cow::Borrowed(unsafe {
                    std::str::from_utf8_unchecked(tok)
                })))
            }
        }
    }

    #[cold]
    fn dirty_field(&mut self, max: usize) -> Result<Option<Cow<'a, str>>, Stop> {
        let (start, end) = self.token();
        let tok = &self.s[start..end];
        if tok.len() > max {
            self.violation(DiagKind::FieldTooLong, start + max)?;
        }
        let bad = tok
            .iter()
            .position(|&b| CLASS[b as usize] & PRINT == 0)
            .unwrap_or(0);
        self.violation(DiagKind::InvalidCharacter, start + bad)?;
        let (text, valid) = utf8_lossy(tok);
        if !valid {
            self.violation(DiagKind::InvalidUtf8, start + bad)?;
        }
        Ok(Some(text))
    }

    fn structured_data(&mut self) -> Result<(), Stop> {
        let start = self.i;
        match self.s.get(self.i) {
            Some(b'-') => {
                self.i += 1;
                return Ok(());
            }
            Some(b'[') => {}
            _ => {
                self.violation(DiagKind::InvalidStructuredData, start)?;
                return Err(self.rest_as_message(start));
            }
        }
        self.tail_utf8 = crate::message::is_utf8(&self.s[start..]);
        // SD-IDs seen so far, for the uniqueness rule; spills to the heap past eight elements.
        let mut ids: [&[u8]; 8] = [&[]; 8];
        let mut more_ids: Vec<&[u8]> = Vec::new();
        let mut n = 0;
        while self.s.get(self.i) == Some(&b'[') {
            let at = self.i;
            match self.sd_element() {
                Ok(id) => {
                    let seen = ids[..n.min(8)].contains(&id) || more_ids.contains(&id);
                    if seen {
                        self.violation(DiagKind::DuplicateSdId, at + 1)?;
                    }
                    if n < 8 {
                        ids[n] = id;
                    } else {
                        more_ids.push(id);
                    }
                    n += 1;
                }
                Err(at) => {
                    self.sd_spaces.clear();
                    self.violation(DiagKind::InvalidStructuredData, at)?;
                    // Keep the unparsable structured data verbatim, with the message after it.
                    return Err(self.rest_as_message(start));
                }
            }
        }
        let span = &self.s[start..self.i];
        let raw = if !self.sd_spaces.is_empty() {
            let mut kept = Vec::with_capacity(span.len());
            let mut from = start;
            for cut in std::mem::take(&mut self.sd_spaces) {
                kept.extend_from_slice(&self.s[from..cut.start]);
                from = cut.end;
            }
            kept.extend_from_slice(&self.s[from..self.i]);
            Cow::Owned(String::from_utf8_lossy(&kept).into_owned())
        } else if self.tail_utf8 {
            // SAFETY: `span` is a prefix of the tail validated above, ending after an ASCII ']'.
            Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(span) })
        } else {
            // Lenient mode admitted invalid UTF-8 in a value (and said so): replace it.
            String::from_utf8_lossy(span)
        };
        self.m.structured_data = Some(StructuredData::from_checked(raw));
        Ok(())
    }

    /// Checks one `[id name="value" …]` and returns its id; on a grammar error, the offset of
    /// the offending byte. Value-level problems that do not break the framing (invalid UTF-8,
    /// an unescaped `]`) are violations, and in lenient mode the element is kept.
    fn sd_element(&mut self) -> Result<&'a [u8], usize> {
        self.i += 1; // '['
        let id = self.sd_name()?;
        loop {
            match self.s.get(self.i) {
                Some(b']') => {
                    self.i += 1;
                    return Ok(id);
                }
                Some(b' ') => self.i += 1,
                _ => return Err(self.i),
            }
            self.sd_name()?;
            self.sd_spaces_around_equals();
            if self.s.get(self.i) != Some(&b'=') {
                return Err(self.i);
            }
            self.i += 1;
            self.sd_spaces_around_equals();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.i);
            }
            self.i += 1;
            self.sd_value()?;
        }
    }

    /// Lenient mode: skips spaces before or after a parameter's `=` when the `=` or the
    /// opening quote follows them, noting them to cut and saying so.
    fn sd_spaces_around_equals(&mut self) {
        if self.strict {
            return;
        }
        let start = self.i;
        let n = self.s[start..].iter().take_while(|&&b| b == b' ').count();
        if n > 0 && matches!(self.s.get(start + n), Some(b'=' | b'"')) {
            self.m.diagnose(DiagKind::InvalidStructuredData, start);
            self.sd_spaces.push(start..start + n);
            self.i += n;
        }
    }

    fn sd_name(&mut self) -> Result<&'a [u8], usize> {
        let start = self.i;
        let rest = &self.s[start..];
        self.i += rest
            .iter()
            .position(|&b| CLASS[b as usize] & SD_NAME == 0)
            .unwrap_or(rest.len());
        let len = self.i - start;
        if len == 0 {
            return Err(start);
        }
        if len > MAX_SD_NAME {
            if self.strict {
                return Err(start + MAX_SD_NAME);
            }
            self.m.diagnose(DiagKind::FieldTooLong, start + MAX_SD_NAME);
        }
        Ok(&self.s[start..self.i])
    }

    /// Checks a PARAM-VALUE after its opening quote, through its closing quote.
    fn sd_value(&mut self) -> Result<(), usize> {
        let start = self.i;
        loop {
            // Values are short: a table scan beats memchr3's setup.
            let Some(n) = self.s[self.i..]
                .iter()
                .position(|&b| CLASS[b as usize] & SD_SPECIAL != 0)
            else {
                return Err(self.s.len());
            };
            let at = self.i + n;
            match self.s[at] {
                b'"' => {
                    self.i = at + 1;
                    if !self.tail_utf8
                        && let Err(e) = std::str::from_utf8(&self.s[start..at])
                    {
                        self.value_violation(DiagKind::InvalidUtf8, start + e.valid_up_to())?;
                    }
                    return Ok(());
                }
                // RFC 5424 requires ']' escaped inside a value; a lone one is unambiguous
                // here (we are inside quotes), so lenient mode keeps it.
                b']' => {
                    self.value_violation(DiagKind::InvalidStructuredData, at)?;
                    self.i = at + 1;
                }
                // A backslash escapes '"', '\' and ']'; before anything else it is literal,
                // and either way the byte after it cannot end the value.
                _ => {
                    if at + 1 >= self.s.len() {
                        return Err(self.s.len());
                    }
                    self.i = at + 2;
                }
            }
        }
    }

    /// A violation inside a value: in strict mode it is the error and ends the element.
    fn value_violation(&mut self, kind: DiagKind, offset: usize) -> Result<(), usize> {
        if self.strict {
            self.m.error.get_or_insert(Diagnostic { kind, offset });
            return Err(offset);
        }
        self.m.diagnose(kind, offset);
        Ok(())
    }

    fn message(&mut self, from: usize) {
        let mut body = &self.s[from..];
        let bom = body.starts_with(BOM);
        if bom {
            body = &body[BOM.len()..];
        }
        if self.tail_utf8 {
            // SAFETY: the frame from the structured data on (which includes `body`, cut after
            // an ASCII space and a whole BOM) was validated as UTF-8.
            self.m.message = Some(Cow::Borrowed(unsafe {
                std::str::from_utf8_unchecked(body)
            }));
            self.i = self.s.len();
            return;
        }
        let (text, valid) = utf8_lossy(body);
        if !valid {
            // MSG-UTF8 (after a BOM) must be UTF-8; MSG-ANY may be any octets, but we carry
            // text, so lenient mode reports the replacement either way.
            let body_at = from + if bom { BOM.len() } else { 0 };
            let at = body_at
                + std::str::from_utf8(body)
                    .err()
                    .map_or(0, |e| e.valid_up_to());
            if self.strict && bom {
                self.m.error = Some(Diagnostic {
                    kind: DiagKind::InvalidUtf8,
                    offset: at,
                });
            } else if !self.strict {
                self.m.diagnose(DiagKind::InvalidUtf8, at);
            }
        }
        self.m.message = Some(text);
        self.i = self.s.len();
    }
}

/// The result of reading a `<PRI>`.
pub(crate) enum PriParse {
    /// The priority and the length of `<…>`.
    Ok(Pri, usize),
    /// The frame does not start with `<`.
    Missing,
    /// A `<` without a valid PRIVAL; the offset of the problem.
    Invalid(usize),
}

/// Reads `<PRIVAL>` (1–3 digits, 0–191) at the start of `s`.
pub(crate) fn parse_pri(s: &[u8]) -> PriParse {
    if s.first() != Some(&b'<') {
        return PriParse::Missing;
    }
    let mut v: u32 = 0;
    let mut i = 1;
    while i < s.len() && i <= 3 && s[i].is_ascii_digit() {
        v = v * 10 + u32::from(s[i] - b'0');
        i += 1;
    }
    if i == 1 || s.get(i) != Some(&b'>') {
        return PriParse::Invalid(i);
    }
    match u8::try_from(v).ok().and_then(Pri::from_u8) {
        Some(pri) => PriParse::Ok(pri, i + 1),
        None => PriParse::Invalid(1),
    }
}

/// Reads `n` ASCII digits at `s[at..]`.
#[inline]
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Two ASCII digits as a number.
#[inline(always)]
fn two(a: u8, b: u8) -> Option<u32> {
    let (x, y) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    if x < 10 && y < 10 {
        Some(u32::from(x) * 10 + u32::from(y))
    } else {
        None
    }
}

/// Parses an RFC 3339 `date-time` filling all of `s`. Returns the instant and the number of
/// fraction digits (up to 9 are used; more are read and ignored), or the offset of the first
/// bad byte.
///
/// The fixed-width head (`YYYY-MM-DDTHH:MM:SS`) is checked in one straight-line pass; anything
/// irregular goes to the byte-by-byte parser, which also finds the offset of the error.
pub(crate) fn parse_rfc3339(s: &[u8]) -> Result<(Timestamp, usize), usize> {
    match parse_rfc3339_fast(s) {
        Some(ok) => Ok(ok),
        None => parse_rfc3339_exact(s),
    }
}

#[inline]
fn parse_rfc3339_fast(s: &[u8]) -> Option<(Timestamp, usize)> {
    let h: &[u8; 19] = s.get(..19)?.try_into().ok()?;
    if h[4] != b'-' || h[7] != b'-' || h[10] | 0x20 != b't' || h[13] != b':' || h[16] != b':' {
        return None;
    }
    let year = two(h[0], h[1])? * 100 + two(h[2], h[3])?;
    let (month, day) = (two(h[5], h[6])?, two(h[8], h[9])?);
    let (hour, minute, second) = (two(h[11], h[12])?, two(h[14], h[15])?, two(h[17], h[18])?);
    let mut i = 19;
    let mut nanos = 0u32;
    let mut digits = 0usize;
    if s.get(i) == Some(&b'.') {
        i += 1;
        while let Some(d) = s.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d < 10) {
            if digits < 9 {
                nanos = nanos * 10 + u32::from(d);
            }
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        nanos *= POW10[9 - digits.min(9)];
    }
    let offset = match s.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), a, b, b':', c, d] => {
            let (oh, om) = (two(*a, *b)?, two(*c, *d)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    Some((
        instant([year, month, day, hour, minute, second], nanos, offset)?,
        digits,
    ))
}

/// The instant of an RFC 3339 date and time (`[year, month, day, hour, minute, second]`) that
/// is `offset` seconds east of UTC; `None` for an impossible date or time.
fn instant(ymdhms: [u32; 6], nanosecond: u32, offset: i64) -> Option<Timestamp> {
    let [year, month, day, hour, minute, second] = ymdhms;
    let civil = Civil {
        year: year as i32,
        month: month as u8,
        day: day as u8,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        nanosecond,
    };
    Some(Timestamp::from_civil(civil)?.add_seconds(-offset))
}

fn parse_rfc3339_exact(s: &[u8]) -> Result<(Timestamp, usize), usize> {
    let year = digits(s, 0, 4).ok_or(0usize)?;
    let sep = |at: usize, c: u8| {
        if s.get(at) == Some(&c) {
            Ok(())
        } else {
            Err(at)
        }
    };
    sep(4, b'-')?;
    let month = digits(s, 5, 2).ok_or(5usize)?;
    sep(7, b'-')?;
    let day = digits(s, 8, 2).ok_or(8usize)?;
    if !matches!(s.get(10), Some(b'T' | b't')) {
        return Err(10);
    }
    let hour = digits(s, 11, 2).ok_or(11usize)?;
    sep(13, b':')?;
    let minute = digits(s, 14, 2).ok_or(14usize)?;
    sep(16, b':')?;
    let second = digits(s, 17, 2).ok_or(17usize)?;
    let mut i = 19;
    let mut nanos = 0u32;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&b) = s.get(i) {
            if !b.is_ascii_digit() {
                break;
            }
            if frac_digits < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
            }
            frac_digits += 1;
            i += 1;
        }
        if frac_digits == 0 {
            return Err(i);
        }
        for _ in frac_digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match s.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(s, i + 1, 2).ok_or(i + 1)?;
            sep(i + 3, b':')?;
            let om = digits(s, i + 4, 2).ok_or(i + 4)?;
            if oh > 23 || om > 59 {
                return Err(i + 1);
            }
            i += 6;
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(i),
    };
    if i != s.len() {
        return Err(i);
    }
    let ts = instant([year, month, day, hour, minute, second], nanos, offset_secs).ok_or(0usize)?;
    Ok((ts, frac_digits))
}

/// Options for [`format`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FormatOptions {
    /// Start a non-empty MSG with the UTF-8 BOM, as RFC 5424 §6.4 recommends. Off by default:
    /// most receivers show the BOM bytes instead of removing them.
    pub bom: bool,
}

/// Writes `m` as one RFC 5424 message (no framing). Fields are made to fit the grammar:
/// bytes outside PRINTUSASCII become `_`, over-long fields are cut, an empty field becomes `-`,
/// structured data is written as it is held (always grammatical). A missing PRI is written as 13
/// (user.notice), a missing timestamp as `-`. Times are UTC with up to six fraction digits.
pub fn format(out: &mut Vec<u8>, m: &Message<'_>, opts: FormatOptions) {
    format_with(out, m, opts, None);
}

/// Like [`format`], with `extra` elements written after the message's own structured data —
/// how a relay adds what it knows (its origin, device facts) without copying the message.
pub fn format_with(
    out: &mut Vec<u8>,
    m: &Message<'_>,
    opts: FormatOptions,
    extra: Option<&StructuredData<'_>>,
) {
    out.push(b'<');
    let mut ibuf = itoa::Buffer::new();
    out.extend_from_slice(ibuf.format(m.pri.map_or(13, Pri::as_u8)).as_bytes());
    out.extend_from_slice(b">1 ");
    match m.timestamp {
        Some(ts) => ts.write_rfc3339(out, ts.natural_fraction_digits().min(6)),
        None => out.push(b'-'),
    }
    for (field, max) in [
        (&m.hostname, MAX_HOSTNAME),
        (&m.app_name, MAX_APP_NAME),
        (&m.proc_id, MAX_PROC_ID),
        (&m.msg_id, MAX_MSG_ID),
    ] {
        out.push(b' ');
        write_token(out, field.as_deref().unwrap_or(""), max);
    }
    out.push(b' ');
    match (&m.structured_data, extra) {
        (None, None) => out.push(b'-'),
        (sd, extra) => {
            for sd in [sd.as_ref(), extra].into_iter().flatten() {
                out.extend_from_slice(sd.as_wire().as_bytes());
            }
        }
    }
    if let Some(msg) = m.message.as_deref().filter(|s| !s.is_empty()) {
        out.push(b' ');
        if opts.bom {
            out.extend_from_slice(BOM);
        }
        out.extend_from_slice(msg.as_bytes());
    }
}

/// Writes a header token: PRINTUSASCII only (others become `_`), at most `max` bytes, `-` in
/// place of an empty string.
fn write_token(out: &mut Vec<u8>, s: &str, max: usize) {
    if s.is_empty() {
        out.push(b'-');
        return;
    }
    let bytes = &s.as_bytes()[..s.len().min(max)];
    if bytes.iter().all(|&b| CLASS[b as usize] & PRINT != 0) {
        out.extend_from_slice(bytes);
    } else {
        out.extend(bytes.iter().map(|&b| {
            if CLASS[b as usize] & PRINT != 0 {
                b
            } else {
                b'_'
            }
        }));
    }
}
