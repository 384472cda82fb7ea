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
