//! `syslog_udp`: one datagram per record (RFC 5426). A record is taken when the kernel took
//! its datagram — UDP can say no more.

use anyhow::Context as _;
use edgelog_queue::Record;
use tokio::net::UdpSocket;

use super::{Outcome, Transport, TransportConfig, udp_socket};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "syslog_udp",
    read: |d, s, dirs| {
        crate::destinations::network::read(d, s, dirs, |_, _| TransportConfig::SyslogUdp)
    },
};

pub(super) struct SyslogUdp {
    address: String,
    sock: Option<UdpSocket>,
}

impl SyslogUdp {
    pub(super) fn new(address: &str) -> SyslogUdp {
        SyslogUdp {
            address: address.to_owned(),
            sock: None,
        }
    }
}

impl Transport for SyslogUdp {
    async fn connect(&mut self) -> anyhow::Result<()> {
        self.sock = Some(udp_socket(&self.address).await?);
        Ok(())
    }

    fn connected(&self) -> bool {
        self.sock.is_some()
    }

    async fn send(&mut self, batch: &[Record]) -> Outcome {
        let Some(sock) = &self.sock else {
            return Outcome::failed(anyhow::anyhow!("not connected"));
        };
        let mut r = Ok(());
        for rec in batch {
            if let Err(e) = sock.send(&rec.payload).await.context("sending a datagram") {
                r = Err(e);
                break;
            }
        }
        Outcome::whole(batch, r)
    }

    fn disconnect(&mut self) {
        self.sock = None;
    }
}
