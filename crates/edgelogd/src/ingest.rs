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
use tokio::sync::{mpsc, watch};

use crate::event::{Burst, Event, Ticket};
use crate::stats::{SourceDrop, SourceStats};

/// Events per batch before a source must flush.
pub(crate) const BATCH_MAX: usize = 256;

/// The most records a datagram source holds while the router has no room (see
/// [`Ingest::offer`]): a few hundred milliseconds of a busy `/dev/log`, a few MB at most.
pub(crate) const DATAGRAM_BACKLOG: usize = 16 * BATCH_MAX;

/// The router is gone: the daemon is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// Per-source decoding and batching. See the module documentation.
#[derive(Debug)]
pub(crate) struct Ingest {
    name: Arc<str>,
    format: FormatHint,
    decoder: Decoder,
    zone: TimeZone,
    boot_time: Option<Timestamp>,
    app_name: Option<String>,
    /// The box's hostname (`[device] hostname`), given to records that name no host: the one
    /// place a record is enriched before routing. Looked at again once a second, so a reload
    /// that changes it reaches running sources.
    local_host: watch::Receiver<Option<Arc<str>>>,
    host: Option<Arc<str>>,
    stats: Arc<SourceStats>,
    tx: mpsc::Sender<Burst>,
    batch: Vec<Event>,
    /// Where frames are copied for their events to borrow from (see [`Event::decoded`]).
    arena: bytes::BytesMut,
    /// The longest message text kept (`max_frame`): a GELF message, whose frame was
    /// reassembled or decompressed past `max_frame`, is cut to it, flagged and counted.
    max_message: usize,
}

/// The size of a fresh arena buffer: a hundred typical records share one allocation, and an
/// idle connection holds at most this much.
const ARENA_CHUNK: usize = 16 * 1024;

impl Ingest {
    pub(crate) fn new(
        name: &str,
        format: FormatHint,
        app_name: Option<String>,
        mut local_host: watch::Receiver<Option<Arc<str>>>,
        stats: Arc<SourceStats>,
        tx: mpsc::Sender<Burst>,
    ) -> Ingest {
        let zone = TimeZone::system();
        let host = local_host.borrow_and_update().clone();
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
            local_host,
            host,
            stats,
            tx,
            batch: Vec::with_capacity(BATCH_MAX),
            arena: bytes::BytesMut::new(),
            max_message: usize::MAX,
        }
    }

    pub(crate) fn stats(&self) -> &SourceStats {
        &self.stats
    }

    /// The counters, to keep beyond the ingest's life.
    pub(crate) fn stats_handle(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// The source's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// An ingest for another stream of the same source (a TCP connection): same settings
    /// and counters, its own batch.
    pub(crate) fn fork(&self) -> Ingest {
        Ingest {
            name: self.name.clone(),
            format: self.format,
            decoder: self.decoder.clone(),
            zone: self.zone.clone(),
            boot_time: self.boot_time,
            app_name: self.app_name.clone(),
            local_host: self.local_host.clone(),
            host: self.host.clone(),
            stats: self.stats.clone(),
            tx: self.tx.clone(),
            batch: Vec::with_capacity(BATCH_MAX),
            arena: bytes::BytesMut::new(),
            max_message: self.max_message,
        }
    }

    /// Sets the app name given to records that carry none, from now on.
    pub(crate) fn set_app_name(&mut self, app_name: Option<&str>) {
        if self.app_name.as_deref() != app_name {
            self.app_name = app_name.map(str::to_owned);
        }
    }

    /// Cuts message texts longer than `max` bytes (at a character boundary), flagged and
    /// counted as truncated.
    pub(crate) fn with_max_message(mut self, max: usize) -> Ingest {
        self.max_message = max;
        self
    }

    /// Sets the boot time that dates kmsg records.
    pub(crate) fn with_boot_time(mut self, boot_time: Option<Timestamp>) -> Ingest {
        self.boot_time = boot_time;
        self.decoder = self.decoder.clone().with_boot_time(boot_time);
        self
    }

    /// Decodes every complete frame at the front of `buf` (and the tail too at `eof`),
    /// flushing full batches on the way, and removes the bytes it used. Stream bytes the
    /// framer threw away after a cut frame are counted.
    pub(crate) async fn stream(
        &mut self,
        framer: &mut Framer,
        buf: &mut Vec<u8>,
        eof: bool,
        host: Option<&str>,
    ) -> Result<(), Closed> {
        self.stream_with(framer, buf, eof, host, |_| {}).await
    }

    /// Like [`stream`](Self::stream), showing each frame to `seen` first.
    pub(crate) async fn stream_with(
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
    fn refresh_decoder(&mut self, now: Timestamp) {
        let then = self.decoder.context().now();
        if now.as_unix_nanos() - then.as_unix_nanos() > 1_000_000_000 {
            let ctx = Context::new(now, self.zone.clone());
            self.decoder =
                Decoder::new(self.format, Mode::Lenient, ctx).with_boot_time(self.boot_time);
            if self.local_host.has_changed().unwrap_or(false) {
                self.host = self.local_host.borrow_and_update().clone();
            }
        }
    }

    /// Decodes a frame into an event of the current batch and returns it, so the source can
    /// add what it knows (credentials, a file name). `host` is used when the frame names none.
    pub(crate) fn frame(&mut self, frame: Frame<'_>, host: Option<&str>) -> &mut Event {
        self.frame_filled(frame, host, None)
    }

    /// Like [`frame`](Self::frame), with the process id to give a record that names none (the
    /// sender's, from its credentials).
    pub(crate) fn frame_filled(
        &mut self,
        mut frame: Frame<'_>,
        host: Option<&str>,
        proc_id: Option<&str>,
    ) -> &mut Event {
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
        // The frame, then what fills a missing host (the peer's address, else the box's name),
        // app name and process id, copied side by side into the arena; the event's strings
        // borrow from that copy.
        self.refresh_decoder(now);
        let host = host.or(self.host.as_deref()).unwrap_or("");
        let app = self.app_name.as_deref().unwrap_or("");
        let pid = proc_id.unwrap_or("");
        let backing = stash(
            &mut self.arena,
            &[frame.data, host.as_bytes(), app.as_bytes(), pid.as_bytes()],
        );
        let flen = frame.data.len();
        let (host_at, app_at) = (flen + host.len(), flen + host.len() + app.len());
        let decoder = &self.decoder;
        let mut malformed = false;
        let mut cut = false;
        let max_message = self.max_message;
        let event = Event::decoded(backing, self.name.clone(), now, |b| {
            let mut msg = decoder.decode_frame(Frame {
                data: &b[..flen],
                ..frame
            });
            malformed = msg.first_problem().is_some();
            if let Some(text) = msg.message.take() {
                let (text, was_cut) = cut_text(text, max_message);
                cut = was_cut;
                msg.message = Some(text);
            }
            let text = |r: std::ops::Range<usize>| {
                std::str::from_utf8(&b[r])
                    .ok()
                    .filter(|t| !t.is_empty())
                    .map(std::borrow::Cow::Borrowed)
            };
            if msg.hostname.is_none() {
                msg.hostname = text(flen..host_at);
            }
            if msg.app_name.is_none() {
                msg.app_name = text(host_at..app_at);
            }
            if msg.proc_id.is_none() {
                msg.proc_id = text(app_at..b.len());
            }
            msg
        });
        if malformed {
            self.stats.malformed.fetch_add(1, Relaxed);
        }
        if cut && !frame.truncated {
            self.stats.truncated.fetch_add(1, Relaxed);
        }
        self.batch.push(event);
        let last = self.batch.len() - 1;
        &mut self.batch[last]
    }

    /// A whole datagram or line as one frame.
    pub(crate) fn bytes(&mut self, data: &[u8], truncated: bool, host: Option<&str>) -> &mut Event {
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
    pub(crate) fn push_message(
        &mut self,
        mut msg: Message<'static>,
        received: Timestamp,
    ) -> &mut Event {
        if msg.app_name.is_none() {
            msg.app_name = self.app_name.clone().map(Into::into);
        }
        if msg.hostname.is_none() {
            msg.hostname = self.host.as_deref().map(|h| h.to_owned().into());
        }
        self.batch
            .push(Event::new(msg, self.name.clone(), received));
        let last = self.batch.len() - 1;
        &mut self.batch[last]
    }

    pub(crate) fn is_full(&self) -> bool {
        self.batch.len() >= BATCH_MAX
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Hands the batch to the router, waiting while it is behind. Cancel-safe: the batch is
    /// taken only once the router has room for it, so a caller that gives up (a stopped
    /// source, a dropped request) leaves it in place.
    pub(crate) async fn flush(&mut self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let permit = self.tx.reserve().await.map_err(|_| Closed)?;
        permit.send(burst(&mut self.batch, None));
        Ok(())
    }

    /// Records held back (not yet with the router).
    pub(crate) fn len(&self) -> usize {
        self.batch.len()
    }

    /// For sources that cannot wait (datagram sockets: their senders block when the socket's
    /// queue fills — on `/dev/log` ten datagrams — and a sender there is every daemon of the
    /// box): hands the batch to the router if it has room now, and never waits. A source
    /// whose batch the router cannot take keeps reading into it, up to [`DATAGRAM_BACKLOG`]
    /// records, and waits for room with [`flush`](Self::flush) only while the socket is
    /// quiet; a full backlog is dropped and counted as `queue_full`. A router that is only
    /// busy costs nothing; one held up by a destination that blocks costs records, never a
    /// sender's time.
    pub(crate) fn offer(&mut self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        match self.tx.try_reserve() {
            Ok(permit) => permit.send(burst(&mut self.batch, None)),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(Closed),
            Err(mpsc::error::TrySendError::Full(())) if self.batch.len() >= DATAGRAM_BACKLOG => {
                let why = if crate::stats::disk_full_now() {
                    SourceDrop::DiskFull
                } else {
                    SourceDrop::QueueFull
                };
                self.stats.add_drop(why, self.batch.len() as u64);
                self.batch.clear();
            }
            Err(mpsc::error::TrySendError::Full(())) => {}
        }
        Ok(())
    }

    /// Flushes with a [`Ticket`] (even when the batch is empty): it is done once this and
    /// every earlier burst of this source is durable in every destination.
    pub(crate) async fn flush_tracked(&mut self) -> Result<Arc<Ticket>, Closed> {
        let permit = self.tx.reserve().await.map_err(|_| Closed)?;
        let ticket = Ticket::new();
        permit.send(burst(&mut self.batch, Some(ticket.clone())));
        Ok(ticket)
    }
}

/// `text` cut to at most `max` bytes at a character boundary, and whether it was cut.
fn cut_text(text: std::borrow::Cow<'_, str>, max: usize) -> (std::borrow::Cow<'_, str>, bool) {
    use std::borrow::Cow;
    if text.len() <= max {
        return (text, false);
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let cut = match text {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..at]),
        Cow::Owned(mut s) => {
            s.truncate(at);
            Cow::Owned(s)
        }
    };
    (cut, true)
}

/// `batch` as a burst for the router, a fresh batch in its place.
fn burst(batch: &mut Vec<Event>, ticket: Option<Arc<Ticket>>) -> Burst {
    Burst {
        events: std::mem::replace(batch, Vec::with_capacity(BATCH_MAX)),
        ticket,
    }
}

/// Copies `parts` one after the other into `arena` and returns them as one buffer.
fn stash(arena: &mut bytes::BytesMut, parts: &[&[u8]]) -> bytes::Bytes {
    let len = parts.iter().map(|p| p.len()).sum();
    if arena.capacity() < len {
        // The old buffer is freed once the last event borrowing from it is.
        *arena = bytes::BytesMut::with_capacity(len.max(ARENA_CHUNK));
    }
    for p in parts {
        arena.extend_from_slice(p);
    }
    arena.split().freeze()
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
        let host = watch::channel(None).1;
        let mut ingest = Ingest::new("g", FormatHint::Gelf, None, host, stats.clone(), tx);
        ingest.bytes(&z, false, None);
        ingest.flush().await.unwrap();
        let got = rx.recv().await.unwrap().events;
        let want: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            got[0].msg().message.as_deref(),
            want["short_message"].as_str()
        );
        assert!(got[0].msg().is_clean(), "{:?}", got[0].msg().diagnostics);
        assert_eq!(stats.malformed.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn events_keep_their_bytes_after_the_arena_moved_on() {
        let (tx, mut rx) = mpsc::channel(64);
        let stats = Arc::new(SourceStats::default());
        let mut ingest = Ingest::new(
            "t",
            FormatHint::Auto,
            Some("configured".into()),
            watch::channel(Some("box1".into())).1,
            stats.clone(),
            tx,
        );
        // Enough records to fill several arena buffers; every other one names no host or app,
        // and every fourth comes from no peer address either.
        let n = 3 * ARENA_CHUNK / 60;
        for i in 0..n {
            let line = if i % 2 == 0 {
                format!("<13>1 2026-11-22T08:00:00Z h{i} app{i} - - - text {i}")
            } else {
                format!("plain text {i}")
            };
            let peer = (i % 4 != 3).then_some("10.0.0.9");
            ingest.bytes(line.as_bytes(), false, peer);
            if ingest.is_full() {
                ingest.flush().await.unwrap();
            }
        }
        ingest.flush().await.unwrap();
        drop(ingest);
        let mut got = Vec::new();
        while let Ok(b) = rx.try_recv() {
            got.extend(b.events);
        }
        // Clones outlive the originals too.
        let clones: Vec<Event> = got.to_vec();
        drop(got);
        assert_eq!(clones.len(), n);
        for (i, e) in clones.iter().enumerate() {
            let m = e.msg();
            if i % 2 == 0 {
                assert_eq!(m.hostname.as_deref(), Some(format!("h{i}").as_str()));
                assert_eq!(m.app_name.as_deref(), Some(format!("app{i}").as_str()));
                assert_eq!(m.message.as_deref(), Some(format!("text {i}").as_str()));
            } else {
                let host = if i % 4 == 3 { "box1" } else { "10.0.0.9" };
                assert_eq!(m.hostname.as_deref(), Some(host));
                assert_eq!(m.app_name.as_deref(), Some("configured"));
                assert_eq!(
                    m.message.as_deref(),
                    Some(format!("plain text {i}").as_str())
                );
            }
        }
    }
}
