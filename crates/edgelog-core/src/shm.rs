//! A file mapped as an array of `AtomicU64`, shared between threads and processes.
//!
//! Tables and the level control block live in files that several processes map at once. Every
//! access goes through atomic operations — that is what makes concurrent access to shared
//! memory defined — and on the platforms we run on, relaxed loads and stores are plain moves.

use std::fs::File;
use std::io;
use std::os::fd::AsFd as _;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocates the file's pages in `offset..offset + len` (`fallocate`), so that a first write
/// into them through a mapping cannot fault. A sparse file on a full tmpfs is the danger: the
/// first store into a page it cannot allocate raises SIGBUS and kills the process, so every
/// format module reserves a region before it writes into it, and treats a failure as "no
/// space" rather than going ahead. Idempotent: pages already allocated cost nothing again. A
/// filesystem without `fallocate` (it answers `EOPNOTSUPP`) cannot reserve; its writes behave
/// as before.
pub(crate) fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::{FallocateFlags, fallocate};
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::other("region past the largest file offset"));
    };
    if len == 0 {
        return Ok(());
    }
    loop {
        match fallocate(file.as_fd(), FallocateFlags::empty(), offset, len) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EOPNOTSUPP) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether an I/O error means the filesystem is out of space (or quota).
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(c) if c == nix::errno::Errno::ENOSPC as i32 || c == nix::errno::Errno::EDQUOT as i32
    )
}

/// The mapped words of a file.
#[derive(Debug)]
pub(crate) struct Words {
    ptr: NonNull<AtomicU64>,
    len: usize,
    // Keeps the mapping alive; all access goes through `ptr` as atomics.
    _map: memmap2::MmapRaw,
}

// SAFETY: the mapping is only ever accessed through `AtomicU64` operations, which are safe to
// perform from any thread (and any process) concurrently; `MmapRaw` itself is Send + Sync.
unsafe impl Send for Words {}
// SAFETY: as above.
unsafe impl Sync for Words {}

impl Words {
    /// Maps all of `file`, writable or read-only.
    pub(crate) fn map(file: &File, writable: bool) -> io::Result<Words> {
        let opts = memmap2::MmapOptions::new();
        let map = if writable {
            opts.map_raw(file)
        } else {
            opts.map_raw_read_only(file)
        }?;
        let len = map.len() / 8;
        let ptr = NonNull::new(map.as_mut_ptr().cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mapping returned null"))?;
        Ok(Words {
            ptr,
            len,
            _map: map,
        })
    }

    /// Words in the mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Word `i`. Panics past the end, which would be a bug in a format module.
    #[inline(always)]
    pub(crate) fn at(&self, i: usize) -> &AtomicU64 {
        &self.range(i, 1)[0]
    }

    /// Words `start..start + n`, checked once (an entry's slot: one check, not one per word).
    #[inline(always)]
    pub(crate) fn range(&self, start: usize, n: usize) -> &[AtomicU64] {
        assert!(
            start <= self.len && n <= self.len - start,
            "words {start}..{} out of {}",
            start + n,
            self.len
        );
        // SAFETY: the range is in bounds of the mapping (checked above), the mapping is
        // page-aligned so every word is 8-aligned, it lives as long as `self`, and it is only
        // accessed atomically.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), n) }
    }

    /// A relaxed load of word `i`.
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.at(i).load(Ordering::Relaxed)
    }

    /// A relaxed store to word `i`.
    pub(crate) fn set(&self, i: usize, v: u64) {
        self.at(i).store(v, Ordering::Relaxed);
    }

    /// A NUL-padded name of `bytes` bytes starting at word `first`.
    pub(crate) fn name(&self, first: usize, bytes: usize) -> String {
        let mut raw = Vec::with_capacity(bytes);
        for w in first..first + bytes / 8 {
            raw.extend_from_slice(&self.get(w).to_le_bytes());
        }
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    }

    /// Stores `name` NUL-padded into `bytes` bytes at word `first`, cut to `bytes - 1`.
    pub(crate) fn set_name(&self, first: usize, bytes: usize, name: &str) {
        let mut raw = vec![0u8; bytes];
        let n = name.len().min(bytes - 1);
        raw[..n].copy_from_slice(&name.as_bytes()[..n]);
        for (k, chunk) in raw.chunks(8).enumerate() {
            self.set(
                first + k,
                u64::from_le_bytes(chunk.try_into().unwrap_or_default()),
            );
        }
    }
}
