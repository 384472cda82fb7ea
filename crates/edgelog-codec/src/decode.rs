//! Choosing the format of a frame and decoding it.
//!
//! Auto-detection looks at the first bytes only, in an order that cannot misfire on valid
//! input: `{` is GELF; gzip or zlib magic is compressed GELF; `<PRI>` followed by a version
//! number and a space is RFC 5424; `pri,seq,usec,flags;` is kmsg; everything else is read by the
//! BSD parser, which accepts anything (and calls it `raw` when it finds no syslog header).

use std::str::FromStr;

use edgelog_core::Timestamp;

use crate::framing::Frame;
use crate::gelf::compress::{self, Compression};
use crate::message::{DiagKind, Diagnostic, Format, Message, Mode, utf8_lossy};
use crate::rfc3164::Context;
use crate::{gelf, kmsg, rfc3164, rfc5424};

/// Which format to decode frames with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatHint {
    /// Decided per frame.
    #[default]
    Auto,
    Rfc5424,
    Rfc3164,
    Gelf,
    Kmsg,
    /// No syslog header expected: the whole frame is the message (plain log files).
    Raw,
}

impl FromStr for FormatHint {
    type Err = String;

    fn from_str(s: &str) -> Result<FormatHint, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(FormatHint::Auto),
            "rfc5424" | "5424" => Ok(FormatHint::Rfc5424),
            "rfc3164" | "3164" | "bsd" => Ok(FormatHint::Rfc3164),
            "gelf" => Ok(FormatHint::Gelf),
            "kmsg" => Ok(FormatHint::Kmsg),
            "raw" | "text" => Ok(FormatHint::Raw),
            _ => Err(format!(
                "unknown format {s:?}: expected auto, rfc5424, rfc3164, gelf, kmsg or raw"
            )),
        }
    }
}

/// Decodes frames with a fixed configuration.
#[derive(Debug, Clone)]
pub struct Decoder {
    format: FormatHint,
    mode: Mode,
    context: Context,
    boot_time: Option<Timestamp>,
    max_payload: usize,
}

impl Decoder {
    /// The default bound on an inflated GELF payload: 1 MiB.
    pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

    /// A decoder for `format` in `mode`, reading zoneless BSD times with `context`.
    pub fn new(format: FormatHint, mode: Mode, context: Context) -> Decoder {
        Decoder {
            format,
            mode,
            context,
            boot_time: None,
            max_payload: Decoder::DEFAULT_MAX_PAYLOAD,
        }
    }

    /// Sets the boot time that turns kmsg's microseconds since boot into timestamps.
    pub fn with_boot_time(mut self, boot_time: Option<Timestamp>) -> Decoder {
        self.boot_time = boot_time;
        self
    }

    /// Sets the bound on an inflated GELF payload.
    pub fn with_max_payload(mut self, max: usize) -> Decoder {
        self.max_payload = max;
        self
    }

    /// The context for BSD timestamps.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Decodes one frame. Never fails; an empty frame is a `raw` message with an
    /// `empty_frame` problem.
    pub fn decode<'a>(&self, frame: &'a [u8]) -> Message<'a> {
        if frame.is_empty() {
            let mut m = Message::new(Format::Raw);
            m.message = Some("".into());
            self.problem(&mut m, DiagKind::EmptyFrame, 0);
            return m;
        }
        match self.format {
            FormatHint::Rfc5424 => rfc5424::parse(frame, self.mode),
            FormatHint::Rfc3164 => rfc3164::parse(frame, &self.context, self.mode),
            FormatHint::Kmsg => kmsg::parse(frame, self.boot_time, self.mode),
            FormatHint::Gelf => self.gelf(frame),
            FormatHint::Raw => raw(frame),
            FormatHint::Auto => self.auto(frame),
        }
    }

    /// Decodes a frame from a [`Framer`](crate::Framer), adding what the framing found
    /// (truncation, an incomplete tail) as problems.
    pub fn decode_frame<'a>(&self, frame: Frame<'a>) -> Message<'a> {
        let mut m = self.decode(frame.data);
        if frame.truncated {
            self.problem(&mut m, DiagKind::FrameTruncated, frame.data.len());
        }
        if frame.incomplete {
            self.problem(&mut m, DiagKind::FrameIncomplete, frame.data.len());
        }
        m
    }

    fn problem(&self, m: &mut Message<'_>, kind: DiagKind, offset: usize) {
        match self.mode {
            Mode::Strict if m.error.is_none() => m.error = Some(Diagnostic { kind, offset }),
            Mode::Strict => {}
            Mode::Lenient => m.diagnose(kind, offset),
        }
    }

    fn auto<'a>(&self, frame: &'a [u8]) -> Message<'a> {
        match frame[0] {
            b'{' => return self.gelf(frame),
            0x1f | 0x78 if compress::detect(frame) != Compression::None => {
                if let Ok(payload) = compress::decompress(frame, self.max_payload) {
                    return gelf::parse(&payload, self.mode).into_owned();
                }
            }
            b'<' if looks_5424(frame) => return rfc5424::parse(frame, self.mode),
            b'0'..=b'9' if looks_kmsg(frame) => {
                return kmsg::parse(frame, self.boot_time, self.mode);
            }
            _ => {}
        }
        rfc3164::parse(frame, &self.context, self.mode)
    }

    fn gelf<'a>(&self, frame: &'a [u8]) -> Message<'a> {
        match compress::decompress(frame, self.max_payload) {
            Ok(std::borrow::Cow::Borrowed(payload)) => gelf::parse(payload, self.mode),
            Ok(std::borrow::Cow::Owned(payload)) => gelf::parse(&payload, self.mode).into_owned(),
            Err(kind) => {
                let mut m = Message::new(Format::Gelf);
                if self.mode == Mode::Lenient {
                    m.format = Format::Raw;
                    m.message = Some(String::from_utf8_lossy(frame));
                }
                self.problem(&mut m, kind, 0);
                m
            }
        }
    }
}

/// `<PRI>` then a non-zero digit, up to two more digits and a space.
fn looks_5424(frame: &[u8]) -> bool {
    let Some(close) = frame.iter().take(5).position(|&b| b == b'>') else {
        return false;
    };
    let rest = &frame[close + 1..];
    let n = rest
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    n > 0 && rest[0] != b'0' && rest.get(n) == Some(&b' ')
}

/// `digits,digits,digits,` … `;` within the first line.
fn looks_kmsg(frame: &[u8]) -> bool {
    let line = &frame[..memchr::memchr(b'\n', frame).unwrap_or(frame.len())];
    let Some(semi) = memchr::memchr(b';', line) else {
        return false;
    };
    let mut parts = line[..semi].split(|&b| b == b',');
    (0..3).all(|_| {
        parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
    }) && parts.next().is_some()
}

/// The whole frame as the message, invalid UTF-8 repaired (and noted).
fn raw(frame: &[u8]) -> Message<'_> {
    let mut m = Message::new(Format::Raw);
    let (text, valid) = utf8_lossy(frame);
    m.message = Some(text);
    if !valid {
        let at = std::str::from_utf8(frame)
            .err()
            .map_or(0, |e| e.valid_up_to());
        m.diagnose(DiagKind::InvalidUtf8, at);
    }
    m
}
