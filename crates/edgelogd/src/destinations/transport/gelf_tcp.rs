//! `gelf_tcp`: GELF over TCP or TLS, each record ended by a NUL byte (Graylog's GELF TCP
//! input). Taken when its batch is written whole.

use edgelog_codec::framing;
use edgelog_queue::Record;

use super::{Dialer, Io, Outcome, Transport, TransportConfig, write_framed};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "gelf_tcp",
    read: |d, s, dirs| {
        crate::destinations::network::read(d, s, dirs, |_, _| TransportConfig::GelfTcp)
    },
};

pub(super) struct GelfTcp {
    dialer: Dialer,
    conn: Option<Box<dyn Io>>,
}

impl GelfTcp {
    pub(super) fn new(dialer: Dialer) -> GelfTcp {
        GelfTcp { dialer, conn: None }
    }
}

impl Transport for GelfTcp {
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
        let r = write_framed(io.as_mut(), batch, |buf, payload| {
            framing::write_delimited(buf, payload, 0);
        })
        .await;
        Outcome::whole(batch, r)
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }
}
