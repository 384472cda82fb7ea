//! Log tables: rings of entries in memory-mapped files that outlive their writer.
//!
//! ```text
//! file = header (4096 bytes) | lane 0 | lane 1 | … | lane L-1
//! lane = slot 0 | slot 1 | … | slot capacity-1
//!
//! header, little-endian u64 words:
//!   0  magic "EDGLTAB\0"          4  created (ns since epoch)
//!   1  format major | minor<<32   5  clock kind (0 = UTC nanoseconds)
//!   2  capacity (slots per lane)  6  lanes (L, 1 to 32)
//!   3  slot size (bytes)          8  lane 0 head: next sequence number        (own cache line)
//!  16  bd name (64 bytes)        24  module name (64 bytes)
//!  32  counters: lost_busy, lost_lapped, truncated, torn, no_space            (own line)
//!  64 + 8·(i-1)  lane i (1 … L-1), a line each: head, slot index (head % capacity), owner
//!                (the owning process: pid | nonce << 32; 0 when free)
//!
//! slot (slot size bytes, a multiple of 8):
//!   word 0  stamp = seq << 2 | TORN << 1 | BUSY      seq 0 = never written
//!   word 1  time (clock kind units)
//!   word 2  log id (u32) | level (u8) << 32 | flags (u8) << 40 | payload length (u16) << 48
//!   word 3… payload: encoded arguments (see `args`), packed into words
//! ```
//!
//! **Lanes.** A table is `L` rings of `capacity` slots. A writing thread claims a lane of its
//! own (1 … L-1) at its first entry, so appending takes no locked instruction: the lane's only
//! writer bumps its head with plain stores. The claim is a compare-and-swap of the lane's
//! owner word to the process's identity (pid and a nonce), so any number of processes may
//! write one table — instances of one BD, a restart that overlaps the old instance,
//! pre-forked workers, a child after `fork` (which takes a new identity: [`forked`]) — and no
//! lane ever has two writers. A lane whose owner died (`kill(pid, 0)` says ESRCH, or our own
//! pid with another nonce) is reclaimed, and what its writer left half-done is recovered. A
//! thread keeps its lane for the process's life (its index, and so its lane, passes to the
//! next thread only after it ended). Threads that get no lane share lane 0, which takes any
//! number of writers:
//! a sequence number by one `fetch_add` on its head, the slot claimed by a compare-and-swap of
//! its stamp from an older, idle stamp to `seq|BUSY`. A lane-0 writer that finds its slot busy
//! (a writer one lap ahead has not finished) or holding a newer entry (it was lapped while
//! preempted) drops its entry and counts it — it never waits and never mixes its words with
//! another writer's. Sequence numbers start at 1 in each lane and entry `seq` of a lane lives
//! in its slot `seq % capacity`: each lane keeps its newest `capacity` entries. Readers merge
//! the lanes by time. Lanes that no thread writes cost nothing: the file is sparse.
//!
//! **Reserved before written.** A page of a sparse file is allocated at its first store; on a
//! full tmpfs (the run directory of a device) that store raises SIGBUS and kills the process.
//! So a writer never stores into a region it has not reserved with `fallocate`: the header when
//! the file is created (a table that cannot get even that is not created), lane 0 when the
//! table is opened, an own lane when a thread first writes to it. A thread whose lane cannot be
//! reserved writes to lane 0; an entry that lane 0 cannot take for want of space is dropped and
//! counted as `no_space`. A failed reservation is retried by a later entry, at most once a
//! second (the entry's own time decides, so no clock read or system call is added per entry).
//! Readers and the torn-slot scan touch only slots that were written, which are allocated.
//!
//! **Reading** (any process, read-only mapping): a seqlock per slot. Load the stamp (acquire),
//! copy the words, load the stamp again; the copy is an entry only if both stamps are the same
//! idle `seq`. A busy stamp is an entry being written — or one whose writer died mid-write,
//! which the next writer to open the table marks `TORN`, so readers can say so.
//!
//! The protocol itself lives in `protocol.rs`, generic over the atomic word type, so a loom
//! model checks the same code that runs over the mapping (and fails if the claim CAS or the
//! publish order is broken — both mutations were tried).
//!
//! Every word is accessed through `AtomicU64` (relaxed for the payload): processes share the
//! memory, and atomics are what makes concurrent access to it defined. On x86-64 and AArch64
//! relaxed loads and stores are plain moves.

pub mod args;
mod protocol;

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};

use self::protocol::{BUSY, Lost, Memory, Read, TORN};
use crate::shm::Words;
use crate::{Level, Timestamp};

/// The format major version this build reads and writes; a file with another major is refused.
/// (2: lanes.)
pub const FORMAT_MAJOR: u32 = 2;
/// The format minor version (additions readers of the same major may ignore). (1: the
/// `no_space` counter; 2: lane owners.)
pub const FORMAT_MINOR: u32 = 2;
/// Default entries per table (RBFS keeps the newest 10,000).
pub const DEFAULT_CAPACITY: u64 = 10_000;
/// Default slot size in bytes.
pub const DEFAULT_SLOT_SIZE: u32 = 256;
/// Default lanes: the shared one and three of their own for the first writing threads.
pub const DEFAULT_LANES: u32 = 4;
/// The most lanes a table may have.
pub const MAX_LANES: u32 = 32;
/// Bytes before the first slot.
pub const HEADER_SIZE: usize = 4096;
/// Bytes of a slot taken by its stamp, time and info words.
pub const SLOT_OVERHEAD: usize = 24;

const MAGIC: u64 = u64::from_le_bytes(*b"EDGLTAB\0");
const NAME_BYTES: usize = 64;

// Header word indexes.
const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_CAPACITY: usize = 2;
const W_SLOT_SIZE: usize = 3;
const W_CREATED: usize = 4;
const W_CLOCK: usize = 5;
const W_LANES: usize = 6;
const W_HEAD: usize = 8;
const W_LANE_HEADS: usize = 64;
const W_BD: usize = 16;
const W_MODULE: usize = 24;
const W_LOST_BUSY: usize = 32;
const W_LOST_LAPPED: usize = 33;
const W_TRUNCATED: usize = 34;
const W_TORN: usize = 35;
const W_NO_SPACE: usize = 36;

/// When something that failed for want of space (a reservation, a table) may be tried again:
/// a second after the last failure, on the caller's own clock (an entry's timestamp), so a hot
/// path that checks it adds no clock read and no system call. A clock stepped back by more than
/// the back-off retries at once.
#[derive(Debug)]
pub struct Backoff(std::sync::atomic::AtomicI64);

impl Backoff {
    const NS: i64 = 1_000_000_000;

    /// Due at once.
    pub const fn new() -> Backoff {
        Backoff(std::sync::atomic::AtomicI64::new(i64::MIN))
    }

    /// Whether a retry is due at `now` (nanoseconds).
    pub fn due(&self, now: i64) -> bool {
        let at = self.0.load(Ordering::Relaxed);
        now >= at || now < at.saturating_sub(2 * Self::NS)
    }

    /// A try at `now` failed: the next one waits a second.
    pub fn failed(&self, now: i64) {
        self.0
            .store(now.saturating_add(Self::NS), Ordering::Relaxed);
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

/// Entry flags.
pub mod flags {
    /// Arguments were cut to fit the slot.
    pub const TRUNCATED: u8 = 1;
    /// The payload is one string argument: a dynamic-text event with no log map template.
    pub const DYNAMIC: u8 = 2;
    /// A rate-limit summary ("suppressed K events of group G").
    pub const SUMMARY: u8 = 4;
}

/// What went wrong with a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableErrorKind {
    /// The file could not be created, opened, sized or mapped.
    Io,
    /// The file is not an edgelog table.
    NotATable,
    /// The file is a table of another format major version.
    IncompatibleVersion,
    /// The header disagrees with the file (size) or with the requested configuration.
    Corrupt,
    /// The requested capacity or slot size is out of range.
    InvalidConfig,
    /// The filesystem had no room to create the table (not even its header).
    NoSpace,
}

/// An error opening or creating a table, naming the file.
#[derive(Debug)]
pub struct TableError {
    kind: TableErrorKind,
    path: PathBuf,
    detail: String,
}

impl TableError {
    fn new(kind: TableErrorKind, path: &Path, detail: impl Into<String>) -> TableError {
        TableError {
            kind,
            path: path.to_owned(),
            detail: detail.into(),
        }
    }

    fn io(path: &Path, what: &str, e: io::Error) -> TableError {
        TableError::new(TableErrorKind::Io, path, format!("{what}: {e}"))
    }

    /// The kind of error.
    pub fn kind(&self) -> TableErrorKind {
        self.kind
    }

    /// The table file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "table {}: {}", self.path.display(), self.detail)
    }
}

impl std::error::Error for TableError {}

/// How to create a table.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// The brick daemon (application) that owns the table.
    pub bd: String,
    /// The module the table logs.
    pub module: String,
    /// Entries kept (1 to 2^32).
    pub capacity: u64,
    /// Bytes per entry, a multiple of 8 from 64 to 65,536 (the payload is 24 bytes less).
    pub slot_size: u32,
    /// Lanes (1 to [`MAX_LANES`]): the shared lane and `lanes - 1` for writing threads of their
    /// own. 1 makes every writer share one ring.
    pub lanes: u32,
}

impl TableConfig {
    /// The default capacity, slot size and lanes for `module` of `bd`.
    pub fn new(bd: &str, module: &str) -> TableConfig {
        TableConfig {
            bd: bd.to_owned(),
            module: module.to_owned(),
            capacity: DEFAULT_CAPACITY,
            slot_size: DEFAULT_SLOT_SIZE,
            lanes: DEFAULT_LANES,
        }
    }

    /// The file size this configuration makes.
    fn file_size(&self) -> u64 {
        HEADER_SIZE as u64 + u64::from(self.lanes) * self.capacity * u64::from(self.slot_size)
    }

    /// The table's file name, `<module>.<bd>.log`.
    pub fn file_name(&self) -> String {
        format!("{}.{}.log", self.module, self.bd)
    }
}

/// The fixed facts of a table, read from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub bd: String,
    pub module: String,
    /// Entries kept per lane.
    pub capacity: u64,
    pub slot_size: u32,
    pub lanes: u32,
    pub format_minor: u32,
    pub created: Timestamp,
}

/// Counters of entries a table could not keep, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Dropped because a writer a lap ahead was still writing the slot.
    pub lost_busy: u64,
    /// Dropped because the writer was lapped before it could claim its slot.
    pub lost_lapped: u64,
    /// Kept with arguments cut to fit.
    pub truncated: u64,
    /// Slots found half-written by a writer that died, marked torn on reopen.
    pub torn: u64,
    /// Dropped because the run directory had no space for the table's lanes.
    pub no_space: u64,
}

/// Shared by the writer and the reader: the header, checked.
#[derive(Debug)]
struct Table {
    words: Words,
    info: TableInfo,
    slot_words: usize,
}

impl Table {
    fn check(words: Words, path: &Path, file_len: u64) -> Result<Table, TableError> {
        let corrupt = |d: String| TableError::new(TableErrorKind::Corrupt, path, d);
        if words.len() < HEADER_SIZE / 8 || words.get(W_MAGIC) != MAGIC {
            return Err(TableError::new(
                TableErrorKind::NotATable,
                path,
                "not an edgelog table (bad magic)",
            ));
        }
        let version = words.get(W_VERSION);
        let (major, minor) = (version as u32, (version >> 32) as u32);
        if major != FORMAT_MAJOR {
            return Err(TableError::new(
                TableErrorKind::IncompatibleVersion,
                path,
                format!(
                    "table format version {major}.{minor}, this build reads version {FORMAT_MAJOR}"
                ),
            ));
        }
        let capacity = words.get(W_CAPACITY);
        let slot_size = words.get(W_SLOT_SIZE);
        let lanes = words.get(W_LANES);
        if !valid_slot_size(slot_size)
            || capacity == 0
            || capacity > u64::from(u32::MAX)
            || lanes == 0
            || lanes > u64::from(MAX_LANES)
        {
            return Err(corrupt(format!(
                "capacity {capacity} / slot size {slot_size} / lanes {lanes}"
            )));
        }
        let want = HEADER_SIZE as u64 + lanes * capacity * slot_size;
        if file_len != want {
            return Err(corrupt(format!(
                "file is {file_len} bytes, its header says {want} ({lanes} lanes of {capacity} \
                 slots of {slot_size} bytes)"
            )));
        }
        let info = TableInfo {
            bd: words.name(W_BD, NAME_BYTES),
            module: words.name(W_MODULE, NAME_BYTES),
            capacity,
            slot_size: slot_size as u32,
            lanes: lanes as u32,
            format_minor: minor,
            created: Timestamp::from_unix_nanos(words.get(W_CREATED) as i64),
        };
        Ok(Table {
            words,
            info,
            slot_words: slot_size as usize / 8,
        })
    }

    fn head(&self, lane: u32) -> u64 {
        self.words.at(head_word(lane)).load(Ordering::Acquire)
    }

    fn counters(&self) -> TableCounters {
        TableCounters {
            lost_busy: self.words.get(W_LOST_BUSY),
            lost_lapped: self.words.get(W_LOST_LAPPED),
            truncated: self.words.get(W_TRUNCATED),
            torn: self.words.get(W_TORN),
            no_space: self.words.get(W_NO_SPACE),
        }
    }

    /// The first word of the slot of `seq` in `lane`.
    #[inline(always)]
    fn slot_base(&self, lane: u32, seq: u64) -> usize {
        self.slot_at(lane, seq % self.info.capacity)
    }

    /// The first word of slot `slot` (an index below the capacity) of `lane`.
    #[inline(always)]
    fn slot_at(&self, lane: u32, slot: u64) -> usize {
        HEADER_SIZE / 8 + (u64::from(lane) * self.info.capacity + slot) as usize * self.slot_words
    }

    /// Stores an entry's words (relaxed) from word `first`: time, info, then the arguments
    /// packed into words — whole words straight from the bytes, the tail as the last eight
    /// bytes read at once and shifted (a byte copy into a stack word read back whole stalls
    /// store-to-load forwarding, and was most of an append's time; a memcpy call per word, an
    /// iterator's call per word, and a byte-at-a-time tail were each seen in profiles before).
    /// The slot's words are bounds-checked once, not one by one.
    #[inline(always)]
    fn store_payload(&self, first: usize, time: u64, info: u64, args: &[u8]) {
        let words = self.words.range(first, 2 + args.len().div_ceil(8));
        let (head, payload) = words.split_at(2);
        head[0].store(time, Ordering::Relaxed);
        head[1].store(info, Ordering::Relaxed);
        let whole = args.chunks_exact(8);
        let tail = whole.remainder().len();
        for (w, c) in payload.iter().zip(whole) {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            w.store(word, Ordering::Relaxed);
        }
        if tail != 0 {
            let word = if let Some(last) = args.last_chunk::<8>() {
                // The last eight bytes end with the tail: shift the bytes before it out.
                u64::from_le_bytes(*last) >> (8 * (8 - tail))
            } else {
                args.iter()
                    .rev()
                    .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
            };
            payload[payload.len() - 1].store(word, Ordering::Relaxed);
        }
    }

    fn bump(&self, counter: usize) {
        self.words.at(counter).fetch_add(1, Ordering::Relaxed);
    }

    /// The byte range of `lane` in the file.
    fn lane_bytes(&self, lane: u32) -> (u64, u64) {
        let len = self.info.capacity * u64::from(self.info.slot_size);
        (HEADER_SIZE as u64 + u64::from(lane) * len, len)
    }
}

fn valid_slot_size(s: u64) -> bool {
    (64..=65_536).contains(&s) && s.is_multiple_of(8)
}

/// The header word holding `lane`'s head.
#[inline(always)]
fn head_word(lane: u32) -> usize {
    if lane == 0 {
        W_HEAD
    } else {
        W_LANE_HEADS + 8 * (lane as usize - 1)
    }
}

/// This thread's index among the process's threads that write tables (0 for the first), or
/// `None` past 64: what its lane is remembered by, per table. The index is freed when the
/// thread ends and goes to the next thread that asks, which then continues that lane — after
/// the old thread's last store, since freeing and taking it synchronise.
#[inline]
fn thread_index() -> Option<u32> {
    static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    struct Index(Option<u32>);
    impl Index {
        fn claim() -> Index {
            let mut cur = TAKEN.load(Ordering::Relaxed);
            loop {
                let free = (!cur).trailing_zeros();
                if free >= 64 {
                    return Index(None);
                }
                match TAKEN.compare_exchange_weak(
                    cur,
                    cur | 1 << free,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Index(Some(free)),
                    Err(now) => cur = now,
                }
            }
        }
    }
    impl Drop for Index {
        fn drop(&mut self) {
            if let Some(i) = self.0 {
                TAKEN.fetch_and(!(1 << i), Ordering::Release);
            }
        }
    }
    thread_local! {
        static INDEX: Index = Index::claim();
    }
    // A thread that is ending (its index already dropped) shares lane 0.
    INDEX.try_with(|i| i.0).ok().flatten()
}

/// The appending side of a table. Any number of processes may write one table, and any number
/// of their threads append at once (`&self`), each in a lane of its own while there are lanes
/// to claim (see the module documentation).
#[derive(Debug)]
pub struct TableWriter {
    table: Table,
    file: File,
    path: PathBuf,
    /// Bit `l`: lane `l` is reserved in the file, so stores into it cannot fault. Set only
    /// after `fallocate` returned, and read relaxed: page allocation is the kernel's state,
    /// not memory this thread could see out of order.
    reserved: std::sync::atomic::AtomicU64,
    /// When a failed reservation may be tried again.
    retry: Backoff,
    /// Whether this process has said on stderr that the table is short of space.
    told: std::sync::atomic::AtomicBool,
    /// By thread index in this process: the lane that thread claimed, [`UNDECIDED`] before
    /// its first entry, [`SHARED`] when it writes to lane 0.
    lane_of: [AtomicU8; 64],
}

/// [`TableWriter::lane_of`]: the thread has not written yet.
const UNDECIDED: u8 = 0;
/// [`TableWriter::lane_of`]: the thread writes to lane 0.
const SHARED: u8 = u8::MAX;

/// The header word of own lane `lane`'s owner: this process's [`owner_id`], 0 when free.
fn owner_word(lane: u32) -> usize {
    head_word(lane) + 2
}

/// This process as a lane owner: its pid, and a nonce that tells it from an earlier process
/// with the same pid (a restarted daemon in a container is pid 1 again). Never 0.
static OWNER: AtomicU64 = AtomicU64::new(0);

fn owner_id() -> u64 {
    match OWNER.load(Ordering::Relaxed) {
        0 => {
            let id = new_owner_id();
            match OWNER.compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => id,
                Err(other) => other,
            }
        }
        id => id,
    }
}

/// A new identity: the pid, and a nonce from the clock. Async-signal-safe (`getpid` and
/// `clock_gettime` only).
fn new_owner_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let nonce = ((nanos ^ nanos >> 29) as u32).max(1);
    u64::from(std::process::id()) | u64::from(nonce) << 32
}

/// The child of a `fork` is another process: it takes a new owner identity, so it never
/// writes the lanes its parent owns. Async-signal-safe (a pthread_atfork child handler may
/// call it); then call [`TableWriter::after_fork`] on each table before writing.
pub fn forked() {
    OWNER.store(new_owner_id(), Ordering::Relaxed);
}

/// Whether the process that owned a lane is gone: no such pid (`kill(pid, 0)` says ESRCH), or
/// our own pid with another nonce (an earlier process that had it).
fn owner_is_dead(owner: u64) -> bool {
    let me = owner_id();
    let pid = owner as u32;
    if pid == me as u32 {
        return owner != me;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

impl TableWriter {
    /// Opens the table at `path`, creating it with `config` if it does not exist. An existing
    /// table keeps its history and its own capacity, slot size and lanes, and its sequence
    /// numbers continue; slots left half-written by a writer that died are marked torn. A
    /// table of an older format is moved aside (`<name>.v<major>`) and a new one created; one
    /// of a newer format is refused.
    pub fn open(path: &Path, config: &TableConfig) -> Result<TableWriter, TableError> {
        if config.capacity == 0
            || config.capacity > u64::from(u32::MAX)
            || !valid_slot_size(u64::from(config.slot_size))
            || config.lanes == 0
            || config.lanes > MAX_LANES
        {
            return Err(TableError::new(
                TableErrorKind::InvalidConfig,
                path,
                format!(
                    "capacity {} (1 to 4294967295) / slot size {} (a multiple of 8, 64 to 65536) \
                     / lanes {} (1 to {MAX_LANES})",
                    config.capacity, config.slot_size, config.lanes
                ),
            ));
        }
        let (file, fresh) = open_or_create(path, config)?;
        let len = file
            .metadata()
            .map_err(|e| TableError::io(path, "reading size", e))?
            .len();
        let words = Words::map(&file, true).map_err(|e| TableError::io(path, "mapping", e))?;
        let major = words.get(W_VERSION) as u32;
        let table = match Table::check(words, path, len) {
            // A table an older build wrote (a run directory that outlived an upgrade): its
            // owner moves it aside, as `<name>.v<major>` for that build's tools, and starts
            // a new one. A newer format is refused: it is not ours to replace.
            Err(e) if e.kind() == TableErrorKind::IncompatibleVersion && major < FORMAT_MAJOR => {
                let aside = path.with_extension(format!("log.v{major}"));
                match std::fs::rename(path, &aside) {
                    // Another process moved it first.
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(TableError::io(path, "moving the old-format table aside", e));
                    }
                    _ => return TableWriter::open(path, config),
                }
            }
            r => r?,
        };
        let writer = TableWriter {
            table,
            file,
            path: path.to_owned(),
            reserved: std::sync::atomic::AtomicU64::new(0),
            retry: Backoff::new(),
            told: std::sync::atomic::AtomicBool::new(false),
            lane_of: [const { AtomicU8::new(UNDECIDED) }; 64],
        };
        // Lane 0 now, and every lane an earlier writer used (an older build left them sparse):
        // the torn-slot scan and the writers that continue them store into them.
        let _ = writer.reserve(0);
        if !fresh {
            for lane in 1..writer.table.info.lanes {
                if writer.table.head(lane) > 1 {
                    let _ = writer.reserve(lane);
                }
            }
            writer.mark_torn();
        }
        Ok(writer)
    }

    /// The table's fixed facts.
    pub fn info(&self) -> &TableInfo {
        &self.table.info
    }

    /// Bytes available for arguments in one entry.
    pub fn payload_capacity(&self) -> usize {
        self.table.info.slot_size as usize - SLOT_OVERHEAD
    }

    /// The counters of entries lost or cut.
    pub fn counters(&self) -> TableCounters {
        self.table.counters()
    }

    /// The next sequence number `lane` will hand out.
    pub fn head(&self, lane: u32) -> u64 {
        self.table.head(lane)
    }

    /// The lane this thread appends to (0 before its first entry, or when it shares lane 0).
    pub fn lane(&self) -> u32 {
        match thread_index().map(|i| self.lane_of[i as usize].load(Ordering::Relaxed)) {
            Some(l) if l != SHARED => u32::from(l),
            _ => 0,
        }
    }

    /// Whether the shared lane has its space reserved: when not, entries that need it are
    /// dropped and counted as `no_space` (until a retry reserves it).
    pub fn has_space(&self) -> bool {
        self.is_reserved(0)
    }

    /// Whether `lane` may be written now; a cheap check of one word.
    #[inline(always)]
    fn is_reserved(&self, lane: u32) -> bool {
        self.reserved.load(Ordering::Relaxed) & 1 << lane != 0
    }

    /// Reserves `lane` in the file, once. A failure is said on stderr once per table.
    fn reserve(&self, lane: u32) -> io::Result<()> {
        if self.is_reserved(lane) {
            return Ok(());
        }
        let (offset, len) = self.table.lane_bytes(lane);
        match crate::shm::reserve(&self.file, offset, len) {
            Ok(()) => {
                self.reserved.fetch_or(1 << lane, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                if !self.told.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "edgelog: table {}: cannot reserve {len} bytes for lane {lane} ({e}); \
                         {}",
                        self.path.display(),
                        if lane == 0 {
                            "its entries are dropped and counted as no_space until there is room"
                        } else {
                            "the thread writes to the shared lane"
                        }
                    );
                }
                Err(e)
            }
        }
    }

    /// Lane 0 when it has no space reserved: tries again (at most once a second of entry
    /// time, [`Backoff`]); `false` while there is still no room.
    #[cold]
    #[inline(never)]
    fn shared_lane_reserved(&self, time: i64) -> bool {
        if self.retry.due(time) && self.reserve(0).is_err() {
            self.retry.failed(time);
        }
        self.is_reserved(0)
    }

    /// The first entry of thread `index` in this process: claims it an own lane (a free one,
    /// or one whose owner died), reserved in the file and recovered from its last owner, and
    /// remembers it. With no lane to be had it shares lane 0 from now on; with no space to
    /// reserve the lane it shares lane 0 for now and tries again after the back-off.
    #[cold]
    #[inline(never)]
    fn take_lane(&self, index: usize, time: i64) -> u8 {
        let t = &self.table;
        if !self.retry.due(time) {
            return SHARED;
        }
        let me = owner_id();
        for lane in 1..t.info.lanes {
            let owner = owner_word(lane);
            if protocol::claim_lane(&t.words, owner, me, owner_is_dead).is_none() {
                continue;
            }
            if self.reserve(lane).is_err() {
                protocol::release_lane(&t.words, owner, me);
                self.retry.failed(time);
                return SHARED;
            }
            self.recover_lane(lane);
            self.lane_of[index].store(lane as u8, Ordering::Relaxed);
            return lane as u8;
        }
        self.lane_of[index].store(SHARED, Ordering::Relaxed);
        SHARED
    }

    /// Sets right what the last owner of an own lane (this process holds it now) may have
    /// left half-done when it died: a slot stamped busy is marked torn, and the slot index is
    /// derived from the head again (a writer killed between storing the one and the other
    /// left them apart). A head that ran ahead of the last entry is harmless: that sequence
    /// number reads as never written.
    fn recover_lane(&self, lane: u32) {
        let t = &self.table;
        let head = t.head(lane);
        let index = head % t.info.capacity;
        let stored = t.words.get(head_word(lane) + 1) % t.info.capacity;
        for slot in [index, stored] {
            let stamp = t.words.at(t.slot_at(lane, slot));
            let s = stamp.load(Ordering::Acquire);
            if s & BUSY != 0 {
                stamp.store((s & !BUSY) | TORN, Ordering::Release);
                t.bump(W_TORN);
            }
        }
        t.words.set(head_word(lane) + 1, index);
    }

    /// What writers that died left in the table, found at open: own lanes no live process
    /// owns are recovered (see [`recover_lane`](Self::recover_lane)) under a claim held for the
    /// moment; lane 0's busy slots are marked torn if they are still busy, with the same stamp,
    /// a moment later (a live writer of another process finishes a slot in nanoseconds). Only
    /// slots that were written are looked at: the rest may be unallocated pages, which a load
    /// would allocate (and, on a full tmpfs, fault on).
    fn mark_torn(&self) {
        let t = &self.table;
        let me = owner_id();
        for lane in 1..t.info.lanes {
            let owner = owner_word(lane);
            if !self.is_reserved(lane)
                || protocol::claim_lane(&t.words, owner, me, owner_is_dead).is_none()
            {
                continue;
            }
            self.recover_lane(lane);
            protocol::release_lane(&t.words, owner, me);
        }
        if !self.is_reserved(0) {
            return;
        }
        let head = t.head(0);
        let busy: Vec<(usize, u64)> = (head.saturating_sub(t.info.capacity).max(1)..head)
            .map(|seq| t.slot_base(0, seq))
            .map(|base| (base, t.words.at(base).load(Ordering::Acquire)))
            .filter(|(_, s)| s & BUSY != 0)
            .collect();
        if busy.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        for (base, s) in busy {
            if t.words
                .at(base)
                .compare_exchange(s, (s & !BUSY) | TORN, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                t.bump(W_TORN);
            }
        }
    }

    /// For the child of a `fork`: forgets the lanes this process's threads held, which are
    /// the parent's (still writing them), so the child's threads claim their own. Call it in
    /// the child before it writes (the library does, on its first event after the fork),
    /// after [`forked`].
    pub fn after_fork(&self) {
        for l in &self.lane_of {
            l.store(UNDECIDED, Ordering::Relaxed);
        }
    }

    /// Appends an entry to this thread's lane; returns where it went, or `None` if it was
    /// dropped (and counted) because its slot in the shared lane was contended or the table had
    /// no space reserved for it (see the module documentation). `args` longer
    /// than the payload capacity are cut at a word boundary and flagged; they never reach the
    /// next slot.
    ///
    /// No allocation, lock or system call. In a lane of its own: plain loads and stores, two of
    /// them release stores. In the shared lane: one `fetch_add`, one compare-and-swap, relaxed
    /// stores and one release store.
    #[inline]
    pub fn append(
        &self,
        time: i64,
        log_id: u32,
        level: Level,
        mut flags: u8,
        args: &[u8],
    ) -> Option<Written> {
        let t = &self.table;
        let room = (t.slot_words - 3) * 8;
        let args = if args.len() > room {
            flags |= flags::TRUNCATED;
            &args[..room]
        } else {
            args
        };
        let info = u64::from(log_id)
            | u64::from(level.as_u8()) << 32
            | u64::from(flags) << 40
            | (args.len() as u64) << 48;
        // One load decides the lane: the one this thread claimed (reserved when claimed).
        let own = match thread_index() {
            // (The index is below 64; the mask spares a bounds check.)
            Some(i) => match self.lane_of[i as usize & 63].load(Ordering::Relaxed) {
                UNDECIDED => self.take_lane(i as usize, time),
                l => l,
            },
            None => SHARED,
        };
        let lane = if own != SHARED {
            u32::from(own)
        } else if self.is_reserved(0) || self.shared_lane_reserved(time) {
            0
        } else {
            t.bump(W_NO_SPACE);
            return None;
        };
        let claimed = if lane == 0 {
            protocol::claim(&t.words, W_HEAD, |seq| t.slot_base(0, seq)).map(|(seq, base)| {
                t.store_payload(base + 1, time as u64, info, args);
                protocol::publish(&t.words, base, seq);
                seq
            })
        } else {
            let head = head_word(lane);
            let s = protocol::claim_own(&t.words, head, |slot| t.slot_at(lane, slot));
            t.store_payload(s.base + 1, time as u64, info, args);
            protocol::publish_own(&t.words, head, t.info.capacity, s);
            Ok(s.seq)
        };
        match claimed {
            Ok(seq) => {
                if flags & flags::TRUNCATED != 0 {
                    t.bump(W_TRUNCATED);
                }
                Some(Written { lane, seq })
            }
            Err(Lost::Busy) => {
                t.bump(W_LOST_BUSY);
                None
            }
            Err(Lost::Lapped) => {
                t.bump(W_LOST_LAPPED);
                None
            }
        }
    }
}

impl Memory for Words {
    type W = std::sync::atomic::AtomicU64;

    #[inline(always)]
    fn word(&self, i: usize) -> &Self::W {
        self.at(i)
    }

    #[inline(always)]
    fn fence(order: Ordering) {
        fence(order);
    }
}

/// Opens the table file at `path`, or makes it (`true`): under a name of this process's,
/// whole — sized, its header reserved and written — then linked into place, so no process
/// ever opens a half-made table; a process that loses the race to link opens the winner's.
/// A table whose header cannot even be reserved is not made (`NoSpace`).
fn open_or_create(path: &Path, config: &TableConfig) -> Result<(File, bool), TableError> {
    loop {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => return Ok((f, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(TableError::io(path, "opening", e)),
        }
        let tmp = crate::paths::private_temp(path);
        let made = make(&tmp, config);
        let linked = made.and_then(|file| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            // A filesystem without hard links: whole still, if not race-free.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EPERM as i32) => {
                std::fs::rename(&tmp, path)
                    .map(|()| Some(file))
                    .map_err(|e| ("placing", e))
            }
            Err(e) => Err(("placing", e)),
        });
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(Some(file)) => return Ok((file, true)),
            Ok(None) => continue,
            Err((what, e)) => {
                let kind = if crate::shm::is_no_space(&e) {
                    TableErrorKind::NoSpace
                } else {
                    TableErrorKind::Io
                };
                return Err(TableError::new(kind, path, format!("{what}: {e}")));
            }
        }
    }
}

/// A new table file at `tmp`: sized, the header reserved and written.
fn make(tmp: &Path, config: &TableConfig) -> Result<File, (&'static str, io::Error)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(|e| ("creating", e))?;
    file.set_len(config.file_size())
        .map_err(|e| ("sizing", e))?;
    crate::shm::reserve(&file, 0, HEADER_SIZE as u64).map_err(|e| ("reserving the header", e))?;
    let words = Words::map(&file, true).map_err(|e| ("mapping", e))?;
    init_header(&words, config);
    Ok(file)
}

fn init_header(words: &Words, config: &TableConfig) {
    let put = |w: usize, v: u64| words.at(w).store(v, Ordering::Relaxed);
    put(
        W_VERSION,
        u64::from(FORMAT_MAJOR) | u64::from(FORMAT_MINOR) << 32,
    );
    put(W_CAPACITY, config.capacity);
    put(W_SLOT_SIZE, u64::from(config.slot_size));
    put(W_CREATED, Timestamp::now().as_unix_nanos() as u64);
    put(W_CLOCK, 0);
    put(W_LANES, u64::from(config.lanes));
    for lane in 0..config.lanes {
        put(head_word(lane), 1);
    }
    for lane in 1..config.lanes {
        put(head_word(lane) + 1, 1 % config.capacity);
    }
    words.set_name(W_BD, NAME_BYTES, &config.bd);
    words.set_name(W_MODULE, NAME_BYTES, &config.module);
    // The magic goes last: a reader never sees a half-initialised header as a table.
    words.at(W_MAGIC).store(MAGIC, Ordering::Release);
}

/// A table file found in a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// The file name, `<module>.<bd>.log`.
    pub name: String,
    pub bd: String,
    pub path: PathBuf,
}

/// Every `*.log` table under `<run_dir>/<bd>/`, sorted by name. A missing run directory has
/// no tables.
pub fn find_tables(run_dir: &Path) -> io::Result<Vec<TableFile>> {
    let mut found = Vec::new();
    let bds = match std::fs::read_dir(run_dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for bd in bds.flatten().filter(|e| e.path().is_dir()) {
        let bd_name = bd.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(bd.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") {
                found.push(TableFile {
                    name,
                    bd: bd_name.clone(),
                    path: f.path(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Where an appended entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Written {
    pub lane: u32,
    pub seq: u64,
}

/// One entry, copied out of its slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The lane it was written in, and its sequence number there.
    pub lane: u32,
    pub seq: u64,
    /// Nanoseconds since the epoch (clock kind 0).
    pub time: Timestamp,
    pub log_id: u32,
    pub level: Level,
    pub flags: u8,
    /// Encoded arguments; see [`args::decode`].
    pub args: Vec<u8>,
}

impl Entry {
    /// Whether the arguments were cut to fit.
    pub fn truncated(&self) -> bool {
        self.flags & flags::TRUNCATED != 0
    }
}

/// What a slot holds for a sequence number.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The entry, whole.
    Entry(Entry),
    /// Being written right now.
    Busy,
    /// Left half-written by a writer that died.
    Torn,
    /// Overwritten by a newer entry: the reader fell a lap behind.
    Overwritten,
    /// Never written: not yet, or the writer died between taking the number and the slot.
    Missing,
}

/// The reading side of a table: any process, read-only.
#[derive(Debug)]
pub struct TableReader {
    table: Table,
}

impl TableReader {
    /// Opens an existing table read-only.
    pub fn open(path: &Path) -> Result<TableReader, TableError> {
        let file = File::open(path).map_err(|e| TableError::io(path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| TableError::io(path, "reading size", e))?
            .len();
        if len < HEADER_SIZE as u64 {
            return Err(TableError::new(
                TableErrorKind::NotATable,
                path,
                format!("{len} bytes is too short for a table"),
            ));
        }
        let words = Words::map(&file, false).map_err(|e| TableError::io(path, "mapping", e))?;
        Ok(TableReader {
            table: Table::check(words, path, len)?,
        })
    }

    /// The table's fixed facts.
    pub fn info(&self) -> &TableInfo {
        &self.table.info
    }

    /// The counters of entries lost or cut.
    pub fn counters(&self) -> TableCounters {
        self.table.counters()
    }

    /// The next sequence number `lane`'s writer will hand out; its entries are
    /// `oldest(lane)..head(lane)`.
    pub fn head(&self, lane: u32) -> u64 {
        self.table.head(lane)
    }

    /// The oldest sequence number still in `lane`'s ring.
    pub fn oldest(&self, lane: u32) -> u64 {
        self.head(lane)
            .saturating_sub(self.table.info.capacity)
            .max(1)
    }

    /// The lanes, `0..lanes`.
    pub fn lanes(&self) -> std::ops::Range<u32> {
        0..self.table.info.lanes
    }

    /// Entries held, all lanes together.
    pub fn entries(&self) -> u64 {
        self.lanes().map(|l| self.head(l) - self.oldest(l)).sum()
    }

    /// Every entry the table holds, oldest first (by time, then lane and sequence).
    pub fn all(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .lanes()
            .flat_map(|l| (self.oldest(l)..self.head(l)).map(move |s| (l, s)))
            .filter_map(|(l, s)| match self.read(l, s) {
                Slot::Entry(e) => Some(e),
                _ => None,
            })
            .collect();
        sort_by_time(&mut out);
        out
    }

    /// The newest entry of any lane.
    pub fn newest(&self) -> Option<Entry> {
        self.lanes()
            .filter(|&l| self.head(l) > 1)
            .filter_map(|l| match self.read(l, self.head(l) - 1) {
                Slot::Entry(e) => Some(e),
                _ => None,
            })
            .max_by_key(|e| (e.time, e.lane, e.seq))
    }

    /// Reads the slot of `seq` in `lane`.
    pub fn read(&self, lane: u32, seq: u64) -> Slot {
        let t = &self.table;
        let base = t.slot_base(lane, seq);
        let copied = protocol::read(&t.words, base, seq, |w| {
            let time = w.get(base + 1);
            let info = w.get(base + 2);
            let len = ((info >> 48) as usize).min((t.slot_words - 3) * 8);
            let mut args = Vec::with_capacity(len);
            for k in 0..len.div_ceil(8) {
                args.extend_from_slice(&w.get(base + 3 + k).to_le_bytes());
            }
            args.truncate(len);
            (time, info, args)
        });
        match copied {
            Read::Entry((time, info, args)) => Slot::Entry(Entry {
                lane,
                seq,
                time: Timestamp::from_unix_nanos(time as i64),
                log_id: info as u32,
                level: Level::from_u8((info >> 32) as u8 & 7).unwrap_or(Level::Debug),
                flags: (info >> 40) as u8,
                args,
            }),
            Read::Busy => Slot::Busy,
            Read::Torn => Slot::Torn,
            Read::Overwritten => Slot::Overwritten,
            Read::Missing => Slot::Missing,
        }
    }
}

/// Entries in the order readers show them: by time, then lane and sequence number.
fn sort_by_time(entries: &mut [Entry]) {
    entries.sort_by_key(|e| (e.time, e.lane, e.seq));
}

/// A position in a table for following it (`tail -f`): it reads each entry once, each lane in
/// order, and when a writer laps it, it says how many entries it missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Per lane: the next sequence number to read.
    next: Vec<u64>,
    /// Per lane: polls in a row that found the next slot busy or unwritten.
    stalled: Vec<u32>,
}

/// Polls a cursor waits on a slot that stays busy or unwritten before it gives the slot up as
/// torn (its writer died mid-entry).
pub const STALL_POLLS: u32 = 100;

/// What one [`Cursor::poll`] found.
#[derive(Debug, Default, PartialEq)]
pub struct Poll {
    /// By time, then lane and sequence number.
    pub entries: Vec<Entry>,
    /// Entries overwritten before the cursor reached them.
    pub lapped: u64,
    /// Sequence numbers found torn or never written.
    pub torn: u64,
}

impl Cursor {
    fn with(reader: &TableReader, next: impl Fn(u32) -> u64) -> Cursor {
        Cursor {
            next: reader.lanes().map(next).collect(),
            stalled: reader.lanes().map(|_| 0).collect(),
        }
    }

    /// A cursor at the oldest entry still in the table.
    pub fn at_oldest(reader: &TableReader) -> Cursor {
        Cursor::with(reader, |l| reader.oldest(l))
    }

    /// A cursor that will see only entries written from now on.
    pub fn at_head(reader: &TableReader) -> Cursor {
        Cursor::with(reader, |l| reader.head(l))
    }

    /// A cursor at a saved [`position`](Self::position) (a checkpoint); a lane it does not
    /// name is read from its beginning.
    pub fn at(reader: &TableReader, position: &[u64]) -> Cursor {
        Cursor::with(reader, |l| {
            position.get(l as usize).copied().unwrap_or(1).max(1)
        })
    }

    /// Per lane, the next sequence number this cursor will read.
    pub fn position(&self) -> &[u64] {
        &self.next
    }

    /// Whether a lane has entries the cursor has not read.
    pub fn behind(&self, reader: &TableReader) -> bool {
        reader.lanes().any(|l| {
            self.next
                .get(l as usize)
                .is_some_and(|&n| n < reader.head(l))
        })
    }

    /// Reads up to `max` new entries of each lane. Stops a lane before a slot that is still
    /// being written, so the next poll picks it up; a slot that stays busy or unwritten for
    /// [`STALL_POLLS`] polls, and a slot marked torn, is skipped and counted.
    pub fn poll(&mut self, reader: &TableReader, max: usize) -> Poll {
        let mut out = Poll::default();
        for lane in reader.lanes() {
            let (Some(next), Some(stalled)) = (
                self.next.get_mut(lane as usize),
                self.stalled.get_mut(lane as usize),
            ) else {
                break;
            };
            let head = reader.head(lane);
            let oldest = reader.oldest(lane);
            if *next < oldest {
                out.lapped += oldest - *next;
                *next = oldest;
            }
            let mut taken = 0;
            while *next < head && taken < max {
                match reader.read(lane, *next) {
                    Slot::Entry(e) => {
                        out.entries.push(e);
                        taken += 1;
                    }
                    Slot::Busy | Slot::Missing if *stalled < STALL_POLLS => {
                        *stalled += 1;
                        break;
                    }
                    Slot::Busy | Slot::Missing | Slot::Torn => out.torn += 1,
                    Slot::Overwritten => out.lapped += 1,
                }
                *stalled = 0;
                *next += 1;
            }
        }
        sort_by_time(&mut out.entries);
        out
    }
}

#[cfg(test)]
mod tests;
