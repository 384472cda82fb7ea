//! Timestamps: an instant in nanoseconds since the Unix epoch, always UTC.
//!
//! Senders give times in many shapes (RFC 3339 with offsets, BSD `Mmm dd hh:mm:ss` without a
//! year or zone, GELF seconds with a fraction, kernel microseconds since boot). Decoders turn all
//! of them into one instant; the offset the sender used is not kept, and output is written in UTC.
//! An `i64` of nanoseconds covers 1677–2262, which is every time a device will log.
//!
//! The civil-date arithmetic is Howard Hinnant's days-from-civil algorithm: exact, branch-light
//! and allocation-free, so the syslog parsers can build instants without a date library on their
//! hot path. Time zones (for BSD syslog's local times) go through `jiff`.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// An instant with nanosecond precision, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// A broken-down UTC (or local) date and time, validated by [`Timestamp::from_civil`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Civil {
    pub year: i32,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 0–999,999,999.
    pub nanosecond: u32,
}

impl Civil {
    /// Days in `month` (1–12) of `year` (proleptic Gregorian).
    pub const fn days_in_month(year: i32, month: u8) -> u8 {
        days_in_month(year, month)
    }

    /// Whether `year` is a leap year.
    pub const fn is_leap_year(year: i32) -> bool {
        is_leap(year)
    }
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// An instant from nanoseconds since the epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// An instant from seconds and nanoseconds since the epoch; `None` out of range.
    pub const fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        match secs.checked_mul(NANOS_PER_SEC) {
            Some(n) => match n.checked_add(nanos as i64) {
                Some(n) => Some(Timestamp(n)),
                None => None,
            },
            None => None,
        }
    }

    /// Nanoseconds since the epoch.
    pub const fn as_unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (floored).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// The nanosecond part, 0–999,999,999.
    pub const fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_nanos() as i64)
    }

    /// The instant of a UTC civil time, if the date and time are valid and in range.
    /// Leap seconds (`:60`) are refused, as RFC 5424 requires.
    pub fn from_civil(c: Civil) -> Option<Timestamp> {
        // Parsers call this per message: each check is one compare, and February is the only
        // month that needs the leap-year rule.
        if c.month.wrapping_sub(1) >= 12
            || c.day.wrapping_sub(1) >= days_in_month(c.year, c.month)
            || c.hour > 23
            || c.minute > 59
            || c.second > 59
            || c.nanosecond >= NANOS_PER_SEC as u32
        {
            return None;
        }
        let days = days_from_civil(c.year as i64, c.month as u32, c.day as u32);
        let secs =
            days * SECS_PER_DAY + c.hour as i64 * 3600 + c.minute as i64 * 60 + c.second as i64;
        Timestamp::from_unix(secs, c.nanosecond)
    }

    /// This instant as a UTC civil time.
    pub fn to_civil(self) -> Civil {
        let secs = self.unix_seconds();
        let days = secs.div_euclid(SECS_PER_DAY);
        let rem = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year: year as i32,
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            nanosecond: self.subsec_nanos(),
        }
    }

    /// Adds a number of seconds (which may be negative), saturating at the range ends.
    pub const fn add_seconds(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(NANOS_PER_SEC)))
    }

    /// Writes RFC 3339 in UTC with `digits` fraction digits (0–9, truncating), e.g.
    /// `2003-10-11T22:14:15.003Z` for 3 digits.
    pub fn write_rfc3339(self, out: &mut Vec<u8>, digits: u8) {
        let c = self.to_civil();
        let mut buf = [0u8; 32];
        let year = c.year.clamp(0, 9999) as u32;
        put_digits(&mut buf[0..4], year);
        buf[4] = b'-';
        put_digits(&mut buf[5..7], c.month as u32);
        buf[7] = b'-';
        put_digits(&mut buf[8..10], c.day as u32);
        buf[10] = b'T';
        put_digits(&mut buf[11..13], c.hour as u32);
        buf[13] = b':';
        put_digits(&mut buf[14..16], c.minute as u32);
        buf[16] = b':';
        put_digits(&mut buf[17..19], c.second as u32);
        let mut len = 19;
        let digits = digits.min(9) as usize;
        if digits > 0 {
            buf[19] = b'.';
            let mut frac = [0u8; 9];
            put_digits(&mut frac, c.nanosecond);
            buf[20..20 + digits].copy_from_slice(&frac[..digits]);
            len = 20 + digits;
        }
        buf[len] = b'Z';
        out.extend_from_slice(&buf[..=len]);
    }

    /// The fewest fraction digits, in groups of three (ms, µs, ns), that show this instant
    /// exactly: 0, 3, 6 or 9.
    pub fn natural_fraction_digits(self) -> u8 {
        let ns = self.subsec_nanos();
        if ns == 0 {
            0
        } else if ns.is_multiple_of(1_000_000) {
            3
        } else if ns.is_multiple_of(1_000) {
            6
        } else {
            9
        }
    }

    /// Converts to a `jiff` timestamp, for time-zone work and human-friendly parsing.
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_nanosecond(self.0 as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Converts from a `jiff` timestamp; `None` outside 1677–2262.
    pub fn from_jiff(ts: jiff::Timestamp) -> Option<Timestamp> {
        i64::try_from(ts.as_nanosecond()).ok().map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with the natural number of fraction digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(32);
        self.write_rfc3339(&mut out, self.natural_fraction_digits());
        // The writer only emits ASCII digits and punctuation.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    /// Parses RFC 3339 with any offset.
    fn from_str(s: &str) -> Result<Timestamp, Error> {
        let err = || Error::new(ErrorKind::InvalidTimestamp, s);
        let ts: jiff::Timestamp = s.trim().parse().map_err(|_| err())?;
        Timestamp::from_jiff(ts).ok_or_else(err)
    }
}

/// Whether `year` is a Gregorian leap year.
pub(crate) const fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1–12) of `year`.
pub(crate) const fn days_in_month(year: i32, month: u8) -> u8 {
    const DAYS: [u8; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if month == 2 && is_leap(year) {
        29
    } else {
        DAYS[(month - 1) as usize % 12]
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // March-based year, so the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    if y >= 0 {
        // Every year a syslog sender writes: unsigned divisions by constants are multiplies.
        let u = y as u64;
        return (365 * u + u / 4 - u / 100 + u / 400) as i64 + doy - 719_468;
    }
    let era = (y - 399) / 400;
    let yoe = y - era * 400;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe as i64 + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

/// Writes `n` as zero-padded decimal filling `out`.
fn put_digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn civil(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8, ns: u32) -> Civil {
        Civil {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            nanosecond: ns,
        }
    }

    #[test]
    fn rfc_5424_example_instant_formats_with_milliseconds() {
        let ts = Timestamp::from_civil(civil(2003, 10, 11, 22, 14, 15, 3_000_000)).unwrap();
        assert_eq!(ts.to_string(), "2003-10-11T22:14:15.003Z");
        assert_eq!(ts.unix_seconds(), 1_065_910_455);
    }

    #[test]
    fn invalid_dates_and_leap_seconds_are_refused() {
        assert!(Timestamp::from_civil(civil(2023, 2, 29, 0, 0, 0, 0)).is_none());
        assert!(Timestamp::from_civil(civil(2024, 2, 29, 0, 0, 0, 0)).is_some());
        assert!(Timestamp::from_civil(civil(1900, 2, 29, 0, 0, 0, 0)).is_none());
        assert!(Timestamp::from_civil(civil(2000, 2, 29, 0, 0, 0, 0)).is_some());
        assert!(Timestamp::from_civil(civil(2024, 4, 31, 0, 0, 0, 0)).is_none());
        assert!(Timestamp::from_civil(civil(2024, 1, 1, 23, 59, 60, 0)).is_none());
        assert!(Timestamp::from_civil(civil(2024, 13, 1, 0, 0, 0, 0)).is_none());
    }

    #[test]
    fn display_uses_natural_fraction_groups() {
        let base = Timestamp::from_unix(1_700_000_000, 0).unwrap();
        assert_eq!(base.to_string(), "2023-11-14T22:13:20Z");
        let us = Timestamp::from_unix(1_700_000_000, 123_456_000).unwrap();
        assert_eq!(us.to_string(), "2023-11-14T22:13:20.123456Z");
        let ns = Timestamp::from_unix(1_700_000_000, 1).unwrap();
        assert_eq!(ns.to_string(), "2023-11-14T22:13:20.000000001Z");
    }

    #[test]
    fn parses_rfc3339_with_offsets() {
        let ts: Timestamp = "2003-08-24T05:14:15.000003-07:00".parse().unwrap();
        assert_eq!(ts.to_string(), "2003-08-24T12:14:15.000003Z");
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    proptest! {
        #[test]
        fn civil_round_trips(nanos in -5_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            let ts = Timestamp::from_unix_nanos(nanos);
            prop_assert_eq!(Timestamp::from_civil(ts.to_civil()), Some(ts));
        }

        #[test]
        fn display_agrees_with_jiff(nanos in 0i64..9_000_000_000_000_000_000i64) {
            let ts = Timestamp::from_unix_nanos(nanos);
            let ours = ts.to_string();
            let theirs: jiff::Timestamp = ours.parse().unwrap();
            prop_assert_eq!(theirs.as_nanosecond(), nanos as i128);
        }
    }
}
