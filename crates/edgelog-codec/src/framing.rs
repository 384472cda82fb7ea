//! RFC 6587 framing for syslog over streams (TCP, TLS, pipes), and NUL framing for GELF.
//!
//! ```text
//! octet counting:      MSG-LEN SP SYSLOG-MSG        MSG-LEN = NONZERO-DIGIT *DIGIT
//!                      "67 <34>1 2003-10-11T22:14:15.003Z host su - ID47 - 'su root' failed"
//! non-transparent:     SYSLOG-MSG TRAILER           TRAILER = LF | CRLF | NUL
//! ```
//!
//! [`Framer`] is a streaming splitter over a caller-owned buffer: it borrows the buffer, says
//! how many bytes it consumed and hands out at most one frame per call, so a socket reader can
//! keep one growable buffer and no frame is ever copied. In [`Framing::Auto`] each frame is
//! classified on its own: digits, a space and then `<` (syslog) or `{` (GELF) mean octet counting;
//! anything else runs to the next LF or NUL. This lets one listener accept both, frame by frame,
//! as rsyslog does. Many senders end an octet-counted frame with a LF anyway; in auto mode a LF
//! right after a counted frame is taken as its trailer, not as an empty frame.
//!
//! Frames are bounded by `max_frame`. An oversize frame is cut at the limit and flagged
//! [`Frame::truncated`]; the framer then discards the rest of it (the counted length, or up to
//! the next trailer) and resynchronises on the following frame. The number of discarded bytes is
//! counted in [`Framer::discarded_bytes`]. Memory is therefore bounded by `max_frame` whatever
//! the sender does. At end of stream, an unterminated tail is a frame of its own, and a
//! counted frame cut short by the end is flagged [`Frame::incomplete`]: nothing is skipped.

use std::fmt;
use std::str::FromStr;

/// How a byte stream is split into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Octet counting or non-transparent, decided per frame.
    #[default]
    Auto,
    /// Non-transparent, LF-terminated (a CR before the LF is removed).
    Lf,
    /// NUL-terminated (GELF over TCP).
    Nul,
    /// Octet counting only.
    OctetCounting,
}

impl Framing {
    /// The name used on the command line and in configs.
    pub const fn name(self) -> &'static str {
        match self {
            Framing::Auto => "auto",
            Framing::Lf => "lf",
            Framing::Nul => "nul",
            Framing::OctetCounting => "octet-counting",
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Framing, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Framing::Auto),
            "lf" | "newline" | "non-transparent" => Ok(Framing::Lf),
            "nul" | "null" => Ok(Framing::Nul),
            "octet-counting" | "octet_counting" | "octet-counted" => Ok(Framing::OctetCounting),
            _ => Err(format!(
                "unknown framing {s:?}: expected auto, lf, nul or octet-counting"
            )),
        }
    }
}

/// One frame, borrowed from the buffer given to [`Framer::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's bytes, without length prefix or trailer.
    pub data: &'a [u8],
    /// The frame was octet-counted.
    pub octet_counted: bool,
    /// The frame exceeded the maximum and was cut; the rest is discarded.
    pub truncated: bool,
    /// The stream ended before the counted length arrived.
    pub incomplete: bool,
}

/// What the framer is throwing away after an oversize frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// The rest of an octet-counted frame.
    Bytes(usize),
    /// Everything up to the next trailer.
    ToTrailer,
}

/// The streaming splitter. See the module documentation.
#[derive(Debug, Clone)]
pub struct Framer {
    framing: Framing,
    max_frame: usize,
    skip: Skip,
    discarded: u64,
    /// The last frame was octet-counted: in auto mode a LF right after it is its trailer.
    after_counted: bool,
}

impl Framer {
    /// The default maximum frame: 64 KiB, rsyslog's default `maxMessageSize` is 8 KiB and GELF
    /// payloads are commonly larger.
    pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

    /// A framer with the given framing and maximum frame size (at least 1).
    pub fn new(framing: Framing, max_frame: usize) -> Framer {
        Framer {
            framing,
            max_frame: max_frame.max(1),
            skip: Skip::None,
            discarded: 0,
            after_counted: false,
        }
    }

    /// Bytes thrown away from oversize frames so far.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// The maximum frame size.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Takes the next frame from the front of `buf`. Returns how many bytes of `buf` are
    /// consumed (the caller drops them) and the frame, if one is complete. `(0, None)` means
    /// more input is needed; `eof` says no more will come, which turns a pending tail into a
    /// last frame.
    pub fn next_frame<'a>(&mut self, buf: &'a [u8], eof: bool) -> (usize, Option<Frame<'a>>) {
        let mut consumed = 0;
        // Finish discarding an oversize frame first.
        match self.skip {
            Skip::None => {}
            Skip::Bytes(n) => {
                let k = n.min(buf.len());
                self.discarded += k as u64;
                consumed = k;
                self.skip = if k == n {
                    Skip::None
                } else {
                    Skip::Bytes(n - k)
                };
                if self.skip != Skip::None {
                    return (consumed, None);
                }
            }
            Skip::ToTrailer => match self.find_trailer(buf) {
                Some(t) => {
                    self.discarded += t as u64;
                    consumed = t + 1;
                    self.skip = Skip::None;
                }
                None => {
                    self.discarded += buf.len() as u64;
                    return (buf.len(), None);
                }
            },
        }
        let mut rest = &buf[consumed..];
        if rest.is_empty() {
            return (consumed, None);
        }
        // Many senders end an octet-counted frame with a LF anyway (`len SP msg LF`); in auto
        // mode that LF belongs to the frame before, it is not an empty frame of its own.
        if std::mem::take(&mut self.after_counted)
            && self.framing == Framing::Auto
            && let Some(lf) = rest.strip_prefix(b"\n")
        {
            consumed += 1;
            rest = lf;
            if rest.is_empty() {
                return (consumed, None);
            }
        }
        let (n, frame) = match self.framing {
            Framing::OctetCounting => self.counted(rest, eof),
            Framing::Auto if looks_counted(rest) => self.counted(rest, eof),
            _ => self.delimited(rest, eof),
        };
        self.after_counted = frame.is_some_and(|f| f.octet_counted);
        (consumed + n, frame)
    }

    fn find_trailer(&self, buf: &[u8]) -> Option<usize> {
        match self.framing {
            Framing::Lf => memchr::memchr(b'\n', buf),
            Framing::Nul => memchr::memchr(0, buf),
            // Octet counting resynchronises on LF, the only trailer a confused sender would use.
            Framing::OctetCounting => memchr::memchr(b'\n', buf),
            Framing::Auto => memchr::memchr2(b'\n', 0, buf),
        }
    }

    fn delimited<'a>(&mut self, buf: &'a [u8], eof: bool) -> (usize, Option<Frame<'a>>) {
        let limit = buf.len().min(self.max_frame + 1);
        match self.find_trailer(&buf[..limit]) {
            Some(t) => {
                let mut data = &buf[..t];
                if buf[t] == b'\n' {
                    data = data.strip_suffix(b"\r").unwrap_or(data);
                }
                (t + 1, Some(plain(data)))
            }
            None if buf.len() > self.max_frame => {
                self.skip = Skip::ToTrailer;
                let frame = Frame {
                    truncated: true,
                    ..plain(&buf[..self.max_frame])
                };
                (self.max_frame, Some(frame))
            }
            None if eof => {
                let data = buf.strip_suffix(b"\r").unwrap_or(buf);
                (buf.len(), Some(plain(data)))
            }
            None => (0, None),
        }
    }

    fn counted<'a>(&mut self, buf: &'a [u8], eof: bool) -> (usize, Option<Frame<'a>>) {
        let digits = buf
            .iter()
            .take(11)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let len = std::str::from_utf8(&buf[..digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok());
        let (Some(len), Some(b' ')) = (len, buf.get(digits)) else {
            // Not a length prefix after all (explicit octet-counting framing, or a short read).
            if digits == buf.len() && !eof && digits < 11 {
                return (0, None);
            }
            return self.delimited(buf, eof);
        };
        let start = digits + 1;
        let take = len.min(self.max_frame);
        if buf.len() >= start + take {
            let data = &buf[start..start + take];
            if len > self.max_frame {
                self.skip = Skip::Bytes(len - take);
                let frame = Frame {
                    truncated: true,
                    octet_counted: true,
                    ..plain(data)
                };
                return (start + take, Some(frame));
            }
            return (
                start + take,
                Some(Frame {
                    octet_counted: true,
                    ..plain(data)
                }),
            );
        }
        if eof {
            let frame = Frame {
                octet_counted: true,
                incomplete: true,
                ..plain(&buf[start..])
            };
            return (buf.len(), Some(frame));
        }
        (0, None)
    }
}

fn plain(data: &[u8]) -> Frame<'_> {
    Frame {
        data,
        octet_counted: false,
        truncated: false,
        incomplete: false,
    }
}

/// Whether a frame starts with an RFC 6587 length: `[1-9][0-9]* SP` then `<` or `{`.
/// A short buffer that could still become one counts as one (the framer then waits).
fn looks_counted(buf: &[u8]) -> bool {
    if !matches!(buf.first(), Some(b'1'..=b'9')) {
        return false;
    }
    let digits = buf
        .iter()
        .take(11)
        .take_while(|b| b.is_ascii_digit())
        .count();
    match (buf.get(digits), buf.get(digits + 1)) {
        (Some(b' '), Some(b'<' | b'{')) => true,
        (None, _) | (Some(b' '), None) => digits < 11,
        _ => false,
    }
}

/// Appends `msg` with an octet-counting prefix.
pub fn write_octet_counted(out: &mut Vec<u8>, msg: &[u8]) {
    let mut ibuf = itoa::Buffer::new();
    out.extend_from_slice(ibuf.format(msg.len()).as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// Appends `msg` and a trailer (`b'\n'` or `0`). A trailer byte inside `msg` would split it,
/// so LFs become spaces and NULs are removed.
pub fn write_delimited(out: &mut Vec<u8>, msg: &[u8], trailer: u8) {
    if memchr::memchr(trailer, msg).is_none() {
        out.extend_from_slice(msg);
    } else if trailer == b'\n' {
        out.extend(msg.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
    } else {
        out.extend(msg.iter().copied().filter(|&b| b != trailer));
    }
    out.push(trailer);
}
