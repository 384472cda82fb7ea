//! A process SIGKILLed in the middle of appending and acknowledging: reopened, the queue has
//! every record an `append` had returned for (fsync `always`), each intact, in order, and the
//! consumer resumes after its last saved cursor — nothing lost, duplicates only since then.
//!
//! The child is this test binary run again with `EDGELOG_QUEUE_CHILD` set (see `child`).

use std::io::{BufRead, BufReader, Write};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgelog_queue::disk::{DiskOptions, Fsync};
use edgelog_queue::{DiskQueue, Queue, WhenFull};

fn options() -> DiskOptions {
    DiskOptions {
        segment_bytes: 64 * 1024,
        max_bytes: 1 << 30,
        fsync: Fsync::Always,
        when_full: WhenFull::Block,
        max_record: 4096,
    }
}

fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("crash test record {seq} ").into_bytes();
    p.resize(64 + (seq % 200) as usize, b'x');
    p
}

/// Not a test of its own: the child process's body.
#[test]
fn child() {
    let Ok(dir) = std::env::var("EDGELOG_QUEUE_CHILD") else {
        return;
    };
    let (mut q, _) = DiskQueue::open(dir.as_ref(), options(), &["dest"]).unwrap();
    let mut next = q.stats().next_seq;
    let mut out = std::io::stdout().lock();
    for _ in 0..1_000_000 {
        let batch: Vec<Vec<u8>> = (next..next + 7).map(payload).collect();
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let a = q.append(&refs).unwrap();
        next += a.taken as u64;
        // Acknowledge (in a scrambled order) what is well behind, so cursors and segment
        // deletion happen under the kill too.
        if next > 50 {
            let read = q.read(0, 5, usize::MAX).unwrap();
            let mut seqs: Vec<u64> = read.iter().map(|r| r.seq).collect();
            seqs.reverse();
            q.ack(0, &seqs).unwrap();
            let _ = writeln!(out, "A {}", q.stats().consumers[0].acked);
        }
        let _ = writeln!(out, "D {}", next - 1);
        let _ = out.flush();
    }
}

#[test]
fn sigkill_mid_append_loses_nothing_that_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child", "--nocapture", "--test-threads=1"])
            .env("EDGELOG_QUEUE_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut durable, mut acked) = (0u64, 0u64);
        let start = Instant::now();
        // Let it run a little (longer each round), then kill it without warning.
        while start.elapsed() < Duration::from_millis(150 + 100 * round) {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(n) = line.strip_prefix("D ") {
                durable = n.parse().unwrap();
            } else if let Some(n) = line.strip_prefix("A ") {
                acked = n.parse().unwrap();
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            durable > 100,
            "the child did too little to test ({durable})"
        );

        let (mut q, recovery) = DiskQueue::open(dir.path(), options(), &["dest"]).unwrap();
        let stats = q.stats();
        assert!(
            stats.next_seq > durable,
            "round {round}: record {durable} was reported durable but the queue ends at {}\n{recovery:?}",
            stats.next_seq - 1
        );
        assert_eq!(recovery.lost_records, 0, "{recovery:?}");
        // With fsync `always` a cursor is saved before `ack` returns: the consumer resumes no
        // earlier than what the child saw acknowledged.
        let resumed = stats.consumers[0].acked;
        assert!(resumed < stats.next_seq);
        assert!(
            resumed >= acked,
            "cursor {resumed} is behind the acknowledged {acked}"
        );
        // Everything after the cursor is there, intact and in order.
        let mut expect = resumed + 1;
        loop {
            let batch = q.read(0, 1000, usize::MAX).unwrap();
            if batch.is_empty() {
                break;
            }
            for r in batch {
                assert_eq!(r.seq, expect);
                assert_eq!(r.payload, payload(r.seq), "record {} damaged", r.seq);
                expect += 1;
            }
        }
        assert!(
            expect > durable,
            "records up to {durable} must be readable, read to {}",
            expect - 1
        );
    }
}
