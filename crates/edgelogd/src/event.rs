//! What flows through the daemon: events, batches, and the device facts added to them.
//!
//! An event is the codec's [`Message`] detached from its frame, plus where and when it was
//! received. The message is the union of every wire format (syslog header, structured data,
//! GELF and kmsg fields), so an event re-encodes to any output format without a translation
//! layer in between, and what a sender gave is kept as it gave it.
//!
//! Events travel in batches: a source sends a `Vec<Event>` per read burst, the router wraps it
//! in one [`Batch`] behind an `Arc` and hands the same allocation to every destination. Fan-out
//! to N destinations costs N reference-count increments, not N copies; each destination skips
//! what its level and match do not want as it writes.

use std::borrow::Cow;
use std::sync::Arc;

use edgelog_codec::Message;
use edgelog_core::{Facility, Level, Timestamp, Value};

/// One received record.
///
/// A decoded frame's strings borrow from a copy of the frame that the event owns
/// ([`Event::decoded`]): the copy is a slice of a source's shared arena buffer, so a record
/// costs a `memcpy` and a reference count instead of an allocation per header field. The
/// message is private because its `'static` lifetime is a promise only the event can keep: it
/// is lent out for as long as the event is borrowed ([`msg`](Event::msg)) and changed only
/// with owned values.
#[derive(Debug, Clone)]
pub struct Event {
    /// May borrow from `backing`; never handed out as `Message<'static>`.
    msg: Message<'static>,
    /// The bytes `msg` borrows from, if any. Declared after `msg`, so dropped after it.
    #[expect(
        dead_code,
        reason = "held, never read: it keeps what `msg` borrows alive"
    )]
    backing: Option<bytes::Bytes>,
    /// The name of the source it came through.
    pub source: Arc<str>,
    pub received: Timestamp,
}

impl Event {
    /// An event from a message that owns its data (or borrows only `'static` data).
    pub fn new(msg: Message<'static>, source: Arc<str>, received: Timestamp) -> Event {
        Event {
            msg,
            backing: None,
            source,
            received,
        }
    }

    /// An event whose message is built by `build` from `backing` and may borrow from it.
    pub fn decoded(
        backing: bytes::Bytes,
        source: Arc<str>,
        received: Timestamp,
        build: impl for<'b> FnOnce(&'b [u8]) -> Message<'b>,
    ) -> Event {
        let msg = build(&backing);
        // SAFETY: `msg` borrows at most from the heap buffer behind `backing`, which the event
        // keeps (and every clone of the event keeps a reference to): a `Bytes` never moves or
        // changes its bytes, and they live while any reference does. The extended lifetime
        // never leaves the event: `msg()` lends the message for the borrow of `self` only,
        // and every setter takes owned (or truly `'static`) values.
        let msg = unsafe { std::mem::transmute::<Message<'_>, Message<'static>>(msg) };
        Event {
            msg,
            backing: Some(backing),
            source,
            received,
        }
    }

    /// The message, for as long as the event is borrowed.
    pub fn msg(&self) -> &Message<'_> {
        &self.msg
    }

    pub fn push_field(&mut self, key: Cow<'static, str>, value: Value<'static>) {
        self.msg.fields.push((key, value));
    }

    /// The instant of the event: the sender's, or the arrival time when it gave none.
    pub fn time(&self) -> Timestamp {
        self.msg.timestamp.unwrap_or(self.received)
    }

    pub fn level(&self) -> Level {
        self.msg.severity()
    }

    pub fn facility(&self) -> Facility {
        self.msg.facility()
    }

    pub fn app(&self) -> Option<&str> {
        self.msg.app_name.as_deref()
    }

    /// A text field (`module`, `group`, …) set by the source.
    pub fn text_field(&self, key: &str) -> Option<&str> {
        match self.msg.field(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Device-wide facts (`[device]`), resolved once: added to every record on output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    pub hostname: Option<String>,
    /// `(GELF-style name without "_", value)` in a fixed order: serial number, element name and
    /// role, pod name — only those that are known.
    pub fields: Vec<(&'static str, String)>,
}

impl Device {
    /// The device facts as extra fields for the encoders.
    pub fn extra_fields(&self) -> Vec<(&str, Value<'_>)> {
        self.fields
            .iter()
            .map(|(k, v)| (*k, Value::Str(Cow::Borrowed(v.as_str()))))
            .collect()
    }
}

/// A batch as destinations see it.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    pub device: Arc<Device>,
    /// Set when the source wants to know once every destination holds the batch durably.
    pub ticket: Option<Arc<Ticket>>,
}

/// What a source sends the router: one burst of events, maybe with a ticket.
#[derive(Debug, Default)]
pub(crate) struct Burst {
    pub events: Vec<Event>,
    pub ticket: Option<Arc<Ticket>>,
}

/// Tells a source with positions (files, tables) when a burst — and, since every channel is
/// first-in first-out, everything it sent before — is durable in every destination: written
/// to each store, synced into each disk queue. Only then does the source move its checkpoint,
/// so a crash at any moment re-reads at most what was not yet durable and loses nothing.
#[derive(Debug)]
pub struct Ticket {
    /// Destinations still to report; `usize::MAX` until the router has counted them.
    remaining: std::sync::atomic::AtomicUsize,
    /// Woken when the last destination reports.
    done: tokio::sync::Notify,
}

impl Ticket {
    pub fn new() -> Arc<Ticket> {
        Arc::new(Ticket {
            remaining: std::sync::atomic::AtomicUsize::new(usize::MAX),
            done: tokio::sync::Notify::new(),
        })
    }

    /// The router: this many destinations will report.
    pub fn arm(&self, destinations: usize) {
        self.remaining
            .store(destinations, std::sync::atomic::Ordering::Release);
        if destinations == 0 {
            self.done.notify_waiters();
        }
    }

    /// A destination: the batch is durable here (or counted as dropped).
    pub fn complete_one(&self) {
        let before = self.remaining.fetch_update(
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
            |n| (n != usize::MAX && n > 0).then(|| n - 1),
        );
        if before == Ok(1) {
            self.done.notify_waiters();
        }
    }

    pub fn is_done(&self) -> bool {
        self.remaining.load(std::sync::atomic::Ordering::Acquire) == 0
    }

    /// Until every destination reported.
    pub async fn done(&self) {
        loop {
            // Registered before the check, so a completion in between is not missed.
            let notified = self.done.notified();
            if self.is_done() {
                return;
            }
            notified.await;
        }
    }
}
