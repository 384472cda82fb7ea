//! The disk queue: a segmented append-only log with per-consumer cursors.
//!
//! ```text
//! <dir>/00000000000000000001.seg      segments, named by their first sequence number
//! <dir>/00000000000000004097.seg      (the last one is appended to; the others are sealed)
//! <dir>/cursors/<consumer>            each consumer's acknowledged prefix
//!
//! segment = header record*
//!   header  (32 B): "EDGELOGQ" | version u32 = 1 | 0 u32 | first_seq u64 | crc32 u32 | 0 u32
//!   record  (16 B + len): len u32 | crc32 u32 | seq u64 | payload[len]
//!                   crc32 covers seq, len (both little-endian) and the payload
//! cursor (24 B): "ELQC" | version u32 = 1 | acked u64 | crc32 u32 (of the 16 bytes before) | 0 u32
//! ```
//!
//! All integers are little-endian. Sequence numbers run on from segment to segment without a
//! gap, so a record's place is known from its segment's name, and every record says its own
//! number, so a record that is intact but in the wrong place is caught too.
//!
//! **Writing.** An append frames its whole batch in memory and writes it with one `write`;
//! then the fsync policy decides: `always` syncs before `append` returns (the batch is one
//! group commit), `every` syncs when the interval has passed (and on [`Queue::sync`]),
//! `never` leaves it to the kernel. [`Queue::durable_seq`] says how far a crash cannot reach.
//! A segment that would grow past `segment_bytes` is sealed (synced) and a new one started.
//!
//! **Recovery** on open reads every segment and checks every header, checksum and sequence
//! number. The last segment's tail after its last valid record is a write the crash cut short:
//! it is truncated away. A bad record in a sealed segment is corruption: the rest of that
//! segment is not trusted and not read (the records are reported lost), since replaying a
//! corrupt record as valid is the one thing a queue must never do. What was found is returned
//! as a [`Recovery`]. A bad record met while reading (the disk changed under the queue) is
//! treated the same way, and the active segment is sealed if it was the one. Lost records are
//! counted (`QueueStats::corrupt`) and become a gap that every cursor passes, so a corrupt
//! record never holds a consumer's acknowledged prefix back (nothing acknowledged is sent
//! again after a restart, and a full queue cannot wedge on it).
//!
//! **Acknowledgements** move a consumer's cursor over its acknowledged prefix. Cursors are
//! written (to a temporary, synced, renamed, directory synced) per the same fsync policy, and
//! always before a segment is deleted: a sealed segment goes only when every consumer's
//! synced cursor is past its last record. After a restart each consumer starts after its
//! cursor, so what was sent but not acknowledged is sent again — at least once, never lost.
//!
//! **Quota.** `max_bytes` bounds the segments' total size. When a batch does not fit,
//! `block` and `drop_newest` take what fits and refuse the rest (the caller waits, or the
//! records are counted as dropped), and `drop_oldest` deletes the oldest segments, moving
//! every consumer's cursor past them and counting, per consumer, the records it had not
//! acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Acks, Appended, Queue, QueueError, QueueStats, Record, WhenFull};

const MAGIC: &[u8; 8] = b"EDGELOGQ";
const CURSOR_MAGIC: &[u8; 4] = b"ELQC";
const VERSION: u32 = 1;
const HEADER: u64 = 32;
const FRAME: u64 = 16;
const CURSOR_LEN: usize = 24;

/// When appended records are synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before `append` returns: a crash loses nothing that was appended.
    Always,
    /// At most this long after an append (and on [`Queue::sync`]).
    Every(Duration),
    /// When the kernel writes back: a power loss may lose the last seconds.
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;

    /// `always`, `never`, or an interval in milliseconds (`"100ms"`, `"100"`).
    fn from_str(s: &str) -> Result<Fsync, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            ms => ms
                .trim_end_matches("ms")
                .parse::<u64>()
                .map(|n| Fsync::Every(Duration::from_millis(n)))
                .map_err(|_| {
                    format!("unknown fsync policy {s:?}: expected always, never or milliseconds such as \"100ms\"")
                }),
        }
    }
}

/// How a disk queue behaves.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// A segment is sealed when it would grow past this.
    pub segment_bytes: u64,
    /// The quota for all segments together.
    pub max_bytes: u64,
    pub fsync: Fsync,
    pub when_full: WhenFull,
    /// The largest record accepted.
    pub max_record: usize,
}

impl Default for DiskOptions {
    fn default() -> DiskOptions {
        DiskOptions {
            segment_bytes: 16 << 20,
            max_bytes: 512 << 20,
            fsync: Fsync::Every(Duration::from_millis(100)),
            when_full: WhenFull::Block,
            max_record: 1 << 20,
        }
    }
}

/// What opening a queue found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    /// Records found intact.
    pub records: u64,
    /// Bytes cut from the last segment's tail (a write a crash interrupted).
    pub truncated_bytes: u64,
    /// Records that could not be trusted (corrupt sealed segments, numbering gaps).
    pub lost_records: u64,
    /// What was wrong, one line each, with the file.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
struct Segment {
    first_seq: u64,
    /// Valid records.
    count: u64,
    /// Bytes in the file up to the end of the last valid record.
    bytes: u64,
    path: PathBuf,
}

impl Segment {
    fn last_seq(&self) -> u64 {
        self.first_seq + self.count - 1
    }
}

/// Where a consumer's reading is: a segment's file, its offset, the record found there.
#[derive(Debug)]
struct Reader {
    first_seq: u64,
    file: BufReader<File>,
    next: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    /// `<dir>/lock`, locked exclusively for as long as the queue is open: one writer only.
    _lock: File,
    /// The last append failed for want of room (the disk is full): see [`DiskQueue::unstarve`].
    starved: bool,
    /// The active segment was emptied by [`DiskQueue::unstarve`]: the next append starts a
    /// new one.
    needs_roll: bool,
    opts: DiskOptions,
    segments: Vec<Segment>,
    active: File,
    next_seq: u64,
    durable_seq: u64,
    last_sync: Instant,
    consumers: Vec<Acks>,
    /// Acknowledged prefixes as last written to the cursor files.
    saved: Vec<u64>,
    last_cursor_write: Instant,
    readers: Vec<Option<Reader>>,
    total_bytes: u64,
    dropped_newest: u64,
    /// Records lost to corruption: found at recovery, or when a read met a bad record.
    corrupt: u64,
    frame: Vec<u8>,
    /// The newest records, as appended, up to [`TAIL_BYTES`]: a consumer that keeps up reads
    /// them from here, not back from the file (see [`Tail`]).
    tail: Tail,
}

/// What the tail may hold, in payload bytes.
const TAIL_BYTES: usize = 4 << 20;

/// The newest appended records, contiguous in sequence numbers, kept in memory after they
/// were written: reading what was just written costs a reference count instead of a read and
/// a checksum. Only a read position inside it is served from it; the file stays the truth
/// (recovery, lagging consumers).
#[derive(Debug, Default)]
struct Tail {
    records: std::collections::VecDeque<Record>,
    bytes: usize,
}

impl Tail {
    fn push(&mut self, first_seq: u64, records: &[&[u8]]) {
        if records.is_empty() {
            return;
        }
        if self.records.back().is_some_and(|r| r.seq + 1 != first_seq) {
            self.clear();
        }
        for (seq, payload) in (first_seq..).zip(crate::shared_slices(records)) {
            self.bytes += payload.len();
            self.records.push_back(Record { seq, payload });
        }
        while self.bytes > TAIL_BYTES {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(r) = self.records.pop_front() {
            self.bytes -= r.payload.len();
        }
    }

    /// Drops what every consumer has acknowledged (through `seq`).
    fn trim(&mut self, seq: u64) {
        while self.records.front().is_some_and(|r| r.seq <= seq) {
            self.pop();
        }
    }

    fn clear(&mut self) {
        self.records.clear();
        self.bytes = 0;
    }

    /// The index of `seq`, if the tail holds it.
    fn find(&self, seq: u64) -> Option<usize> {
        let first = self.records.front()?.seq;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        (i < self.records.len()).then_some(i)
    }
}

/// Whether a write failed for want of room (ENOSPC, EDQUOT).
fn no_room(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122))
}

/// Takes `<dir>/lock` exclusively (advisory, released when the file closes — with the process,
/// even after `kill -9`): a second writer, in this process or another, would corrupt the
/// queue, so it is refused.
fn lock(dir: &Path) -> Result<File, QueueError> {
    let path = dir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| QueueError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(QueueError::InUse(dir.display().to_string())),
        Err(fs::TryLockError::Error(e)) => Err(QueueError::io(&path, e)),
    }
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

fn header(first_seq: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn frame(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads one record at the reader's position. `Ok(None)` at a clean end of data.
fn read_record(
    r: &mut impl Read,
    expect_seq: u64,
    max_record: usize,
    payload: &mut Vec<u8>,
) -> Result<Option<()>, String> {
    let mut h = [0u8; FRAME as usize];
    match read_full(r, &mut h) {
        Ok(0) => return Ok(None),
        Ok(n) if n < h.len() => return Err(format!("record {expect_seq}: header cut short")),
        Ok(_) => {}
        Err(e) => return Err(format!("record {expect_seq}: {e}")),
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let seq = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
    if len > max_record {
        return Err(format!("record {expect_seq}: length {len} is impossible"));
    }
    payload.clear();
    payload.resize(len, 0);
    match read_full(r, payload) {
        Ok(n) if n == len => {}
        Ok(_) => return Err(format!("record {expect_seq}: payload cut short")),
        Err(e) => return Err(format!("record {expect_seq}: {e}")),
    }
    if record_crc(seq, payload) != crc {
        return Err(format!("record {expect_seq}: checksum mismatch"));
    }
    if seq != expect_seq {
        return Err(format!("record {expect_seq}: says it is record {seq}"));
    }
    Ok(Some(()))
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What a scan of one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub path: PathBuf,
    pub first_seq: u64,
    pub records: u64,
    /// End of the last valid record.
    pub valid_bytes: u64,
    pub file_bytes: u64,
    /// The first thing wrong, if anything.
    pub problem: Option<String>,
}

/// Reads a segment and checks every record (read-only).
pub fn scan_segment(path: &Path, max_record: usize) -> Result<SegmentScan, QueueError> {
    let name_seq = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let file = File::open(path).map_err(|e| QueueError::io(path, e))?;
    let file_bytes = file.metadata().map_err(|e| QueueError::io(path, e))?.len();
    let mut r = BufReader::with_capacity(256 * 1024, file);
    let mut scan = SegmentScan {
        path: path.to_owned(),
        first_seq: name_seq,
        records: 0,
        valid_bytes: 0,
        file_bytes,
        problem: None,
    };
    let mut h = [0u8; HEADER as usize];
    let n = read_full(&mut r, &mut h).map_err(|e| QueueError::io(path, e))?;
    if n < h.len() || h != header(name_seq) {
        scan.problem = Some(if n < h.len() {
            "header cut short".to_owned()
        } else {
            "bad header (not a segment, another version, or not the segment its name says)"
                .to_owned()
        });
        return Ok(scan);
    }
    scan.valid_bytes = HEADER;
    let mut payload = Vec::new();
    loop {
        match read_record(&mut r, name_seq + scan.records, max_record, &mut payload) {
            Ok(Some(())) => {
                scan.records += 1;
                scan.valid_bytes += FRAME + payload.len() as u64;
            }
            Ok(None) => break,
            Err(what) => {
                scan.problem = Some(what);
                break;
            }
        }
    }
    Ok(scan)
}

/// The segment files of `dir`, by first sequence number.
fn segment_files(dir: &Path) -> Result<Vec<PathBuf>, QueueError> {
    let mut out: Vec<(u64, PathBuf)> = Vec::new();
    for e in fs::read_dir(dir)
        .map_err(|e| QueueError::io(dir, e))?
        .flatten()
    {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "seg")
            && let Some(seq) = p
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
        {
            out.push((seq, p));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| QueueError::io(dir, e))
}

/// Reads a cursor file: `Ok(None)` if there is none, `Err` if it is damaged.
pub fn read_cursor(path: &Path) -> Result<Option<u64>, String> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if bytes.len() != CURSOR_LEN
        || &bytes[..4] != CURSOR_MAGIC
        || bytes[4..8] != VERSION.to_le_bytes()
        || crc32fast::hash(&bytes[..16]).to_le_bytes() != bytes[16..20]
    {
        return Err(format!("{}: damaged cursor", path.display()));
    }
    Ok(Some(u64::from_le_bytes(
        bytes[8..16].try_into().unwrap_or_default(),
    )))
}

fn write_cursor(dir: &Path, name: &str, acked: u64) -> Result<(), QueueError> {
    let mut b = [0u8; CURSOR_LEN];
    b[..4].copy_from_slice(CURSOR_MAGIC);
    b[4..8].copy_from_slice(&VERSION.to_le_bytes());
    b[8..16].copy_from_slice(&acked.to_le_bytes());
    let crc = crc32fast::hash(&b[..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&b)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| QueueError::io(&path, e))
}

impl DiskQueue {
    /// Scans the segment files in order and applies the recovery rules (see the module
    /// documentation): a gap is counted, a torn tail cut off, an unreadable segment moved
    /// aside, an empty one removed. What it finds goes into `rec`.
    fn recover_segments(
        dir: &Path,
        opts: &DiskOptions,
        rec: &mut Recovery,
    ) -> Result<Vec<Segment>, QueueError> {
        let files = segment_files(dir)?;
        let mut segments: Vec<Segment> = Vec::new();
        for (i, path) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            let scan = scan_segment(path, opts.max_record)?;
            rec.records += scan.records;
            if let Some(prev) = segments.last() {
                let expected = prev.first_seq + prev.count;
                if scan.first_seq != expected {
                    rec.lost_records += scan.first_seq.saturating_sub(expected);
                    rec.problems.push(format!(
                        "{}: records {expected} to {} are missing",
                        path.display(),
                        scan.first_seq.saturating_sub(1)
                    ));
                }
            }
            if let Some(problem) = &scan.problem {
                if last && scan.file_bytes < HEADER {
                    // A segment whose creation the crash interrupted: it holds nothing.
                    fs::remove_file(path).map_err(|e| QueueError::io(path, e))?;
                    rec.problems.push(format!(
                        "{}: incomplete new segment removed",
                        path.display()
                    ));
                    continue;
                }
                if last && scan.valid_bytes >= HEADER {
                    // A write the crash cut short: cut it off.
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| QueueError::io(path, e))?;
                    f.set_len(scan.valid_bytes)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| QueueError::io(path, e))?;
                    rec.truncated_bytes += scan.file_bytes - scan.valid_bytes;
                    rec.problems.push(format!(
                        "{}: torn tail of {} bytes truncated ({problem})",
                        path.display(),
                        scan.file_bytes - scan.valid_bytes
                    ));
                } else if scan.valid_bytes < HEADER {
                    // Not a segment we can read at all: keep it aside for inspection.
                    let aside = path.with_extension("corrupt");
                    fs::rename(path, &aside).map_err(|e| QueueError::io(path, e))?;
                    rec.problems.push(format!(
                        "{}: {problem}; moved to {}",
                        path.display(),
                        aside.display()
                    ));
                    continue;
                } else {
                    rec.problems.push(format!(
                        "{}: {problem}; the rest of the segment is not read",
                        path.display()
                    ));
                }
            }
            if scan.records == 0 && !last {
                fs::remove_file(path).map_err(|e| QueueError::io(path, e))?;
                continue;
            }
            segments.push(Segment {
                first_seq: scan.first_seq,
                count: scan.records,
                bytes: scan.valid_bytes,
                path: path.clone(),
            });
        }
        Ok(segments)
    }

    /// Opens (creating if needed) the queue in `dir` for `consumers`, recovering what a crash
    /// left. See the module documentation.
    pub fn open(
        dir: &Path,
        opts: DiskOptions,
        consumers: &[&str],
    ) -> Result<(DiskQueue, Recovery), QueueError> {
        let cursor_dir = dir.join("cursors");
        fs::create_dir_all(&cursor_dir).map_err(|e| QueueError::io(&cursor_dir, e))?;
        let lock = lock(dir)?;
        let mut rec = Recovery::default();
        let mut segments = Self::recover_segments(dir, &opts, &mut rec)?;
        rec.segments = segments.len();

        let first_available = segments.first().map_or(1, |s| s.first_seq);
        let mut next_seq = segments.last().map_or(1, |s| s.first_seq + s.count);
        let mut acks = Vec::new();
        // Consumers without a (sound) cursor file get one at once, so the directory says
        // who reads the queue.
        let mut missing = Vec::new();
        for name in consumers {
            let acked = match read_cursor(&cursor_dir.join(name)) {
                Ok(Some(a)) => a,
                Ok(None) => {
                    missing.push(acks.len());
                    0
                }
                Err(problem) => {
                    // Replaying from the start duplicates; it never loses.
                    rec.problems
                        .push(format!("{problem}; the consumer starts over"));
                    missing.push(acks.len());
                    0
                }
            };
            next_seq = next_seq.max(acked + 1);
            acks.push(Acks::new(name, acked.max(first_available - 1)));
        }

        // The last segment is appended to; without one (or after a gap) a new one starts.
        let needs_new = segments
            .last()
            .is_none_or(|s| s.first_seq + s.count != next_seq);
        if needs_new {
            let s = Self::create_segment(dir, next_seq)?;
            segments.push(s);
        }
        let active_path = &segments[segments.len() - 1].path;
        let active = OpenOptions::new()
            .append(true)
            .open(active_path)
            .map_err(|e| QueueError::io(active_path, e))?;
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut saved: Vec<u64> = acks.iter().map(|a| a.acked).collect();
        for i in missing {
            saved[i] = u64::MAX;
        }
        let mut q = DiskQueue {
            dir: dir.to_owned(),
            _lock: lock,
            starved: false,
            needs_roll: false,
            opts,
            segments,
            active,
            next_seq,
            durable_seq: next_seq - 1,
            last_sync: Instant::now(),
            readers: acks.iter().map(|_| None).collect(),
            consumers: acks,
            saved,
            last_cursor_write: Instant::now(),
            total_bytes,
            dropped_newest: 0,
            corrupt: rec.lost_records,
            frame: Vec::new(),
            tail: Tail::default(),
        };
        for c in 0..q.consumers.len() {
            q.pass_gaps(c);
        }
        q.save_cursors()?;
        q.delete_acknowledged()?;
        Ok((q, rec))
    }

    fn create_segment(dir: &Path, first_seq: u64) -> Result<Segment, QueueError> {
        let path = dir.join(segment_name(first_seq));
        let mut f = File::create(&path).map_err(|e| QueueError::io(&path, e))?;
        f.write_all(&header(first_seq))
            .and_then(|()| f.sync_all())
            .map_err(|e| QueueError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(Segment {
            first_seq,
            count: 0,
            bytes: HEADER,
            path,
        })
    }

    /// Moves `consumer`'s acknowledged prefix over records that are gone for good (a gap
    /// between segments: corrupt records, counted when found), so a gap never holds the cursor:
    /// what follows it is acknowledged as usual and the segments behind it can go.
    fn pass_gaps(&mut self, consumer: usize) {
        let c = &mut self.consumers[consumer];
        loop {
            let next = c.acked + 1;
            if next >= self.next_seq {
                return;
            }
            let idx = self.segments.partition_point(|s| s.first_seq <= next);
            let inside = idx > 0 && {
                let s = &self.segments[idx - 1];
                next < s.first_seq + s.count
            };
            if inside {
                return;
            }
            let Some(following) = self.segments.get(idx) else {
                return;
            };
            c.acked = following.first_seq - 1;
            c.read_next = c.read_next.max(c.acked + 1);
            while c.beyond.remove(&(c.acked + 1)) {
                c.acked += 1;
            }
        }
    }

    /// A read met a bad record at `seq` in segment `idx`: the rest of that segment cannot be
    /// trusted. Its records from `seq` on are counted as corrupt and become a gap the cursors
    /// pass; if it was the active segment, appends go on in a new one.
    fn lose_rest_of_segment(&mut self, idx: usize, seq: u64) -> Result<(), QueueError> {
        let seg = &mut self.segments[idx];
        let end = seg.first_seq + seg.count;
        self.corrupt += end - seq;
        seg.count = seq - seg.first_seq;
        for r in &mut self.readers {
            *r = None;
        }
        if idx + 1 == self.segments.len() {
            self.roll()?;
        }
        for c in 0..self.consumers.len() {
            self.pass_gaps(c);
        }
        Ok(())
    }

    fn active_seg(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    /// Writes the framed records in `self.frame` to the active segment.
    fn write_frame(&mut self, records: u64) -> Result<(), QueueError> {
        if records == 0 {
            return Ok(());
        }
        let path = self.active_seg().path.clone();
        if let Err(e) = self.active.write_all(&self.frame) {
            // Take back whatever part of the batch reached the file.
            let keep = self.active_seg().bytes;
            let _ = self.active.set_len(keep);
            self.frame.clear();
            self.starved = no_room(&e);
            return Err(QueueError::io(&path, e));
        }
        self.starved = false;
        let len = self.frame.len() as u64;
        let seg = self.segments.last_mut().expect("an active segment");
        seg.count += records;
        seg.bytes += len;
        self.total_bytes += len;
        self.next_seq += records;
        self.frame.clear();
        Ok(())
    }

    /// The disk is full and every record is acknowledged: the active segment is all that
    /// holds room, and it could go only once sealed — by an append that cannot happen. So its
    /// records are cut off now (they are all acknowledged: nothing is lost, nothing comes
    /// again after a crash) and the next append starts a new segment.
    fn unstarve(&mut self) -> Result<(), QueueError> {
        let seg = self.segments.last().expect("an active segment");
        if !self.starved || self.needs_roll || self.held() > 0 || seg.count == 0 {
            return Ok(());
        }
        let path = seg.path.clone();
        self.active
            .set_len(HEADER)
            .map_err(|e| QueueError::io(&path, e))?;
        let seg = self.segments.last_mut().expect("an active segment");
        self.total_bytes -= seg.bytes - HEADER;
        seg.bytes = HEADER;
        seg.count = 0;
        for r in &mut self.readers {
            *r = None;
        }
        self.tail.clear();
        self.needs_roll = true;
        Ok(())
    }

    /// Seals the active segment and starts the next one.
    fn roll(&mut self) -> Result<(), QueueError> {
        if self.opts.fsync != Fsync::Never {
            let path = self.active_seg().path.clone();
            self.active
                .sync_data()
                .map_err(|e| QueueError::io(&path, e))?;
            self.durable_seq = self.next_seq - 1;
        }
        let seg = Self::create_segment(&self.dir, self.next_seq)?;
        self.active = OpenOptions::new()
            .append(true)
            .open(&seg.path)
            .map_err(|e| QueueError::io(&seg.path, e))?;
        self.total_bytes += seg.bytes;
        self.segments.push(seg);
        Ok(())
    }

    /// Writes the cursors that moved, synced, so segments behind them may go.
    fn save_cursors(&mut self) -> Result<(), QueueError> {
        let dir = self.dir.join("cursors");
        let mut wrote = false;
        for (c, saved) in self.consumers.iter().zip(self.saved.iter_mut()) {
            if c.acked != *saved {
                write_cursor(&dir, &c.name, c.acked)?;
                *saved = c.acked;
                wrote = true;
            }
        }
        if wrote {
            sync_dir(&dir)?;
        }
        self.last_cursor_write = Instant::now();
        Ok(())
    }

    /// Deletes sealed segments every consumer has acknowledged, cursors saved first.
    fn delete_acknowledged(&mut self) -> Result<(), QueueError> {
        let done = self
            .consumers
            .iter()
            .map(|c| c.acked)
            .min()
            .unwrap_or(u64::MAX);
        self.tail.trim(done);
        let n = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.count == 0 || s.last_seq() <= done)
            .count();
        if n == 0 {
            return Ok(());
        }
        self.save_cursors()?;
        self.remove_oldest(n)
    }

    fn remove_oldest(&mut self, n: usize) -> Result<(), QueueError> {
        for seg in self.segments.drain(..n) {
            fs::remove_file(&seg.path).map_err(|e| QueueError::io(&seg.path, e))?;
            self.total_bytes -= seg.bytes;
            for r in &mut self.readers {
                if r.as_ref().is_some_and(|r| r.first_seq == seg.first_seq) {
                    *r = None;
                }
            }
        }
        sync_dir(&self.dir)
    }

    /// Makes room for `need` bytes by evicting the oldest segments (`drop_oldest`); false if
    /// even an empty queue could not hold them.
    fn evict_for(&mut self, need: u64) -> Result<bool, QueueError> {
        while self.total_bytes + need > self.opts.max_bytes {
            if self.segments.len() == 1 {
                if self.active_seg().count == 0 {
                    return Ok(false);
                }
                self.roll()?;
            }
            let oldest = self.segments[0].clone();
            if oldest.count > 0 {
                for c in &mut self.consumers {
                    c.evict_through(oldest.last_seq());
                }
            }
            self.save_cursors()?;
            self.remove_oldest(1)?;
        }
        Ok(true)
    }

    fn maybe_sync(&mut self) -> Result<(), QueueError> {
        match self.opts.fsync {
            Fsync::Always => self.sync(),
            Fsync::Every(d) if self.last_sync.elapsed() >= d => self.sync(),
            Fsync::Every(_) => Ok(()),
            Fsync::Never => {
                self.durable_seq = self.next_seq - 1;
                Ok(())
            }
        }
    }

    /// Positions `consumer`'s reader at `seq` (which exists).
    fn seek(&mut self, consumer: usize, seq: u64) -> Result<(), QueueError> {
        let idx = self.segments.partition_point(|s| s.first_seq <= seq) - 1;
        let seg = &self.segments[idx];
        // The reader is usable only where it is, in the segment that holds `seq` (a reader
        // left at the end of a segment that was since sealed is not).
        if self.readers[consumer]
            .as_ref()
            .is_some_and(|r| r.next == seq && r.first_seq == seg.first_seq)
        {
            return Ok(());
        }
        let mut file = BufReader::with_capacity(
            64 * 1024,
            File::open(&seg.path).map_err(|e| QueueError::io(&seg.path, e))?,
        );
        file.seek(SeekFrom::Start(HEADER))
            .map_err(|e| QueueError::io(&seg.path, e))?;
        let mut at = seg.first_seq;
        let mut h = [0u8; FRAME as usize];
        while at < seq {
            file.read_exact(&mut h)
                .map_err(|e| QueueError::io(&seg.path, e))?;
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            file.seek_relative(i64::from(len))
                .map_err(|e| QueueError::io(&seg.path, e))?;
            at += 1;
        }
        self.readers[consumer] = Some(Reader {
            first_seq: seg.first_seq,
            file,
            next: seq,
        });
        Ok(())
    }
}

impl Queue for DiskQueue {
    fn append(&mut self, records: &[&[u8]]) -> Result<Appended, QueueError> {
        let mut out = Appended {
            first_seq: self.next_seq,
            ..Appended::default()
        };
        // A full disk with nothing left to send: make room before trying again.
        self.unstarve()?;
        if self.needs_roll {
            // After `unstarve`: the emptied segment is sealed and goes.
            self.roll()?;
            self.needs_roll = false;
            self.delete_acknowledged()?;
        }
        let mut pending = 0u64;
        for (i, r) in records.iter().enumerate() {
            if r.len() > self.opts.max_record {
                self.write_frame(pending)?;
                return Err(QueueError::TooLarge(r.len(), self.opts.max_record));
            }
            let need = FRAME + r.len() as u64;
            let active = self.active_seg();
            if active.count + pending > 0
                && active.bytes + self.frame.len() as u64 + need > self.opts.segment_bytes
            {
                self.write_frame(pending)?;
                pending = 0;
                self.roll()?;
            }
            let fits = self.total_bytes + self.frame.len() as u64 + need <= self.opts.max_bytes;
            let fits = fits
                || (self.opts.when_full == WhenFull::DropOldest && {
                    self.write_frame(pending)?;
                    pending = 0;
                    self.evict_for(need)?
                });
            if !fits {
                out.refused = records.len() - i;
                if self.opts.when_full == WhenFull::DropNewest {
                    self.dropped_newest += out.refused as u64;
                }
                break;
            }
            let seq = self.next_seq + pending;
            frame(&mut self.frame, seq, r);
            pending += 1;
            out.taken += 1;
        }
        self.write_frame(pending)?;
        self.tail.push(out.first_seq, &records[..out.taken]);
        self.maybe_sync()?;
        Ok(out)
    }

    fn read(
        &mut self,
        consumer: usize,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError> {
        let c = crate::acks_mut(&mut self.consumers, consumer)?;
        // Records acknowledged out of order may since have joined the prefix.
        let mut seq = c.read_next.max(c.acked + 1).max(self.segments[0].first_seq);
        if let Some(from) = self.tail.find(seq) {
            let c = &mut self.consumers[consumer];
            let mut out = Vec::new();
            let mut bytes = 0;
            for r in self.tail.records.range(from..) {
                if out.len() >= max_records
                    || (!out.is_empty() && bytes + r.payload.len() > max_bytes)
                {
                    break;
                }
                seq = r.seq + 1;
                if c.beyond.contains(&r.seq) {
                    continue;
                }
                bytes += r.payload.len();
                out.push(r.clone());
            }
            c.read_next = seq;
            // The file reader is not where this read ended.
            self.readers[consumer] = None;
            return Ok(out);
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut payload = Vec::new();
        while seq < self.next_seq && out.len() < max_records {
            let idx = self.segments.partition_point(|s| s.first_seq <= seq) - 1;
            let seg_end = self.segments[idx].first_seq + self.segments[idx].count;
            if seq >= seg_end {
                // A gap (records lost before a restart): on to the next segment.
                match self.segments.get(idx + 1) {
                    Some(next) => {
                        seq = next.first_seq;
                        continue;
                    }
                    None => break,
                }
            }
            self.seek(consumer, seq)?;
            let reader = self.readers[consumer].as_mut().expect("positioned");
            while seq < seg_end && out.len() < max_records {
                let found = read_record(&mut reader.file, seq, self.opts.max_record, &mut payload);
                if !matches!(found, Ok(Some(()))) {
                    // Never replayed, never a wedge: the rest of the segment is lost, counted,
                    // and the read goes on after it.
                    self.lose_rest_of_segment(idx, seq)?;
                    break;
                }
                reader.next = seq + 1;
                let acked = self.consumers[consumer].beyond.contains(&seq);
                seq += 1;
                if acked {
                    continue;
                }
                if !out.is_empty() && bytes + payload.len() > max_bytes {
                    // Put it back for the next read.
                    seq -= 1;
                    self.readers[consumer] = None;
                    self.consumers[consumer].read_next = seq;
                    return Ok(out);
                }
                bytes += payload.len();
                out.push(Record {
                    seq: seq - 1,
                    payload: std::mem::take(&mut payload).into(),
                });
            }
            if seq == seg_end && seq < self.next_seq {
                // On to the next segment.
                self.readers[consumer] = None;
            }
        }
        self.consumers[consumer].read_next = seq;
        Ok(out)
    }

    fn ack(&mut self, consumer: usize, seqs: &[u64]) -> Result<(), QueueError> {
        let next = self.next_seq;
        let c = crate::acks_mut(&mut self.consumers, consumer)?;
        if !c.ack(seqs, next) {
            return Ok(());
        }
        self.pass_gaps(consumer);
        let due = match self.opts.fsync {
            Fsync::Always => true,
            Fsync::Every(d) => self.last_cursor_write.elapsed() >= d,
            Fsync::Never => false,
        };
        if due {
            self.save_cursors()?;
        }
        self.delete_acknowledged()?;
        self.unstarve()
    }

    fn rewind(&mut self, consumer: usize) -> Result<(), QueueError> {
        crate::acks_mut(&mut self.consumers, consumer)?.rewind();
        self.readers[consumer] = None;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), QueueError> {
        let path = self.active_seg().path.clone();
        self.active
            .sync_data()
            .map_err(|e| QueueError::io(&path, e))?;
        self.durable_seq = self.next_seq - 1;
        self.last_sync = Instant::now();
        self.save_cursors()
    }

    fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    fn held(&self) -> u64 {
        let oldest = self.consumers.iter().map(|c| c.acked).min().unwrap_or(0);
        (self.next_seq - 1).saturating_sub(oldest)
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            records: self.held(),
            bytes: self.total_bytes,
            next_seq: self.next_seq,
            dropped_newest: self.dropped_newest,
            corrupt: self.corrupt,
            consumers: self
                .consumers
                .iter()
                .map(|c| c.stats(self.next_seq))
                .collect(),
        }
    }
}

impl Drop for DiskQueue {
    fn drop(&mut self) {
        // Best effort: a clean stop leaves nothing to redeliver.
        let _ = self.sync();
    }
}

/// What [`verify`] found in a queue directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub segments: Vec<SegmentScan>,
    /// Consumer name and acknowledged prefix (or what is wrong with its cursor).
    pub cursors: Vec<(String, Result<u64, String>)>,
    /// Problems, one line each; empty when the queue is sound.
    pub problems: Vec<String>,
}

/// Checks a queue directory without changing it: every segment's header, records, checksums
/// and numbering, and every cursor. For `edgelog queue verify`.
pub fn verify(dir: &Path) -> Result<Verification, QueueError> {
    let mut v = Verification::default();
    let files = segment_files(dir)?;
    let mut expected: Option<u64> = None;
    for (i, path) in files.iter().enumerate() {
        let scan = scan_segment(path, usize::MAX >> 1)?;
        if let Some(e) = expected
            && scan.first_seq != e
        {
            v.problems.push(format!(
                "{}: starts at record {} but the previous segment ends at {}",
                path.display(),
                scan.first_seq,
                e.saturating_sub(1)
            ));
        }
        if let Some(p) = &scan.problem {
            let last = i + 1 == files.len();
            v.problems.push(format!(
                "{}: {p} after {} good records{}",
                path.display(),
                scan.records,
                if last {
                    " (a torn tail: opening the queue truncates it)"
                } else {
                    " (corrupt: the rest of the segment is unusable)"
                }
            ));
        }
        // After a corrupt segment its true end is unknown: the next one starts where it does.
        expected = scan
            .problem
            .is_none()
            .then_some(scan.first_seq + scan.records);
        v.segments.push(scan);
    }
    let cursor_dir = dir.join("cursors");
    if let Ok(entries) = fs::read_dir(&cursor_dir) {
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".tmp"))
            .collect();
        names.sort();
        for name in names {
            let c = read_cursor(&cursor_dir.join(&name)).map(|a| a.unwrap_or(0));
            if let Err(e) = &c {
                v.problems.push(e.clone());
            }
            v.cursors.push((name, c));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
