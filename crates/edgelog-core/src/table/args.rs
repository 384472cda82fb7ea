//! Typed event arguments, encoded compactly inside a table slot.
//!
//! ```text
//! arg = tag (1 byte) value
//!   0x01 i64  8 bytes LE      0x04 bool 1 byte        0x06 IPv4  4 bytes
//!   0x02 u64  8 bytes LE      0x05 str  u16 LE len + UTF-8 bytes
//!   0x03 f64  8 bytes LE      0x07 IPv6 16 bytes
//! ```
//!
//! The writer encodes into a caller-provided buffer the size of a slot's payload; an argument
//! that does not fit is cut (a string at a character boundary) or left out, and the encoder
//! says so, so the entry is flagged truncated. Nothing ever spills past the buffer. The
//! decoder accepts any bytes: a corrupt payload ends the argument list, it does not panic.

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

use crate::Value;

const I64: u8 = 0x01;
const U64: u8 = 0x02;
const F64: u8 = 0x03;
const BOOL: u8 = 0x04;
const STR: u8 = 0x05;
const IPV4: u8 = 0x06;
const IPV6: u8 = 0x07;

/// One decoded argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(&'a str),
    Ip(IpAddr),
}

impl Arg<'_> {
    /// As a field value (addresses become text).
    pub fn to_value(&self) -> Value<'static> {
        match self {
            Arg::I64(n) => Value::I64(*n),
            Arg::U64(n) => Value::U64(*n),
            Arg::F64(n) => Value::F64(*n),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Str(s) => Value::from(s.to_string()),
            Arg::Ip(ip) => Value::from(ip.to_string()),
        }
    }
}

impl std::fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::I64(n) => write!(f, "{n}"),
            Arg::U64(n) => write!(f, "{n}"),
            Arg::F64(n) => write!(f, "{n}"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Str(s) => f.write_str(s),
            Arg::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Encodes arguments into a fixed buffer. No allocation; never writes past the buffer.
///
/// The buffer may be uninitialised ([`ArgWriter::uninit`]): the hot path encodes into a stack
/// buffer it does not zero first (256 bytes of stores per event otherwise), and only the
/// written prefix is ever read.
#[derive(Debug)]
pub struct ArgWriter<'b> {
    /// Invariant: `buf[..len]` is initialised and `len <= buf.len()`.
    buf: &'b mut [MaybeUninit<u8>],
    len: usize,
    truncated: bool,
}

impl<'b> ArgWriter<'b> {
    /// An encoder filling `buf`.
    #[inline]
    pub fn new(buf: &'b mut [u8]) -> ArgWriter<'b> {
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the writer only ever stores
        // initialised bytes, so `buf` stays initialised for its owner.
        let buf = unsafe { &mut *(ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
        ArgWriter::uninit(buf)
    }

    /// An encoder filling a buffer that need not be initialised.
    #[inline]
    pub fn uninit(buf: &'b mut [MaybeUninit<u8>]) -> ArgWriter<'b> {
        ArgWriter {
            buf,
            len: 0,
            truncated: false,
        }
    }

    /// The encoded bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written (the type's invariant).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }

    /// Whether something did not fit.
    #[inline]
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Copies `bytes` to `at` (in bounds: panics otherwise, as slicing does).
    #[inline(always)]
    fn put(&mut self, at: usize, bytes: &[u8]) {
        let dst = &mut self.buf[at..at + bytes.len()];
        // SAFETY: `dst` and `bytes` have the same length, and a `&mut` and a `&` never overlap;
        // `MaybeUninit<u8>` has the layout of `u8`.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_mut_ptr().cast::<u8>(), bytes.len())
        }
    }

    #[inline]
    fn fixed(&mut self, tag: u8, bytes: &[u8]) {
        let end = self.len + 1 + bytes.len();
        if self.truncated || end > self.buf.len() {
            self.truncated = true;
            return;
        }
        self.buf[self.len].write(tag);
        self.put(self.len + 1, bytes);
        self.len = end;
    }

    #[inline]
    pub fn i64(&mut self, v: i64) {
        self.fixed(I64, &v.to_le_bytes());
    }

    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.fixed(U64, &v.to_le_bytes());
    }

    #[inline]
    pub fn f64(&mut self, v: f64) {
        self.fixed(F64, &v.to_le_bytes());
    }

    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.fixed(BOOL, &[u8::from(v)]);
    }

    #[inline]
    pub fn ip(&mut self, v: IpAddr) {
        match v {
            IpAddr::V4(a) => self.fixed(IPV4, &a.octets()),
            IpAddr::V6(a) => self.fixed(IPV6, &a.octets()),
        }
    }

    /// A string, cut at a character boundary if the buffer is short (and flagged).
    #[inline]
    pub fn str(&mut self, s: &str) {
        let room = self.buf.len().saturating_sub(self.len + 3);
        if self.truncated || self.len + 3 > self.buf.len() {
            self.truncated = true;
            return;
        }
        let mut n = s.len().min(room).min(u16::MAX as usize);
        if n < s.len() {
            self.truncated = true;
            while !s.is_char_boundary(n) {
                n -= 1;
            }
        }
        self.buf[self.len].write(STR);
        self.put(self.len + 1, &(n as u16).to_le_bytes());
        self.put(self.len + 3, &s.as_bytes()[..n]);
        self.len += 3 + n;
    }
}

/// Decodes an argument payload. Stops at the end or at the first malformed argument.
pub fn decode(mut p: &[u8]) -> impl Iterator<Item = Arg<'_>> {
    fn take(rest: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
        rest.get(..n).map(|b| (b, &rest[n..]))
    }
    std::iter::from_fn(move || {
        let (&tag, rest) = p.split_first()?;
        let (arg, rest) = match tag {
            I64 | U64 | F64 => {
                let (b, rest) = take(rest, 8)?;
                let raw: [u8; 8] = b.try_into().ok()?;
                let arg = match tag {
                    I64 => Arg::I64(i64::from_le_bytes(raw)),
                    U64 => Arg::U64(u64::from_le_bytes(raw)),
                    _ => Arg::F64(f64::from_le_bytes(raw)),
                };
                (arg, rest)
            }
            BOOL => {
                let (b, rest) = take(rest, 1)?;
                (Arg::Bool(b[0] != 0), rest)
            }
            STR => {
                let (n, rest) = take(rest, 2)?;
                let n = usize::from(u16::from_le_bytes([n[0], n[1]]));
                let (s, rest) = take(rest, n)?;
                (Arg::Str(std::str::from_utf8(s).ok()?), rest)
            }
            IPV4 => {
                let (b, rest) = take(rest, 4)?;
                (
                    Arg::Ip(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
                    rest,
                )
            }
            IPV6 => {
                let (b, rest) = take(rest, 16)?;
                let raw: [u8; 16] = b.try_into().ok()?;
                (Arg::Ip(IpAddr::V6(Ipv6Addr::from(raw))), rest)
            }
            _ => return None,
        };
        p = rest;
        Some(arg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let mut buf = [0u8; 128];
        let mut w = ArgWriter::new(&mut buf);
        w.i64(-5);
        w.u64(u64::MAX);
        w.f64(2.5);
        w.bool(true);
        w.str("peer up");
        w.ip("10.0.0.1".parse().unwrap());
        w.ip("2001:db8::1".parse().unwrap());
        assert!(!w.truncated());
        let args: Vec<Arg<'_>> = decode(w.as_bytes()).collect();
        assert_eq!(
            args,
            [
                Arg::I64(-5),
                Arg::U64(u64::MAX),
                Arg::F64(2.5),
                Arg::Bool(true),
                Arg::Str("peer up"),
                Arg::Ip("10.0.0.1".parse().unwrap()),
                Arg::Ip("2001:db8::1".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn what_does_not_fit_is_cut_at_a_char_boundary_and_flagged() {
        let mut buf = [0u8; 16];
        let mut w = ArgWriter::new(&mut buf);
        w.u64(1); // 9 bytes
        w.str("héllo"); // 4 bytes of room: "hél" (é is 2 bytes)
        w.u64(2); // no room
        assert!(w.truncated());
        let args: Vec<Arg<'_>> = decode(w.as_bytes()).collect();
        assert_eq!(args, [Arg::U64(1), Arg::Str("hél")]);
        assert!(w.as_bytes().len() <= 16);
    }

    #[test]
    fn a_reused_buffer_of_any_length_and_alignment_encodes_the_same() {
        // Garbage left in the buffer, lengths that are not a multiple of 8, and a start off
        // the word boundary: the bytes are the same as a byte-by-byte encoding would give.
        let encode = |w: &mut ArgWriter<'_>| {
            w.u64(0x0102_0304_0506_0708);
            w.bool(false);
            w.str("peer 10.0.0.2 session state changed to Established");
            w.ip("2001:db8::1".parse().unwrap());
            w.i64(-1);
            w.ip("192.0.2.1".parse().unwrap());
            w.f64(0.5);
        };
        let mut clean = [0u8; 128];
        let mut w = ArgWriter::new(&mut clean);
        encode(&mut w);
        let want = w.as_bytes().to_vec();
        for len in [want.len(), want.len() + 1, 127, 128] {
            for start in 0..8 {
                let mut dirty = [0xa5u8; 136];
                let mut w = ArgWriter::new(&mut dirty[start..start + len]);
                encode(&mut w);
                assert!(!w.truncated(), "{len} {start}");
                assert_eq!(w.as_bytes(), &want[..], "{len} {start}");
            }
        }
        // Cut short anywhere, what was written decodes and is a prefix of the whole.
        for len in 0..want.len() {
            let mut dirty = vec![0x5au8; len];
            let mut w = ArgWriter::new(&mut dirty);
            encode(&mut w);
            assert!(w.truncated());
            let got = w.as_bytes();
            assert!(got.len() <= len);
            let args: Vec<Arg<'_>> = decode(got).collect();
            let whole: Vec<Arg<'_>> = decode(&want).collect();
            for (a, b) in args.iter().zip(&whole) {
                match (a, b) {
                    (Arg::Str(x), Arg::Str(y)) => assert!(y.starts_with(x)),
                    _ => assert_eq!(a, b),
                }
            }
        }
    }

    #[test]
    fn garbage_ends_the_list_without_panicking() {
        assert_eq!(decode(&[STR, 9, 0, b'a']).count(), 0);
        assert_eq!(decode(&[0xff, 1, 2]).count(), 0);
        assert_eq!(
            decode(&[BOOL, 1, I64, 1]).collect::<Vec<_>>(),
            [Arg::Bool(true)]
        );
    }
}
