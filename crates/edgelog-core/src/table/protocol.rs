//! The slot protocol, written once over any atomic word type: the table runs it over its
//! memory-mapped words, and a loom model (`tests` below) runs the very same functions over
//! loom's atomics, exploring thread interleavings for torn or mixed entries.
//!
//! Writer: take a sequence number (`fetch_add` on head); claim the slot by CAS from an older,
//! idle stamp to `seq|BUSY`; release fence; store the words; publish with a release store of
//! `seq`. Reader: acquire-load the stamp, copy the words, acquire fence, load the stamp again;
//! a copy counts only if both loads saw the same idle `seq` (Boehm's seqlock).

use std::sync::atomic::Ordering;

pub(crate) const BUSY: u64 = 1;
pub(crate) const TORN: u64 = 2;

/// The atomic operations the protocol needs.
pub(crate) trait Word {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
    fn fetch_add(&self, value: u64, order: Ordering) -> u64;
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
}

/// Words addressed by index, and the matching fence.
pub(crate) trait Memory {
    type W: Word;
    fn word(&self, i: usize) -> &Self::W;
    fn fence(order: Ordering);
}

/// Why an append did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// A writer a lap ahead was still in the slot.
    Busy,
    /// A newer entry already holds the slot: this writer was lapped.
    Lapped,
}

/// Appends `words` (after the stamp) to the slot of a fresh sequence number. `slot_base`
/// maps a sequence number to its slot's first word.
#[inline(always)]
pub(crate) fn append<M: Memory>(
    m: &M,
    head: usize,
    slot_base: impl Fn(u64) -> usize,
    words: impl IntoIterator<Item = u64>,
) -> Result<u64, Lost> {
    let seq = m.word(head).fetch_add(1, Ordering::Relaxed);
    let base = slot_base(seq);
    let stamp = m.word(base);
    let cur = stamp.load(Ordering::Relaxed);
    if cur >> 2 >= seq {
        return Err(Lost::Lapped);
    }
    if cur & BUSY != 0
        || stamp
            .compare_exchange(cur, seq << 2 | BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return Err(Lost::Busy);
    }
    // The busy stamp must be visible before any payload word.
    M::fence(Ordering::Release);
    for (k, w) in words.into_iter().enumerate() {
        m.word(base + 1 + k).store(w, Ordering::Relaxed);
    }
    stamp.store(seq << 2, Ordering::Release);
    Ok(seq)
}

/// What a slot holds for a sequence number, with the copied words of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read<T> {
    Entry(T),
    Busy,
    Torn,
    Overwritten,
    Missing,
}

/// Reads the slot at `base` for `seq`; `copy` copies the words after the stamp.
#[inline]
pub(crate) fn read<M: Memory, T>(
    m: &M,
    base: usize,
    seq: u64,
    mut copy: impl FnMut(&M) -> T,
) -> Read<T> {
    let stamp = m.word(base);
    for _ in 0..4 {
        let before = stamp.load(Ordering::Acquire);
        match before >> 2 {
            s if s < seq => return Read::Missing,
            s if s > seq => return Read::Overwritten,
            _ if before & TORN != 0 => return Read::Torn,
            _ if before & BUSY != 0 => return Read::Busy,
            _ => {}
        }
        let words = copy(m);
        // Order the copies before the second stamp load.
        M::fence(Ordering::Acquire);
        if stamp.load(Ordering::Relaxed) == before {
            return Read::Entry(words);
        }
    }
    // Rewritten under us four times in a row: the writer is a lap ahead.
    Read::Overwritten
}

/// `Word` for an atomic type with the standard API (std's, and loom's in the model).
macro_rules! impl_word {
    ($t:ty) => {
        impl Word for $t {
            #[inline(always)]
            fn load(&self, order: Ordering) -> u64 {
                self.load(order)
            }
            #[inline(always)]
            fn store(&self, value: u64, order: Ordering) {
                self.store(value, order);
            }
            #[inline(always)]
            fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
                self.fetch_add(value, order)
            }
            #[inline(always)]
            fn compare_exchange(
                &self,
                current: u64,
                new: u64,
                success: Ordering,
                failure: Ordering,
            ) -> Result<u64, u64> {
                self.compare_exchange(current, new, success, failure)
            }
        }
    };
}

impl_word!(std::sync::atomic::AtomicU64);

#[cfg(test)]
mod tests {
    //! Loom explores the interleavings of two writers sharing one slot (so they collide and
    //! lap each other) and a reader, with a two-word payload that must never be mixed.

    use std::sync::atomic::Ordering;

    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU64, fence};

    use super::*;

    struct LoomMemory(Vec<AtomicU64>);

    impl_word!(AtomicU64);

    impl Memory for LoomMemory {
        type W = AtomicU64;
        fn word(&self, i: usize) -> &AtomicU64 {
            &self.0[i]
        }
        fn fence(order: Ordering) {
            fence(order);
        }
    }

    // Word 0: head; words 1..=3: the one slot (stamp, two payload words).
    const HEAD: usize = 0;
    const SLOT: usize = 1;

    fn check(read: Read<(u64, u64)>) {
        if let Read::Entry((a, b)) = read {
            assert!(a == 1 || a == 2, "payload from nowhere: {a}");
            assert_eq!(b, a * 100, "an entry mixes two writers' words");
        }
    }

    #[test]
    fn two_writers_and_a_reader_on_one_slot_never_produce_a_mixed_entry() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let mem = Arc::new(LoomMemory(
                (0..4)
                    .map(|i| AtomicU64::new(u64::from(i == HEAD)))
                    .collect(),
            ));
            let writers: Vec<_> = [1u64, 2]
                .into_iter()
                .map(|w| {
                    let mem = Arc::clone(&mem);
                    loom::thread::spawn(move || append(&*mem, HEAD, |_| SLOT, [w, w * 100]))
                })
                .collect();
            for seq in [1, 2] {
                check(read(&*mem, SLOT, seq, |m| {
                    (
                        m.word(SLOT + 1).load(Ordering::Relaxed),
                        m.word(SLOT + 2).load(Ordering::Relaxed),
                    )
                }));
            }
            let results: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
            // Exactly one sequence number is 1 and one is 2; at least one writer got the slot.
            assert!(results.iter().any(Result::is_ok), "{results:?}");
            let last = mem.word(HEAD).load(Ordering::Relaxed) - 1;
            let final_read = read(&*mem, SLOT, last, |m| {
                (
                    m.word(SLOT + 1).load(Ordering::Relaxed),
                    m.word(SLOT + 2).load(Ordering::Relaxed),
                )
            });
            // Whoever holds the slot at the end published a whole entry, or lost and said so.
            match final_read {
                Read::Entry(_) => check(final_read),
                other => assert!(
                    results.iter().any(Result::is_err),
                    "{other:?} with {results:?}"
                ),
            }
        });
    }
}
