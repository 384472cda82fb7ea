//! Call sites: the per-`event!` cache of "am I enabled?" and the hot path that writes an entry.

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use edgelog_core::table::args::ArgWriter;
use edgelog_core::table::{TableWriter, flags};

use crate::limit::GroupLimiter;
use crate::{Event, runtime};

/// The stack buffer an event encodes its arguments into; an entry's arguments are cut (and
/// flagged) beyond this, or beyond its table's payload capacity if that is smaller.
pub const MAX_INLINE_PAYLOAD: usize = 256;

/// That stack buffer, left uninitialised: zeroing it would be 256 bytes of stores per event,
/// and the encoder reads back only what it wrote.
#[doc(hidden)]
pub type InlinePayload = [MaybeUninit<u8>; MAX_INLINE_PAYLOAD];

/// An uninitialised [`InlinePayload`], for the macros.
#[doc(hidden)]
pub const INLINE_PAYLOAD: InlinePayload = [MaybeUninit::uninit(); MAX_INLINE_PAYLOAD];

/// A state no generation matches: resolve on first use.
const UNRESOLVED: u64 = u64::MAX;

/// One `event!` or `text!` in the source. Created by the macros as a `static`.
#[derive(Debug)]
pub struct Callsite {
    event: &'static Event,
    names: &'static [&'static str],
    /// `generation << 1 | enabled`, as last resolved.
    state: AtomicU64,
    /// The module's table, set when the site is first resolved enabled; tables live as long as
    /// the process.
    table: AtomicPtr<TableWriter>,
    /// The group's rate limiter, if it has one (set with the table).
    limiter: AtomicPtr<GroupLimiter>,
}

impl Callsite {
    #[doc(hidden)]
    pub const fn new(event: &'static Event, names: &'static [&'static str]) -> Callsite {
        Callsite {
            event,
            names,
            state: AtomicU64::new(UNRESOLVED),
            table: AtomicPtr::new(ptr::null_mut()),
            limiter: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Whether the event is enabled. The hottest path: two loads and a compare (the acquire
    /// pairs with `resolve`'s release, so a thread that sees "enabled" also sees the table; on
    /// x86-64 it is a plain load).
    #[inline(always)]
    pub fn enabled(&'static self) -> bool {
        let generation = runtime::generation();
        let state = self.state.load(Ordering::Acquire);
        if state >> 1 == generation {
            state & 1 == 1
        } else {
            self.resolve(generation)
        }
    }

    #[cold]
    #[inline(never)]
    fn resolve(&'static self, generation: u64) -> bool {
        let resolved = runtime::resolve(self.event, self.names);
        if let Some(r) = resolved {
            self.set(r);
        }
        let enabled = resolved.is_some();
        self.state
            .store(generation << 1 | u64::from(enabled), Ordering::Release);
        enabled
    }

    /// Stores what the site writes to (a table is never unset once set: tables live as long
    /// as the process).
    fn set(&self, (table, limiter): runtime::Resolved) {
        let limiter = limiter.map_or(ptr::null_mut(), |l| ptr::from_ref(l).cast_mut());
        self.limiter.store(limiter, Ordering::Release);
        if let Some(t) = table {
            self.table
                .store(ptr::from_ref(t).cast_mut(), Ordering::Release);
        }
    }

    /// An enabled site whose table could not be created (no space): the event is counted and
    /// the table tried again, at most once a second.
    #[cold]
    #[inline(never)]
    fn without_table(&self) {
        if let Some(r) = runtime::retry_table(self.event, crate::clock::now_ns()) {
            self.set(r);
        }
    }

    #[inline(always)]
    fn table(&self) -> Option<&'static TableWriter> {
        let t = self.table.load(Ordering::Acquire);
        // SAFETY: a non-null pointer was stored from a `&'static TableWriter` (tables are
        // leaked by the runtime and never freed).
        (!t.is_null()).then(|| unsafe { &*t })
    }

    /// An encoder for the event's arguments in `buf`, limited to what its table's slots hold.
    #[inline]
    pub fn writer<'b>(&self, buf: &'b mut InlinePayload) -> ArgWriter<'b> {
        let room = self.table().map_or(0, TableWriter::payload_capacity);
        ArgWriter::uninit(&mut buf[..room.min(MAX_INLINE_PAYLOAD)])
    }

    /// Appends the encoded arguments as an entry of this event.
    #[inline]
    pub fn emit(&self, args: &ArgWriter<'_>, mut entry_flags: u8) {
        let Some(table) = self.table() else {
            return self.without_table();
        };
        if args.truncated() {
            entry_flags |= flags::TRUNCATED;
        }
        let now = crate::clock::now_ns();
        let limiter = self.limiter.load(Ordering::Acquire);
        // SAFETY: a non-null pointer was stored from a `&'static GroupLimiter` (limiters are
        // leaked by the runtime and never freed).
        if !limiter.is_null() && !unsafe { &*limiter }.admit(now) {
            return;
        }
        // A dropped entry (slot contention) is counted by the table.
        let _ = table.append(
            now,
            self.event.id(),
            self.event.level,
            entry_flags,
            args.as_bytes(),
        );
    }

    /// Appends free text as a dynamic entry.
    pub fn emit_text(&self, text: &str) {
        let mut buf = INLINE_PAYLOAD;
        let mut w = self.writer(&mut buf);
        w.str(text);
        self.emit(&w, flags::DYNAMIC);
    }
}

/// A value an event can carry. Numbers stay numbers; addresses stay addresses.
pub trait Arg {
    fn encode(&self, w: &mut ArgWriter<'_>);
}

impl<T: Arg + ?Sized> Arg for &T {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        (**self).encode(w);
    }
}

macro_rules! int_arg {
    ($method:ident: $($t:ty),*) => {$(
        impl Arg for $t {
            #[inline]
            fn encode(&self, w: &mut ArgWriter<'_>) {
                w.$method(*self as _);
            }
        }
    )*};
}
int_arg!(i64: i8, i16, i32, i64, isize);
int_arg!(u64: u8, u16, u32, u64, usize);
int_arg!(f64: f32, f64);

impl Arg for bool {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        w.bool(*self);
    }
}

impl Arg for str {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        w.str(self);
    }
}

impl Arg for String {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        w.str(self);
    }
}

impl Arg for IpAddr {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        w.ip(*self);
    }
}

impl Arg for Ipv4Addr {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        w.ip(IpAddr::V4(*self));
    }
}

impl Arg for Ipv6Addr {
    #[inline]
    fn encode(&self, w: &mut ArgWriter<'_>) {
        w.ip(IpAddr::V6(*self));
    }
}
