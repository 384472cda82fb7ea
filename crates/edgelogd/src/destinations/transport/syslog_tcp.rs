//! `syslog_tcp`: syslog over TCP or TLS, octet-counted (RFC 6587 §3.4.1, the default) or
//! LF-terminated. A batch goes in one write; it is taken when written whole — the most a
//! plain stream can say.

use super::{Dialer, Framing, Stream, TransportConfig};
use crate::config::reader::{self, Diagnostics, Section};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "syslog_tcp",
    read: |d, s, dirs| crate::destinations::network::read(d, s, dirs, read),
};

/// `framing = "octet-counting"` (the default) or `"lf"`.
fn read(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> TransportConfig {
    let framing = s.value(d, "framing", reader::one_of(&["octet-counting", "lf"]));
    let octet_counting = framing.is_none_or(|f| f == "octet-counting");
    TransportConfig::SyslogTcp { octet_counting }
}

/// The stream transport with syslog's framing.
pub(super) fn stream(dialer: Dialer, octet_counting: bool) -> Stream {
    let framing = if octet_counting {
        Framing::OctetCounted
    } else {
        Framing::Delimited(b'\n')
    };
    Stream::new(dialer, framing)
}
