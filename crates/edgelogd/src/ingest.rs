//! The part every source shares: decode a frame, count it, batch it, hand batches on.
//!
//! A source reads bytes its own way (datagrams, a stream, a file, a table) and gives each
//! frame to its [`Ingest`], which decodes it leniently — a frame that breaks its grammar is
//! kept raw with diagnostics and counted as malformed, never dropped — fills what the sender
//! left out (the arrival time, the app name the source is configured with, the peer's address
//! as host), and appends the event to a batch. The source flushes the batch when its read
//! burst ends or the batch is full; the flush waits when the router is behind, which is how
//! back-pressure reaches a stream source (it stops reading) and a datagram source (the socket
//! buffer fills, and the kernel's drops are the sender's to see).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use edgelog_codec::gelf::compress::{self, Compression};
use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Frame, Framer, Message, Mode};
use edgelog_core::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::mpsc;

use crate::event::{Burst, Event, Ticket};
use crate::stats::SourceStats;

/// Events per batch before a source must flush.
pub const BATCH_MAX: usize = 256;

/// The router is gone: the daemon is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Per-source decoding and batching. See the module documentation.
#[derive(Debug)]
pub struct Ingest {
    name: Arc<str>,
    format: FormatHint,
    decoder: Decoder,
    zone: TimeZone,
    boot_time: Option<Timestamp>,
    app_name: Option<String>,
    stats: Arc<SourceStats>,
    tx: mpsc::Sender<Burst>,
    batch: Vec<Event>,
}

impl Ingest {
    pub fn new(
        name: &str,
        format: FormatHint,
        app_name: Option<String>,
        stats: Arc<SourceStats>,
        tx: mpsc::Sender<Burst>,
    ) -> Ingest {
        let zone = TimeZone::system();
        Ingest {
            name: name.into(),
            format,
            decoder: Decoder::new(
                format,
                Mode::Lenient,
                Context::new(Timestamp::now(), zone.clone()),
            ),
            zone,
            boot_time: None,
            app_name,
            stats,
            tx,
            batch: Vec::with_capacity(BATCH_MAX),
        }
    }

    pub fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// The counters, to keep beyond the ingest's life.
    pub fn stats_handle(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An ingest for another stream of the same source (a TCP connection): same settings
    /// and counters, its own batch.
    pub fn fork(&self) -> Ingest {
        Ingest {
            name: self.name.clone(),
            format: self.format,
            decoder: self.decoder.clone(),
            zone: self.zone.clone(),
            boot_time: self.boot_time,
            app_name: self.app_name.clone(),
            stats: self.stats.clone(),
            tx: self.tx.clone(),
            batch: Vec::with_capacity(BATCH_MAX),
        }
    }

    /// Sets the app name given to records that carry none, from now on.
    pub fn set_app_name(&mut self, app_name: Option<&str>) {
        if self.app_name.as_deref() != app_name {
            self.app_name = app_name.map(str::to_owned);
        }
    }

    /// Sets the boot time that dates kmsg records.
    pub fn with_boot_time(mut self, boot_time: Option<Timestamp>) -> Ingest {
        self.boot_time = boot_time;
        self.decoder = self.decoder.clone().with_boot_time(boot_time);
        self
    }

    /// Decodes every complete frame at the front of `buf` (and the tail too at `eof`),
    /// flushing full batches on the way, and removes the bytes it used. Stream bytes the
    /// framer threw away after a cut frame are counted.
    pub async fn stream(
        &mut self,
        framer: &mut Framer,
        buf: &mut Vec<u8>,
        eof: bool,
        host: Option<&str>,
    ) -> Result<(), Closed> {
        self.stream_with(framer, buf, eof, host, |_| {}).await
    }

    /// Like [`stream`](Self::stream), showing each frame to `seen` first.
    pub async fn stream_with(
        &mut self,
        framer: &mut Framer,
        buf: &mut Vec<u8>,
        eof: bool,
        host: Option<&str>,
        mut seen: impl FnMut(&Frame<'_>),
    ) -> Result<(), Closed> {
        let discarded = framer.discarded_bytes();
        let mut start = 0;
        let result = loop {
            let (used, frame) = framer.next_frame(&buf[start..], eof);
            start += used;
            match frame {
                Some(f) => {
                    seen(&f);
                    self.frame(f, host);
                    if self.is_full()
                        && let Err(e) = self.flush().await
                    {
                        break Err(e);
                    }
                }
                None if used == 0 => break Ok(()),
                None => {}
            }
        };
        buf.drain(..start);
        self.stats
            .discarded_bytes
            .fetch_add(framer.discarded_bytes() - discarded, Relaxed);
        result
    }

    /// The decoder reads yearless times against its clock; keep that within a second.
    fn decoder(&mut self, now: Timestamp) -> &Decoder {
        let then = self.decoder.context().now();
        if now.as_unix_nanos() - then.as_unix_nanos() > 1_000_000_000 {
            let ctx = Context::new(now, self.zone.clone());
            self.decoder =
                Decoder::new(self.format, Mode::Lenient, ctx).with_boot_time(self.boot_time);
        }
        &self.decoder
    }

    /// Decodes a frame into an event of the current batch and returns it, so the source can
    /// add what it knows (credentials, a file name). `host` is used when the frame names none.
    pub fn frame(&mut self, mut frame: Frame<'_>, host: Option<&str>) -> &mut Event {
        let now = Timestamp::now();
        // A line ending at the end of a text frame is the sender's framing habit (rsyslog
        // ends octet-counted frames and datagrams with LF), never message content. A
        // compressed frame (GELF) is binary: its last byte may be 0x0A and is kept.
        if compress::detect(frame.data) == Compression::None {
            frame.data = frame
                .data
                .strip_suffix(b"\n")
                .map_or(frame.data, |d| d.strip_suffix(b"\r").unwrap_or(d));
        }
        let stats = &self.stats;
        stats.received.fetch_add(1, Relaxed);
        stats.bytes.fetch_add(frame.data.len() as u64, Relaxed);
        if frame.truncated {
            stats.truncated.fetch_add(1, Relaxed);
        }
        let msg = self.decoder(now).decode_frame(frame);
        if msg.first_problem().is_some() {
            self.stats.malformed.fetch_add(1, Relaxed);
        }
        let mut msg = msg.into_owned();
        if msg.hostname.is_none() {
            msg.hostname = host.map(|h| h.to_owned().into());
        }
        self.push_message(msg, now)
    }

    /// A whole datagram or line as one frame.
    pub fn bytes(&mut self, data: &[u8], truncated: bool, host: Option<&str>) -> &mut Event {
        self.frame(
            Frame {
                data,
                octet_counted: false,
                truncated,
                incomplete: false,
            },
            host,
        )
    }

    /// Adds an event the source built itself (tables, kmsg); counting is the source's.
    pub fn push_message(&mut self, mut msg: Message<'static>, received: Timestamp) -> &mut Event {
        if msg.app_name.is_none() {
            msg.app_name = self.app_name.clone().map(Into::into);
        }
        self.batch.push(Event {
            msg,
            source: self.name.clone(),
            received,
        });
        let last = self.batch.len() - 1;
        &mut self.batch[last]
    }

    pub fn is_full(&self) -> bool {
        self.batch.len() >= BATCH_MAX
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Hands the batch to the router, waiting while it is behind. Cancel-safe: the batch is
    /// taken only once the router has room for it, so a caller that gives up (a stopped
    /// source, a dropped request) leaves it in place.
    pub async fn flush(&mut self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let permit = self.tx.reserve().await.map_err(|_| Closed)?;
        permit.send(Burst {
            events: std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_MAX)),
            ticket: None,
        });
        Ok(())
    }

    /// Flushes with a [`Ticket`] (even when the batch is empty): it is done once this and
    /// every earlier burst of this source is durable in every destination.
    pub async fn flush_tracked(&mut self) -> Result<Arc<Ticket>, Closed> {
        let permit = self.tx.reserve().await.map_err(|_| Closed)?;
        let ticket = Ticket::new();
        permit.send(Burst {
            events: std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_MAX)),
            ticket: Some(ticket.clone()),
        });
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_compressed_frame_ending_in_a_newline_byte_is_not_cut() {
        // Find a GELF message whose zlib form ends in 0x0A, as one in 256 does.
        let (json, z) = (0..10_000)
            .map(|i| {
                let j = format!(r#"{{"version":"1.1","host":"h","short_message":"m{i}"}}"#);
                let z = compress::zlib(j.as_bytes());
                (j, z)
            })
            .find(|(_, z)| z.last() == Some(&b'\n'))
            .expect("some message compresses to a trailing 0x0A");
        let (tx, mut rx) = mpsc::channel(4);
        let stats = Arc::new(SourceStats::default());
        let mut ingest = Ingest::new("g", FormatHint::Gelf, None, stats.clone(), tx);
        ingest.bytes(&z, false, None);
        ingest.flush().await.unwrap();
        let got = rx.recv().await.unwrap().events;
        let want: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            got[0].msg.message.as_deref(),
            want["short_message"].as_str()
        );
        assert!(got[0].msg.is_clean(), "{:?}", got[0].msg.diagnostics);
        assert_eq!(stats.malformed.load(Relaxed), 0);
    }
}
