//! `syslog_tcp`: syslog over TCP or TLS, octet-counted (RFC 6587 §3.4.1, the default) or
//! LF-terminated. A batch goes in one write; it is taken when written whole — the most a
//! plain stream can say.

use edgelog_codec::framing;
use edgelog_queue::Record;

use super::{Dialer, Io, Outcome, Transport, TransportConfig, write_framed};
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

pub(super) struct SyslogTcp {
    dialer: Dialer,
    octet_counting: bool,
    conn: Option<Box<dyn Io>>,
}

impl SyslogTcp {
    pub(super) fn new(dialer: Dialer, octet_counting: bool) -> SyslogTcp {
        SyslogTcp {
            dialer,
            octet_counting,
            conn: None,
        }
    }
}

impl Transport for SyslogTcp {
    async fn connect(&mut self) -> anyhow::Result<()> {
        self.conn = Some(self.dialer.dial().await?);
        Ok(())
    }

    fn connected(&self) -> bool {
        self.conn.is_some()
    }

    async fn send(&mut self, batch: &[Record]) -> Outcome {
        let Some(io) = self.conn.as_mut() else {
            return Outcome::failed(anyhow::anyhow!("not connected"));
        };
        let octet_counting = self.octet_counting;
        let r = write_framed(io.as_mut(), batch, |buf, payload| {
            if octet_counting {
                framing::write_octet_counted(buf, payload);
            } else {
                framing::write_delimited(buf, payload, b'\n');
            }
        })
        .await;
        Outcome::whole(batch, r)
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }
}
