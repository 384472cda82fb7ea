//! The slot protocol, written once over any atomic word type: the table runs it over its
//! memory-mapped words, and a loom model (`tests` below) runs the very same functions over
//! loom's atomics, exploring thread interleavings for torn or mixed entries.
//!
//! Shared-lane writer ([`claim`], [`publish`]): take a sequence number (`fetch_add` on head);
//! claim the slot by CAS from an older, idle stamp to `seq|BUSY`; release fence; store the
//! words; publish with a release store of `seq`. Own-lane writer (the lane's only writer): the same without the atomic
//! read-modify-writes — load the head, store `seq|BUSY`, release fence, the words, the release
//! store of `seq`, then the head. Reader: acquire-load the stamp, copy the words, acquire
//! fence, load the stamp again; a copy counts only if both loads saw the same idle `seq`
//! (Boehm's seqlock).

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

/// Claims the slot of a fresh sequence number in a shared lane: the sequence number and the
/// slot's first word, its busy stamp visible before anything stored after this returns.
/// `slot_base` maps a sequence number to its slot's first word.
#[inline(always)]
pub(crate) fn claim<M: Memory>(
    m: &M,
    head: usize,
    slot_base: impl Fn(u64) -> usize,
) -> Result<(u64, usize), Lost> {
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
    Ok((seq, base))
}

/// Publishes the entry stored (relaxed) after the stamp at `base`.
#[inline(always)]
pub(crate) fn publish<M: Memory>(m: &M, base: usize, seq: u64) {
    m.word(base).store(seq << 2, Ordering::Release);
}

/// An own lane's next slot, claimed: its sequence number, first word and index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnSlot {
    pub(crate) seq: u64,
    pub(crate) base: usize,
    index: u64,
}

/// Claims the next slot of a lane that only this thread writes: no atomic read-modify-write,
/// so no locked instruction. The word after the lane's head holds the head's slot index
/// (`head % capacity`), kept alongside so no division is needed; `slot_at` maps a slot index to
/// its first word.
#[inline(always)]
pub(crate) fn claim_own<M: Memory>(m: &M, head: usize, slot_at: impl Fn(u64) -> usize) -> OwnSlot {
    let seq = m.word(head).load(Ordering::Relaxed);
    let index = m.word(head + 1).load(Ordering::Relaxed);
    let base = slot_at(index);
    m.word(base).store(seq << 2 | BUSY, Ordering::Relaxed);
    // The busy stamp must be visible before any payload word.
    M::fence(Ordering::Release);
    OwnSlot { seq, base, index }
}

/// Publishes the entry of a slot [`claim_own`] gave, and moves the lane's head past it.
#[inline(always)]
pub(crate) fn publish_own<M: Memory>(m: &M, head: usize, capacity: u64, slot: OwnSlot) {
    m.word(slot.base).store(slot.seq << 2, Ordering::Release);
    let next = slot.index + 1;
    let next = if next == capacity { 0 } else { next };
    m.word(head + 1).store(next, Ordering::Relaxed);
    m.word(head).store(slot.seq + 1, Ordering::Release);
}

/// Takes an own lane for the writer `me` (a process identity, never 0): from nobody (0), or
/// from an owner `is_dead` says is gone. One compare-and-swap decides between processes that
/// race for the lane — two claims, or a claim and a reclaim — so a lane has one owner. The
/// acquire pairs with the release of [`release_lane`]: the new owner sees the lane as its
/// last owner left it.
pub(crate) fn claim_lane<M: Memory>(
    m: &M,
    owner: usize,
    me: u64,
    is_dead: impl Fn(u64) -> bool,
) -> Option<u64> {
    let cur = m.word(owner).load(Ordering::Acquire);
    if cur != 0 && !is_dead(cur) {
        return None;
    }
    m.word(owner)
        .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed)
        .ok()
}

/// Gives a lane `me` holds back to nobody.
pub(crate) fn release_lane<M: Memory>(m: &M, owner: usize, me: u64) {
    let _ = m
        .word(owner)
        .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
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

    /// A two-word payload: `w` and `w * 100`.
    fn store2(mem: &LoomMemory, at: usize, w: u64) {
        mem.word(at).store(w, Ordering::Relaxed);
        mem.word(at + 1).store(w * 100, Ordering::Relaxed);
    }

    /// `n` words, all 0 but the head, which starts at 1.
    fn memory(n: usize) -> Arc<LoomMemory> {
        Arc::new(LoomMemory(
            (0..n)
                .map(|i| AtomicU64::new(u64::from(i == HEAD)))
                .collect(),
        ))
    }

    /// The two payload words of the slot whose stamp is word `slot`.
    fn payload(m: &LoomMemory, slot: usize) -> (u64, u64) {
        (
            m.word(slot + 1).load(Ordering::Relaxed),
            m.word(slot + 2).load(Ordering::Relaxed),
        )
    }

    /// A shared-lane append of `w`, as the table does it.
    fn append(mem: &LoomMemory, w: u64) -> Result<u64, Lost> {
        let (seq, base) = claim(mem, HEAD, |_| SLOT)?;
        store2(mem, base + 1, w);
        publish(mem, base, seq);
        Ok(seq)
    }

    /// An own-lane append of `w` to a one-slot lane whose slot starts at `slot`.
    fn append_own(mem: &LoomMemory, slot: usize, w: u64) {
        let s = claim_own(mem, HEAD, |_| slot);
        store2(mem, s.base + 1, w);
        publish_own(mem, HEAD, 1, s);
    }

    fn check(read: Read<(u64, u64)>) {
        if let Read::Entry((a, b)) = read {
            assert!(a == 1 || a == 2, "payload from nowhere: {a}");
            assert_eq!(b, a * 100, "an entry mixes two writers' words");
        }
    }

    #[test]
    fn an_own_lane_writer_lapping_itself_never_shows_a_reader_a_mixed_entry() {
        // Word 0: head, word 1: its slot index; words 2..=4: the one slot.
        const OWN_SLOT: usize = 2;
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let mem = memory(5);
            let copy = |m: &LoomMemory| payload(m, OWN_SLOT);
            // One slot: every entry overwrites the last while the reader may be copying it.
            let writer = {
                let mem = Arc::clone(&mem);
                loom::thread::spawn(move || {
                    for w in [1u64, 2] {
                        append_own(&mem, OWN_SLOT, w);
                    }
                })
            };
            for seq in [1, 2] {
                check(read(&*mem, OWN_SLOT, seq, copy));
            }
            writer.join().unwrap();
            assert_eq!(mem.word(HEAD).load(Ordering::Relaxed), 3);
            assert_eq!(read(&*mem, OWN_SLOT, 2, copy), Read::Entry((2, 200)));
        });
    }

    #[test]
    fn a_claim_racing_a_reclaim_gives_a_dead_writers_lane_to_one_process() {
        // Word 0: the lane's owner, left by process 7, which died.
        const OWNER: usize = 0;
        loom::model(|| {
            let mem = Arc::new(LoomMemory(vec![AtomicU64::new(7)]));
            let dead = |owner: u64| owner == 7;
            let racers: Vec<_> = [11u64, 12]
                .into_iter()
                .map(|me| {
                    let mem = Arc::clone(&mem);
                    loom::thread::spawn(move || claim_lane(&*mem, OWNER, me, dead).map(|_| me))
                })
                .collect();
            let won: Vec<u64> = racers
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect();
            assert_eq!(won.len(), 1, "one process gets the lane: {won:?}");
            assert_eq!(mem.word(OWNER).load(Ordering::Relaxed), won[0]);
            // A live owner keeps it; released, anyone may take it.
            assert_eq!(claim_lane(&*mem, OWNER, 13, dead), None);
            release_lane(&*mem, OWNER, won[0]);
            assert_eq!(claim_lane(&*mem, OWNER, 13, dead), Some(0));
        });
    }

    #[test]
    fn two_writers_and_a_reader_on_one_slot_never_produce_a_mixed_entry() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let mem = memory(4);
            let writers: Vec<_> = [1u64, 2]
                .into_iter()
                .map(|w| {
                    let mem = Arc::clone(&mem);
                    loom::thread::spawn(move || append(&mem, w))
                })
                .collect();
            for seq in [1, 2] {
                check(read(&*mem, SLOT, seq, |m| payload(m, SLOT)));
            }
            let results: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
            // Exactly one sequence number is 1 and one is 2; at least one writer got the slot.
            assert!(results.iter().any(Result::is_ok), "{results:?}");
            let last = mem.word(HEAD).load(Ordering::Relaxed) - 1;
            let final_read = read(&*mem, SLOT, last, |m| payload(m, SLOT));
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
