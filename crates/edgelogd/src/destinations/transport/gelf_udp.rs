//! `gelf_udp`: GELF datagrams, zlib-compressed unless `compress = false`, chunked (GELF's
//! chunking: a 12-byte header, at most 128 chunks) when larger than `chunk_size`. A record too
//! large for 128 chunks goes cut to what fits rather than blocking the queue for ever. Taken
//! when the kernel took its chunks.

use std::borrow::Cow;

use anyhow::{Context as _, anyhow};
use edgelog_codec::gelf::chunk::{self, IdGenerator};
use edgelog_codec::gelf::compress;
use edgelog_queue::Record;
use tokio::net::UdpSocket;

use super::{Outcome, Transport, TransportConfig, udp_socket};
use crate::config::reader::{self, Diagnostics, Section};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "gelf_udp",
    read: |d, s, dirs| crate::destinations::network::read(d, s, dirs, read),
};

/// `chunk_size` (1420 by default, to fit an Ethernet MTU) and `compress` (zlib, on by default).
fn read(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> TransportConfig {
    let chunk_size = s
        .value(d, "chunk_size", reader::count(512..=65_000))
        .map_or(1420, |n| n as usize);
    let compress = s.value(d, "compress", reader::boolean).unwrap_or(true);
    TransportConfig::GelfUdp {
        chunk_size,
        compress,
    }
}

pub(super) struct GelfUdp {
    address: String,
    chunk_size: usize,
    compress: bool,
    /// GELF chunk ids.
    ids: IdGenerator,
    sock: Option<UdpSocket>,
}

impl GelfUdp {
    pub(super) fn new(address: &str, chunk_size: usize, compress: bool) -> GelfUdp {
        GelfUdp {
            address: address.to_owned(),
            chunk_size,
            compress,
            ids: IdGenerator::default(),
            sock: None,
        }
    }

    async fn datagrams(&mut self, batch: &[Record]) -> anyhow::Result<()> {
        let sock = self.sock.as_ref().ok_or_else(|| anyhow!("not connected"))?;
        for rec in batch {
            let payload: Cow<'_, [u8]> = if self.compress {
                compress::zlib(&rec.payload).into()
            } else {
                (&rec.payload[..]).into()
            };
            let id = self.ids.next_id();
            let chunks = chunk::split(&payload, self.chunk_size, id).or_else(|_| {
                let room = (self.chunk_size - chunk::HEADER_LEN) * chunk::MAX_CHUNKS;
                chunk::split(&payload[..room.min(payload.len())], self.chunk_size, id)
            });
            for c in chunks.map_err(|e| anyhow!("{e}"))? {
                sock.send(&c).await.context("sending a datagram")?;
            }
        }
        Ok(())
    }
}

impl Transport for GelfUdp {
    async fn connect(&mut self) -> anyhow::Result<()> {
        self.sock = Some(udp_socket(&self.address).await?);
        Ok(())
    }

    fn connected(&self) -> bool {
        self.sock.is_some()
    }

    async fn send(&mut self, batch: &[Record]) -> Outcome {
        let r = self.datagrams(batch).await;
        Outcome::whole(batch, r)
    }

    fn disconnect(&mut self) {
        self.sock = None;
    }
}
