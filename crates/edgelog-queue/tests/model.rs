//! Both queues against a model, under random appends, reads, out-of-order acknowledgements,
//! rewinds and (for the disk queue) reopenings: a read returns the right payloads in order,
//! never an acknowledged record, and after a rewind or a reopen exactly what is
//! unacknowledged, from the first such record.

use std::collections::BTreeSet;

use edgelog_queue::disk::{DiskOptions, Fsync};
use edgelog_queue::{DiskQueue, MemoryQueue, Queue, WhenFull};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Read(usize, u8),
    /// Acknowledge these picks (indexes into what the consumer has read and not acked).
    Ack(usize, Vec<u8>),
    Rewind(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..20).prop_map(Op::Append),
        3 => (0usize..2, 1u8..30).prop_map(|(c, n)| Op::Read(c, n)),
        3 => (0usize..2, prop::collection::vec(any::<u8>(), 0..10)).prop_map(|(c, v)| Op::Ack(c, v)),
        1 => (0usize..2).prop_map(Op::Rewind),
        1 => Just(Op::Reopen),
    ]
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = seq.to_le_bytes().to_vec();
    p.resize(8 + (seq * 7 % 50) as usize, seq as u8);
    p
}

/// The model: what was appended, and per consumer what is acknowledged and what was read.
#[derive(Debug, Default)]
struct Model {
    appended: u64,
    acked: [BTreeSet<u64>; 2],
    /// Read and not acknowledged, in read order.
    outstanding: [Vec<u64>; 2],
    /// The read position: the next record read returns at or after.
    next: [u64; 2],
}

impl Model {
    fn first_unacked(&self, c: usize) -> u64 {
        (1..).find(|s| !self.acked[c].contains(s)).unwrap()
    }
}

fn run(ops: &[Op], disk: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let opts = DiskOptions {
        segment_bytes: 600,
        max_bytes: 1 << 30,
        fsync: Fsync::Never,
        when_full: WhenFull::Block,
        max_record: 4096,
    };
    let open = || -> Box<dyn Queue> {
        if disk {
            Box::new(
                DiskQueue::open(dir.path(), opts.clone(), &["a", "b"])
                    .unwrap()
                    .0,
            )
        } else {
            Box::new(MemoryQueue::new(
                1 << 20,
                1 << 30,
                WhenFull::Block,
                &["a", "b"],
            ))
        }
    };
    let mut q = open();
    let mut m = Model {
        next: [1, 1],
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Append(n) => {
                let data: Vec<Vec<u8>> = (m.appended + 1..=m.appended + u64::from(*n))
                    .map(payload)
                    .collect();
                let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                let a = q.append(&refs).unwrap();
                prop_assert_eq!(a.taken, *n as usize);
                prop_assert_eq!(a.first_seq, m.appended + 1);
                m.appended += u64::from(*n);
            }
            Op::Read(c, n) => {
                let got = q.read(*c, usize::from(*n), usize::MAX).unwrap();
                let want: Vec<u64> = (m.next[*c]..=m.appended)
                    .filter(|s| !m.acked[*c].contains(s))
                    .take(usize::from(*n))
                    .collect();
                let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
                prop_assert_eq!(&seqs, &want);
                for r in &got {
                    prop_assert_eq!(&r.payload, &payload(r.seq));
                }
                if let Some(last) = seqs.last() {
                    m.next[*c] = last + 1;
                }
                m.outstanding[*c].extend(seqs);
            }
            Op::Ack(c, picks) => {
                let out = &mut m.outstanding[*c];
                let mut seqs = Vec::new();
                for p in picks {
                    if !out.is_empty() {
                        seqs.push(out.remove(usize::from(*p) % out.len()));
                    }
                }
                q.ack(*c, &seqs).unwrap();
                m.acked[*c].extend(seqs);
            }
            Op::Rewind(c) => {
                q.rewind(*c).unwrap();
                m.next[*c] = m.first_unacked(*c);
                m.outstanding[*c].clear();
            }
            Op::Reopen if disk => {
                drop(q);
                q = open();
                for c in 0..2 {
                    // Acknowledgements beyond the prefix are not kept across a restart:
                    // those records are delivered again (at least once).
                    let prefix = m.first_unacked(c) - 1;
                    m.acked[c].retain(|s| *s <= prefix);
                    m.next[c] = prefix + 1;
                    m.outstanding[c].clear();
                }
            }
            Op::Reopen => {}
        }
        for c in 0..2 {
            let s = &q.stats().consumers[c];
            prop_assert_eq!(s.acked, m.first_unacked(c) - 1);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn disk_queue_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops, true)?;
    }

    #[test]
    fn memory_queue_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops, false)?;
    }
}

/// Appends `n` records in batches of `batch`, with segments small enough that there are many.
fn filled(dir: &std::path::Path, n: u64, batch: u64) -> DiskOptions {
    let opts = DiskOptions {
        segment_bytes: 700,
        max_bytes: 1 << 30,
        fsync: Fsync::Never,
        when_full: WhenFull::Block,
        max_record: 4096,
    };
    let (mut q, _) = DiskQueue::open(dir, opts.clone(), &["a"]).unwrap();
    let mut next = 1;
    while next <= n {
        let data: Vec<Vec<u8>> = (next..(next + batch).min(n + 1)).map(payload).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        next += q.append(&refs).unwrap().taken as u64;
    }
    opts
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// Everything the reopened queue gives consumer `a`, which must all be intact and in order.
fn read_all(q: &mut DiskQueue) -> Result<Vec<u64>, TestCaseError> {
    let mut out = Vec::new();
    loop {
        let batch = q.read(0, 1000, usize::MAX).unwrap();
        if batch.is_empty() {
            return Ok(out);
        }
        for r in batch {
            prop_assert_eq!(
                &r.payload,
                &payload(r.seq),
                "record {} replayed damaged",
                r.seq
            );
            if let Some(last) = out.last() {
                prop_assert!(r.seq > *last);
            }
            out.push(r.seq);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A crash can cut the last write anywhere: whatever byte it stops at, the reopened queue
    /// holds exactly the records written whole before it, and numbering goes on after them.
    #[test]
    fn a_write_cut_at_any_byte_recovers_the_whole_records(n in 1u64..80, batch in 1u64..9, cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let opts = filled(dir.path(), n, batch);
        let last = segments(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&last).unwrap().len();
        let keep = cut.index(len as usize + 1) as u64;
        std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(keep).unwrap();
        let (mut q, _) = DiskQueue::open(dir.path(), opts, &["a"]).unwrap();
        let got = read_all(&mut q)?;
        let whole = got.len() as u64;
        prop_assert_eq!(&got, &(1..=whole).collect::<Vec<_>>());
        // Only the cut segment lost records.
        let first_of_last: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        prop_assert!(whole + 1 >= first_of_last);
        let a = q.append(&[&payload(whole + 1)]).unwrap();
        prop_assert_eq!(a.first_seq, whole + 1);
    }

    /// A flipped byte anywhere is never replayed as a valid record: what is read is intact,
    /// and `verify` reports the damage.
    #[test]
    fn a_flipped_byte_is_never_replayed(n in 5u64..80, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let opts = filled(dir.path(), n, 4);
        let segs = segments(dir.path());
        let sizes: Vec<u64> = segs.iter().map(|p| std::fs::metadata(p).unwrap().len()).collect();
        let mut k = at.index(sizes.iter().sum::<u64>() as usize) as u64;
        let mut i = 0;
        while k >= sizes[i] {
            k -= sizes[i];
            i += 1;
        }
        let mut bytes = std::fs::read(&segs[i]).unwrap();
        bytes[k as usize] ^= 1 << bit;
        std::fs::write(&segs[i], &bytes).unwrap();
        let report = edgelog_queue::disk::verify(dir.path()).unwrap();
        prop_assert!(!report.problems.is_empty(), "flip at {}:{} went unnoticed", i, k);
        let (mut q, _) = DiskQueue::open(dir.path(), opts, &["a"]).unwrap();
        read_all(&mut q)?;
    }
}
