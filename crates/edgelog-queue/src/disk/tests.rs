use super::*;

fn opts(segment_bytes: u64, max_bytes: u64, when_full: WhenFull) -> DiskOptions {
    DiskOptions {
        segment_bytes,
        max_bytes,
        fsync: Fsync::Always,
        when_full,
        max_record: 4096,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("record number {i:06} with some padding to make it longer").into_bytes()
}

fn append_n(q: &mut DiskQueue, from: u64, n: u64) -> Appended {
    let data: Vec<Vec<u8>> = (from..from + n).map(payload).collect();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    q.append(&refs).unwrap()
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    v.sort();
    v
}

/// Flips one payload byte of record 3 in the first segment (each record is 16 + 55 bytes
/// after the header).
fn damage_record_3(dir: &Path) {
    let first = dir.join(&files(dir)[0]);
    let mut bytes = fs::read(&first).unwrap();
    let at = HEADER as usize + 2 * (16 + payload(1).len()) + 20;
    bytes[at] ^= 0x40;
    fs::write(&first, &bytes).unwrap();
}

/// A queue of 1 KiB segments in `dir`, closed, holding records 1 to 60.
fn sixty_records(dir: &Path) {
    let (mut q, _) = DiskQueue::open(dir, opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    append_n(&mut q, 1, 60);
}

#[test]
fn records_round_trip_across_segments_and_acked_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, rec) =
        DiskQueue::open(dir.path(), opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    assert_eq!(rec, Recovery::default());
    let a = append_n(&mut q, 1, 100);
    assert_eq!((a.taken, a.first_seq, a.refused), (100, 1, 0));
    assert!(files(dir.path()).len() > 5, "{:?}", files(dir.path()));
    assert_eq!(q.durable_seq(), 100);

    let got = q.read(0, 1000, usize::MAX).unwrap();
    assert_eq!(seqs(&got), (1..=100).collect::<Vec<_>>());
    for r in &got {
        assert_eq!(r.payload, payload(r.seq));
    }
    assert!(q.read(0, 10, usize::MAX).unwrap().is_empty());

    q.ack(0, &(1..=100).collect::<Vec<_>>()).unwrap();
    // Only the active segment is left.
    assert_eq!(files(dir.path()).len(), 1);
    assert_eq!(q.stats().consumers[0].pending, 0);
    assert_eq!(
        read_cursor(&dir.path().join("cursors/a")).unwrap(),
        Some(100)
    );
}

#[test]
fn out_of_order_acks_and_rewind_redeliver_only_what_is_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) =
        DiskQueue::open(dir.path(), opts(1 << 20, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    append_n(&mut q, 1, 10);
    assert_eq!(seqs(&q.read(0, 4, usize::MAX).unwrap()), [1, 2, 3, 4]);
    assert_eq!(seqs(&q.read(0, 4, usize::MAX).unwrap()), [5, 6, 7, 8]);
    q.ack(0, &[2, 4, 5]).unwrap();
    assert_eq!(q.stats().consumers[0].acked, 0);
    q.rewind(0).unwrap();
    assert_eq!(
        seqs(&q.read(0, 100, usize::MAX).unwrap()),
        [1, 3, 6, 7, 8, 9, 10]
    );
    q.ack(0, &[1, 3]).unwrap();
    assert_eq!(q.stats().consumers[0].acked, 5);
    // A byte budget stops a read early, at least one record per read.
    q.rewind(0).unwrap();
    let one = q.read(0, 100, 1).unwrap();
    assert_eq!(seqs(&one), [6]);
    assert_eq!(seqs(&q.read(0, 100, usize::MAX).unwrap()), [7, 8, 9, 10]);
}

#[test]
fn a_reopened_queue_redelivers_what_was_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut q, _) =
            DiskQueue::open(dir.path(), opts(512, 1 << 20, WhenFull::Block), &["a", "b"]).unwrap();
        append_n(&mut q, 1, 30);
        q.read(0, 100, usize::MAX).unwrap();
        q.ack(0, &(1..=20).collect::<Vec<_>>()).unwrap();
        q.ack(1, &(1..=5).collect::<Vec<_>>()).unwrap();
    }
    let (mut q, rec) =
        DiskQueue::open(dir.path(), opts(512, 1 << 20, WhenFull::Block), &["a", "b"]).unwrap();
    assert!(rec.problems.is_empty(), "{rec:?}");
    assert_eq!(
        seqs(&q.read(0, 100, usize::MAX).unwrap()),
        (21..=30).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&q.read(1, 100, usize::MAX).unwrap()),
        (6..=30).collect::<Vec<_>>()
    );
    // Numbering goes on.
    assert_eq!(append_n(&mut q, 31, 1).first_seq, 31);
}

#[test]
fn a_torn_tail_is_truncated_and_numbering_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut q, _) =
            DiskQueue::open(dir.path(), opts(1 << 20, 1 << 20, WhenFull::Block), &["a"]).unwrap();
        append_n(&mut q, 1, 5);
    }
    // A crash in the middle of the next write: a frame header and half a payload.
    let last = dir.path().join(files(dir.path()).pop().unwrap());
    let mut partial = Vec::new();
    frame(&mut partial, 6, &payload(6));
    partial.truncate(30);
    OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(&partial)
        .unwrap();

    let (mut q, rec) =
        DiskQueue::open(dir.path(), opts(1 << 20, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    assert_eq!(rec.truncated_bytes, 30);
    assert_eq!(rec.records, 5);
    assert_eq!(rec.lost_records, 0);
    assert_eq!(append_n(&mut q, 6, 1).first_seq, 6);
    let got = q.read(0, 100, usize::MAX).unwrap();
    assert_eq!(seqs(&got), [1, 2, 3, 4, 5, 6]);
    assert_eq!(got[5].payload, payload(6));
}

#[test]
fn a_corrupt_record_is_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    sixty_records(dir.path());
    damage_record_3(dir.path());

    let report = verify(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(
        report.problems[0].contains("record 3: checksum mismatch"),
        "{report:?}"
    );

    let (mut q, rec) =
        DiskQueue::open(dir.path(), opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    let per_segment = (1024 - HEADER) / (16 + payload(1).len() as u64);
    assert_eq!(rec.lost_records, per_segment - 2, "{rec:?}");
    let got = q.read(0, 1000, usize::MAX).unwrap();
    assert!(!seqs(&got).contains(&3));
    for r in &got {
        assert_eq!(r.payload, payload(r.seq), "record {} replayed wrong", r.seq);
    }
    assert_eq!(seqs(&got)[..2], [1, 2]);
    assert_eq!(*seqs(&got).last().unwrap(), 60);
    assert_eq!(got.len() as u64, 60 - rec.lost_records);
}

#[test]
fn quota_block_refuses_drop_newest_counts_drop_oldest_evicts_and_counts() {
    let size = 16 + payload(1).len() as u64;
    let quota = HEADER * 4 + size * 20;
    for mode in [WhenFull::Block, WhenFull::DropNewest, WhenFull::DropOldest] {
        let dir = tempfile::tempdir().unwrap();
        let (mut q, _) = DiskQueue::open(
            dir.path(),
            opts(HEADER + size * 5, quota, mode),
            &["a", "b"],
        )
        .unwrap();
        let a = append_n(&mut q, 1, 40);
        match mode {
            WhenFull::Block | WhenFull::DropNewest => {
                assert!(a.taken < 40 && a.taken >= 15, "{a:?}");
                assert_eq!(a.refused, 40 - a.taken);
                let dropped = if mode == WhenFull::DropNewest {
                    a.refused as u64
                } else {
                    0
                };
                assert_eq!(q.stats().dropped_newest, dropped);
                // After acknowledgements there is room again.
                q.ack(0, &(1..=10).collect::<Vec<_>>()).unwrap();
                q.ack(1, &(1..=10).collect::<Vec<_>>()).unwrap();
                assert_eq!(append_n(&mut q, 41, 5).taken, 5);
            }
            WhenFull::DropOldest => {
                assert_eq!(a.taken, 40);
                let s = q.stats();
                assert!(s.bytes <= quota, "{s:?}");
                // Consumer a had acknowledged nothing: every evicted record counts; what is
                // left is exactly the rest.
                let evicted = s.consumers[0].evicted;
                assert!(evicted > 0);
                assert_eq!(s.consumers[1].evicted, evicted);
                let left = q.read(0, 100, usize::MAX).unwrap();
                assert_eq!(seqs(&left), (evicted + 1..=40).collect::<Vec<_>>());
                assert_eq!(
                    read_cursor(&dir.path().join("cursors/a")).unwrap(),
                    Some(evicted)
                );
            }
        }
    }
}

#[test]
fn a_segment_stays_until_every_consumer_acknowledged_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) =
        DiskQueue::open(dir.path(), opts(512, 1 << 20, WhenFull::Block), &["a", "b"]).unwrap();
    append_n(&mut q, 1, 30);
    let before = files(dir.path()).len();
    q.ack(0, &(1..=30).collect::<Vec<_>>()).unwrap();
    assert_eq!(files(dir.path()).len(), before);
    q.ack(1, &(1..=30).collect::<Vec<_>>()).unwrap();
    assert_eq!(files(dir.path()).len(), 1);
}

#[test]
fn a_damaged_cursor_replays_rather_than_loses() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut q, _) =
            DiskQueue::open(dir.path(), opts(1 << 20, 1 << 20, WhenFull::Block), &["a"]).unwrap();
        append_n(&mut q, 1, 5);
        q.ack(0, &[1, 2, 3]).unwrap();
    }
    fs::write(dir.path().join("cursors/a"), b"garbage").unwrap();
    let (mut q, rec) =
        DiskQueue::open(dir.path(), opts(1 << 20, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    assert!(rec.problems[0].contains("damaged cursor"), "{rec:?}");
    assert_eq!(seqs(&q.read(0, 100, usize::MAX).unwrap()), [1, 2, 3, 4, 5]);
}

#[test]
fn corrupt_records_are_counted_passed_and_never_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    sixty_records(dir.path());
    damage_record_3(dir.path());
    let report = verify(dir.path()).unwrap();

    let (mut q, rec) =
        DiskQueue::open(dir.path(), opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    // Counted, exactly as `verify` and the recovery report say.
    assert_eq!(q.stats().corrupt, rec.lost_records);
    assert!(report.problems[0].contains("record 3"), "{report:?}");
    let got = q.read(0, 1000, usize::MAX).unwrap();
    q.ack(0, &seqs(&got)).unwrap();
    // The cursor passed the gap: nothing is pending, the queue is empty.
    let s = q.stats();
    assert_eq!(
        (s.records, s.consumers[0].pending, s.consumers[0].acked),
        (0, 0, 60),
        "{s:?}"
    );
    drop(q);
    // After a restart nothing the receiver had is sent again.
    let (mut q, _) =
        DiskQueue::open(dir.path(), opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    assert!(q.read(0, 1000, usize::MAX).unwrap().is_empty());
    append_n(&mut q, 61, 1);
    assert_eq!(seqs(&q.read(0, 1000, usize::MAX).unwrap()), [61]);
}

#[test]
fn a_record_found_corrupt_while_running_is_counted_and_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) =
        DiskQueue::open(dir.path(), opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    append_n(&mut q, 1, 60);
    // Damage record 3 under the running queue, for a consumer that reads it from the file
    // (one that lags: the records are no longer in the tail).
    damage_record_3(dir.path());
    q.tail.clear();

    let got = q.read(0, 1000, usize::MAX).unwrap();
    let per_segment = (1024 - HEADER) / (16 + payload(1).len() as u64);
    let lost = per_segment - 2;
    assert_eq!(q.stats().corrupt, lost);
    assert_eq!(got.len() as u64, 60 - lost);
    for r in &got {
        assert_eq!(r.payload, payload(r.seq), "record {} replayed wrong", r.seq);
    }
    q.ack(0, &seqs(&got)).unwrap();
    assert_eq!(q.stats().consumers[0].acked, 60);
    // Appends go on, read after the gap.
    append_n(&mut q, 61, 2);
    assert_eq!(seqs(&q.read(0, 1000, usize::MAX).unwrap()), [61, 62]);
}

#[test]
fn a_queue_has_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let o = || opts(1024, 1 << 20, WhenFull::Block);
    let (mut q, _) = DiskQueue::open(dir.path(), o(), &["a"]).unwrap();
    append_n(&mut q, 1, 5);
    let second = DiskQueue::open(dir.path(), o(), &["a"]).unwrap_err();
    assert!(matches!(second, QueueError::InUse(_)), "{second}");
    assert!(second.to_string().contains("open elsewhere"), "{second}");
    drop(q);
    // Closed: the next writer opens it, and finds every record.
    let (mut q, _) = DiskQueue::open(dir.path(), o(), &["a"]).unwrap();
    assert_eq!(seqs(&q.read(0, 100, 1 << 20).unwrap()), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_consumer_that_keeps_up_reads_from_the_tail_and_one_that_lags_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) =
        DiskQueue::open(dir.path(), opts(1024, 1 << 20, WhenFull::Block), &["a"]).unwrap();
    append_n(&mut q, 1, 60);
    // Damaged on disk, whole in memory: the tail serves the good copy.
    damage_record_3(dir.path());
    let got = q.read(0, 10, usize::MAX).unwrap();
    assert_eq!(seqs(&got), (1..=10).collect::<Vec<_>>());
    assert_eq!(got[2].payload, payload(3));
    assert_eq!(q.stats().corrupt, 0);
    // Acknowledged records leave the tail; a rewind past it reads the file.
    q.ack(0, &[1, 2]).unwrap();
    assert_eq!(q.tail.records.front().map(|r| r.seq), Some(3));
    q.rewind(0).unwrap();
    q.tail.clear();
    let again = q.read(0, 1000, usize::MAX).unwrap();
    assert!(
        q.stats().corrupt > 0,
        "the file's damage is found when read from the file"
    );
    assert!(again.iter().all(|r| r.payload == payload(r.seq)));
}
