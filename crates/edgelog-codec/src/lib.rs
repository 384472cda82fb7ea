//! edgelog's wire formats.
//!
//! Every format a device meets on the way in or out: RFC 5424 and RFC 3164 syslog (with the
//! variants real devices send), RFC 6587 stream framing, Linux `/dev/kmsg` records and GELF 1.1
//! (JSON, UDP chunking, compression). Each decoder turns a frame into one [`Message`] and never
//! fails or panics: what does not parse is kept — as the message text in lenient mode, with
//! [`Diagnostic`]s saying what was wrong and where; in strict mode the first violation is the
//! message's `error`. The invariant "N frames in, N messages out" holds for every input.
//!
//! The parsers are hand-written single-pass cursors over bytes and borrow from the frame
//! wherever the wire bytes are the value: they sit on the daemon's ingest path, where allocation
//! per field would be the cost that matters. [`Decoder`] picks the format per frame
//! ([`FormatHint::Auto`]) and is what sources use; the per-format modules are there for callers
//! that know what they read.
//!
//! The JSON shape of a decoded message (the `edgelog decode` contract) is in [`json`].

mod decode;
pub mod escape;
pub mod framing;
pub mod gelf;
pub mod json;
pub mod kmsg;
mod message;
pub mod rfc3164;
pub mod rfc5424;
mod sd;

pub use decode::{Decoder, FormatHint};
pub use framing::{Frame, Framer, Framing};
pub use message::{DiagKind, Diagnostic, Format, MAX_DIAGNOSTICS, Message, Mode, Pri};
pub use sd::{Elements, Params, SdElement, StructuredData};
