//! `gelf_tcp`: GELF over TCP or TLS, each record ended by a NUL byte (Graylog's GELF TCP
//! input). Taken when its batch is written whole.

use super::{Dialer, Framing, Stream, TransportConfig};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "gelf_tcp",
    read: |d, s, dirs| {
        crate::destinations::network::read(d, s, dirs, |_, _| TransportConfig::GelfTcp)
    },
};

/// The stream transport with GELF's framing: each record ended by a NUL byte.
pub(super) fn stream(dialer: Dialer) -> Stream {
    Stream::new(dialer, Framing::Delimited(0))
}
