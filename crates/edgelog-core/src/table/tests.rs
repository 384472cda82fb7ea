use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use super::args::{Arg, ArgWriter, decode};
use super::*;

/// One lane: every writer shares it, which is what most of these tests are about (the
/// lock-free protocol between writers). Lanes of their own are tested at the end.
fn config(capacity: u64, slot_size: u32) -> TableConfig {
    TableConfig {
        capacity,
        slot_size,
        lanes: 1,
        ..TableConfig::new("bgpd", "bgp")
    }
}

fn table(dir: &tempfile::TempDir, capacity: u64, slot_size: u32) -> (PathBuf, TableWriter) {
    let path = dir.path().join("bgp.bgpd.log");
    let w = TableWriter::open(&path, &config(capacity, slot_size)).unwrap();
    (path, w)
}

/// Three u64 arguments that check each other: (writer, index, writer * 1_000_003 ^ index).
fn tagged(writer: u64, i: u64) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut a = ArgWriter::new(&mut buf);
    a.u64(writer);
    a.u64(i);
    a.u64(writer.wrapping_mul(1_000_003) ^ i);
    a.as_bytes().to_vec()
}

fn untag(e: &Entry) -> (u64, u64) {
    let args: Vec<Arg<'_>> = decode(&e.args).collect();
    let [Arg::U64(w), Arg::U64(i), Arg::U64(check)] = args[..] else {
        panic!("entry {} has mixed or missing arguments: {args:?}", e.seq);
    };
    assert_eq!(
        check,
        w.wrapping_mul(1_000_003) ^ i,
        "entry {} mixes two writers",
        e.seq
    );
    assert_eq!(
        e.log_id as u64,
        w * 10 + i % 10,
        "entry {} header from another entry",
        e.seq
    );
    (w, i)
}

fn append_tagged(t: &TableWriter, w: u64, i: u64) -> Option<u64> {
    t.append(
        i as i64,
        (w * 10 + i % 10) as u32,
        Level::Info,
        0,
        &tagged(w, i),
    )
    .map(|at| at.seq)
}

#[test]
fn entries_read_back_with_their_sequence_and_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 100, 256);
    assert_eq!(append_tagged(&w, 1, 7), Some(1));
    assert_eq!(append_tagged(&w, 1, 8), Some(2));
    let r = TableReader::open(&path).unwrap();
    assert_eq!(r.info().bd, "bgpd");
    assert_eq!(r.info().module, "bgp");
    assert_eq!((r.oldest(0), r.head(0)), (1, 3));
    let Slot::Entry(e) = r.read(0, 2) else {
        panic!("{:?}", r.read(0, 2))
    };
    assert_eq!(
        (e.seq, e.time.as_unix_nanos(), e.level),
        (2, 8, Level::Info)
    );
    assert_eq!(untag(&e), (1, 8));
    assert_eq!(r.read(0, 3), Slot::Missing);
}

#[test]
fn payloads_of_every_length_read_back_byte_exact() {
    // Whole words, then a partial last word read as an overlapping 8-byte load (or byte by
    // byte below 8 bytes): every length, in a shared lane and in an own lane.
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 100, 128);
    let bytes: Vec<u8> = (1..=104u8).map(|b| b.wrapping_mul(37)).collect();
    for len in 0..=bytes.len() {
        let at = w
            .append(len as i64, 1, Level::Info, 0, &bytes[..len])
            .unwrap();
        let r = TableReader::open(&path).unwrap();
        let Slot::Entry(e) = r.read(at.lane, at.seq) else {
            panic!("length {len}: {:?}", r.read(at.lane, at.seq))
        };
        assert_eq!(e.args, &bytes[..len], "length {len}");
        assert!(!e.truncated(), "length {len}");
    }
}

#[test]
fn an_uninitialised_buffer_encodes_the_same_bytes_as_a_zeroed_one() {
    let encode = |a: &mut ArgWriter<'_>| {
        a.u64(65_001);
        a.ip("10.0.0.2".parse().unwrap());
        a.str("peer up");
        a.bool(true);
    };
    let mut zeroed = [0u8; 64];
    let mut a = ArgWriter::new(&mut zeroed);
    encode(&mut a);
    let mut raw = [std::mem::MaybeUninit::<u8>::uninit(); 64];
    let mut b = ArgWriter::uninit(&mut raw);
    encode(&mut b);
    assert_eq!(a.as_bytes(), b.as_bytes());
    assert_eq!(a.as_bytes().len(), 9 + 5 + 10 + 2);
}

#[test]
fn the_oldest_entries_are_overwritten_at_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 8, 64);
    for i in 0..20 {
        append_tagged(&w, 0, i).unwrap();
    }
    let r = TableReader::open(&path).unwrap();
    assert_eq!((r.oldest(0), r.head(0)), (13, 21));
    assert_eq!(r.read(0, 12), Slot::Overwritten);
    let kept: Vec<u64> = (r.oldest(0)..r.head(0))
        .map(|s| match r.read(0, s) {
            Slot::Entry(e) => untag(&e).1,
            other => panic!("{s}: {other:?}"),
        })
        .collect();
    assert_eq!(kept, (12..20).collect::<Vec<_>>());
}

#[test]
fn a_lapped_cursor_reports_the_gap_count() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 8, 64);
    let r = TableReader::open(&path).unwrap();
    let mut c = Cursor::at_oldest(&r);
    for i in 0..3 {
        append_tagged(&w, 0, i).unwrap();
    }
    let p = c.poll(&r, 100);
    assert_eq!((p.entries.len(), p.lapped), (3, 0));
    for i in 3..30 {
        append_tagged(&w, 0, i).unwrap();
    }
    let p = c.poll(&r, 100);
    // 27 new entries, only the newest 8 still in the ring.
    assert_eq!(p.lapped, 19);
    let seen: Vec<u64> = p.entries.iter().map(|e| untag(e).1).collect();
    assert_eq!(seen, (22..30).collect::<Vec<_>>());
    assert_eq!(c.position(), [31]);
}

#[test]
fn arguments_that_do_not_fit_are_cut_and_flagged_never_spilled() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 4, 64);
    assert_eq!(w.payload_capacity(), 40);
    // An encoder sized to the slot cuts the string at a character boundary.
    let mut buf = vec![0u8; w.payload_capacity()];
    let mut a = ArgWriter::new(&mut buf);
    a.str(&"é".repeat(100));
    assert!(a.truncated());
    let f = if a.truncated() { flags::TRUNCATED } else { 0 };
    w.append(1, 1, Level::Error, f, a.as_bytes()).unwrap();
    // Raw bytes longer than the slot are cut by the table itself.
    w.append(2, 2, Level::Error, 0, &[0x55; 300]).unwrap();
    append_tagged(&w, 3, 3).unwrap();
    let r = TableReader::open(&path).unwrap();
    let Slot::Entry(e1) = r.read(0, 1) else {
        panic!()
    };
    assert!(e1.truncated());
    let Some(Arg::Str(s)) = decode(&e1.args).next() else {
        panic!("{:?}", e1.args)
    };
    assert_eq!(s, "é".repeat(18));
    let Slot::Entry(e2) = r.read(0, 2) else {
        panic!()
    };
    assert!(e2.truncated());
    assert_eq!(e2.args, vec![0x55; 40]);
    let Slot::Entry(e3) = r.read(0, 3) else {
        panic!()
    };
    assert_eq!(untag(&e3), (3, 3), "the neighbour slot is intact");
    assert_eq!(r.counters().truncated, 2);
}

#[test]
fn reopening_keeps_history_and_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 100, 128);
    for i in 0..5 {
        append_tagged(&w, 0, i).unwrap();
    }
    drop(w);
    // A different requested size does not resize an existing table.
    let w = TableWriter::open(&path, &config(5000, 512)).unwrap();
    assert_eq!((w.info().capacity, w.info().slot_size), (100, 128));
    for i in 5..10 {
        assert_eq!(append_tagged(&w, 0, i), Some(i + 1));
    }
    let r = TableReader::open(&path).unwrap();
    let all: Vec<u64> = (1..r.head(0))
        .map(|s| match r.read(0, s) {
            Slot::Entry(e) => untag(&e).1,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
}

#[test]
fn busy_slots_left_by_a_dead_writer_are_marked_torn_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 16, 64);
    append_tagged(&w, 0, 0).unwrap();
    // Simulate a writer that died after claiming sequence 2: its slot stays busy.
    let seq = w.table.words.at(W_HEAD).fetch_add(1, Ordering::Relaxed);
    w.table
        .words
        .at(w.table.slot_base(0, seq))
        .store(seq << 2 | BUSY, Ordering::Release);
    append_tagged(&w, 0, 2).unwrap();
    let r = TableReader::open(&path).unwrap();
    assert_eq!(r.read(0, 2), Slot::Busy);
    drop(w);
    let w = TableWriter::open(&path, &config(16, 64)).unwrap();
    assert_eq!(r.read(0, 2), Slot::Torn);
    assert_eq!(w.counters().torn, 1);
    assert!(matches!(r.read(0, 1), Slot::Entry(_)) && matches!(r.read(0, 3), Slot::Entry(_)));
    // A cursor skips and counts it.
    let p = Cursor::at_oldest(&r).poll(&r, 10);
    assert_eq!((p.entries.len(), p.torn), (2, 1));
    // The writer laps the torn slot normally.
    for i in 0..16 {
        append_tagged(&w, 1, i).unwrap();
    }
    assert_eq!(w.counters().lost_busy, 0);
}

#[test]
fn a_cursor_waits_for_a_slow_writer_then_gives_up_on_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 16, 64);
    // A writer that took sequence 1 and has not claimed its slot yet.
    w.table.words.at(W_HEAD).fetch_add(1, Ordering::Relaxed);
    append_tagged(&w, 0, 2).unwrap();
    let r = TableReader::open(&path).unwrap();
    let mut c = Cursor::at_oldest(&r);
    for _ in 0..STALL_POLLS {
        assert_eq!(c.poll(&r, 10), Poll::default());
    }
    let p = c.poll(&r, 10);
    assert_eq!((p.entries.len(), p.torn), (1, 1));
}

#[test]
fn other_format_versions_and_other_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 16, 64);
    w.table
        .words
        .at(W_VERSION)
        .store(3 | 4 << 32, Ordering::Relaxed);
    drop(w);
    let err = TableReader::open(&path).unwrap_err();
    assert_eq!(err.kind(), TableErrorKind::IncompatibleVersion);
    let msg = err.to_string();
    assert!(
        msg.contains("bgp.bgpd.log") && msg.contains("version 3.4"),
        "{msg}"
    );
    let err = TableWriter::open(&path, &config(16, 64)).unwrap_err();
    assert_eq!(err.kind(), TableErrorKind::IncompatibleVersion);

    let other = dir.path().join("notes.txt");
    std::fs::write(&other, vec![b'x'; 8192]).unwrap();
    assert_eq!(
        TableReader::open(&other).unwrap_err().kind(),
        TableErrorKind::NotATable
    );
    std::fs::write(&other, b"short").unwrap();
    assert_eq!(
        TableReader::open(&other).unwrap_err().kind(),
        TableErrorKind::NotATable
    );
    let bad = TableWriter::open(&dir.path().join("x.log"), &config(16, 60)).unwrap_err();
    assert_eq!(bad.kind(), TableErrorKind::InvalidConfig);
}

#[test]
fn the_owner_moves_an_older_format_table_aside_and_starts_anew() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 16, 64);
    append_tagged(&w, 0, 0).unwrap();
    w.table
        .words
        .at(W_VERSION)
        .store(u64::from(FORMAT_MAJOR - 1), Ordering::Relaxed);
    drop(w);
    // A reader of this build refuses it, naming both versions…
    let err = TableReader::open(&path).unwrap_err();
    assert_eq!(err.kind(), TableErrorKind::IncompatibleVersion);
    // …its owner moves it aside for the older build's tools and starts a new one.
    let w = TableWriter::open(&path, &config(16, 64)).unwrap();
    let aside = dir
        .path()
        .join(format!("bgp.bgpd.log.v{}", FORMAT_MAJOR - 1));
    assert!(aside.exists());
    assert_eq!(append_tagged(&w, 0, 1), Some(1));
    let r = TableReader::open(&path).unwrap();
    assert_eq!(r.entries(), 1);
    // Not a `.log` name, so readers do not list it as a table.
    assert!(!aside.to_string_lossy().ends_with(".log"));
}

#[test]
fn concurrent_writers_lose_nothing_and_never_mix_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 100_000, 64);
    let w = Arc::new(w);
    let (threads, per) = (4u64, 20_000u64);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                (0..per)
                    .filter(|&i| append_tagged(&w, t, i).is_some())
                    .count()
            })
        })
        .collect();
    let written: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(written as u64, threads * per);
    let r = TableReader::open(&path).unwrap();
    let mut seen = vec![vec![false; per as usize]; threads as usize];
    for s in r.oldest(0)..r.head(0) {
        let Slot::Entry(e) = r.read(0, s) else {
            panic!("{s}: {:?}", r.read(0, s))
        };
        let (t, i) = untag(&e);
        assert!(
            !std::mem::replace(&mut seen[t as usize][i as usize], true),
            "({t},{i}) twice"
        );
    }
    assert!(seen.iter().flatten().all(|&b| b), "an entry is missing");
    assert_eq!(r.counters(), TableCounters::default());
}

#[test]
fn readers_racing_writers_on_a_tiny_ring_never_see_a_mixed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = table(&dir, 4, 64);
    let w = Arc::new(w);
    let start = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let (w, start) = (Arc::clone(&w), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for i in 0..100_000 {
                    append_tagged(&w, t, i);
                }
            })
        })
        .collect();
    let r = TableReader::open(&path).unwrap();
    start.wait();
    let mut entries = 0u64;
    while !writers.iter().all(|h| h.is_finished()) {
        let head = r.head(0);
        for s in head.saturating_sub(4).max(1)..head {
            if let Slot::Entry(e) = r.read(0, s) {
                untag(&e);
                entries += 1;
            }
        }
    }
    for h in writers {
        h.join().unwrap();
    }
    let c = w.counters();
    // Whatever was dropped under contention was counted, and every sequence is accounted for.
    let window: Vec<Slot> = (r.oldest(0)..r.head(0)).map(|s| r.read(0, s)).collect();
    let kept = window
        .iter()
        .filter(|s| matches!(s, Slot::Entry(_)))
        .count() as u64;
    let missing = window.iter().filter(|s| matches!(s, Slot::Missing)).count() as u64;
    assert_eq!(kept + missing, 4, "{window:?}");
    assert!(missing <= c.lost_busy + c.lost_lapped);
    assert_eq!(r.head(0) - 1, 300_000);
    assert!(entries > 0);
    eprintln!(
        "lost under contention: busy {} lapped {}",
        c.lost_busy, c.lost_lapped
    );
}

/// A table whose writers each get a lane of their own: with 32 lanes, these threads do even
/// while other tests' threads hold indices.
fn laned(dir: &tempfile::TempDir, capacity: u64) -> (PathBuf, TableWriter) {
    let path = dir.path().join("lanes.bgpd.log");
    let cfg = TableConfig {
        lanes: MAX_LANES,
        ..config(capacity, 64)
    };
    (path.clone(), TableWriter::open(&path, &cfg).unwrap())
}

#[test]
fn each_writing_thread_has_a_lane_of_its_own_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = laned(&dir, 50_000);
    let w = Arc::new(w);
    let (threads, per) = (6u64, 20_000u64);
    // All start together and hold their lanes until all are done: a lane passes to another
    // thread only once its thread has ended.
    let (start, end) = (
        Arc::new(Barrier::new(threads as usize)),
        Arc::new(Barrier::new(threads as usize)),
    );
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (w, start, end) = (Arc::clone(&w), Arc::clone(&start), Arc::clone(&end));
            std::thread::spawn(move || {
                start.wait();
                let lanes: std::collections::BTreeSet<u32> = (0..per)
                    .map(|i| {
                        w.append(
                            i as i64,
                            (t * 10 + i % 10) as u32,
                            Level::Info,
                            0,
                            &tagged(t, i),
                        )
                        .expect("an own lane never drops")
                        .lane
                    })
                    .collect();
                end.wait();
                lanes
            })
        })
        .collect();
    let lanes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // A thread keeps its lane; no two threads share one of their own.
    assert!(lanes.iter().all(|l| l.len() == 1), "{lanes:?}");
    let own: std::collections::BTreeSet<u32> = lanes.iter().flatten().copied().collect();
    assert_eq!(own.len(), threads as usize, "{lanes:?}");
    assert!(!own.contains(&0), "{lanes:?}");

    let r = TableReader::open(&path).unwrap();
    assert_eq!(r.entries(), threads * per);
    let mut seen = vec![vec![false; per as usize]; threads as usize];
    for lane in &own {
        // Each lane: one thread's entries, in order, numbered from 1.
        assert_eq!((r.oldest(*lane), r.head(*lane)), (1, per + 1));
        for seq in 1..=per {
            let Slot::Entry(e) = r.read(*lane, seq) else {
                panic!("{lane}/{seq}: {:?}", r.read(*lane, seq))
            };
            let (t, i) = untag(&e);
            assert_eq!(i, seq - 1, "lane {lane} out of order");
            assert!(!std::mem::replace(&mut seen[t as usize][i as usize], true));
        }
    }
    assert!(seen.iter().flatten().all(|&b| b), "an entry is missing");
    assert_eq!(r.counters(), TableCounters::default());
}

#[test]
fn readers_see_the_lanes_merged_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = laned(&dir, 100);
    let w = Arc::new(w);
    let r = TableReader::open(&path).unwrap();
    let mut cursor = Cursor::at_oldest(&r);
    // Two threads at once, even and odd times: the lanes interleave in time.
    let both = Arc::new(Barrier::new(2));
    let writers: Vec<_> = [0u64, 1]
        .into_iter()
        .map(|parity| {
            let (w, both) = (Arc::clone(&w), Arc::clone(&both));
            std::thread::spawn(move || {
                for k in 0..20 {
                    let i = 2 * k + parity;
                    let (id, args) = ((parity * 10 + i % 10) as u32, tagged(parity, i));
                    w.append(i as i64, id, Level::Info, 0, &args).unwrap();
                }
                // Both hold their lanes until both are done.
                both.wait();
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    let times = |entries: &[Entry]| -> Vec<i64> {
        entries.iter().map(|e| e.time.as_unix_nanos()).collect()
    };
    let all = r.all();
    assert_eq!(times(&all), (0..40).collect::<Vec<_>>());
    let lanes: std::collections::BTreeSet<u32> = all.iter().map(|e| e.lane).collect();
    assert_eq!(lanes.len(), 2, "{lanes:?}");
    assert_eq!(r.newest().map(|e| e.time.as_unix_nanos()), Some(39));
    let p = cursor.poll(&r, 100);
    assert_eq!(times(&p.entries), (0..40).collect::<Vec<_>>());
    assert!(!cursor.behind(&r));
    // A cursor saved and restored reads on from the same place in every lane.
    w.append(40, 0, Level::Info, 0, &tagged(0, 40)).unwrap();
    let mut restored = Cursor::at(&r, cursor.position());
    assert!(restored.behind(&r));
    assert_eq!(times(&restored.poll(&r, 100).entries), [40]);
}

#[test]
fn an_own_lane_overwrites_its_oldest_entries_at_capacity_and_reopens_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = laned(&dir, 8);
    let lane = std::thread::scope(|s| {
        s.spawn(|| {
            let lanes: Vec<u32> = (0..20)
                .map(|i| {
                    w.append(i, i as u32, Level::Info, 0, &tagged(0, i as u64))
                        .unwrap()
                        .lane
                })
                .collect();
            lanes[0]
        })
        .join()
        .unwrap()
    });
    assert_ne!(lane, 0);
    let kept = |r: &TableReader| -> Vec<u64> {
        (r.oldest(lane)..r.head(lane))
            .map(|s| match r.read(lane, s) {
                Slot::Entry(e) => e.time.as_unix_nanos() as u64,
                other => panic!("{s}: {other:?}"),
            })
            .collect()
    };
    let r = TableReader::open(&path).unwrap();
    assert_eq!((r.oldest(lane), r.head(lane)), (13, 21));
    assert_eq!(kept(&r), (12..20).collect::<Vec<_>>());
    // Reopened, the lane goes on where it was, slot by slot.
    drop(w);
    let w = TableWriter::open(&path, &config(8, 64)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 20..25 {
                w.append(i, i as u32, Level::Info, 0, &tagged(0, i as u64))
                    .unwrap();
            }
        });
    });
    let all: Vec<u64> = r
        .all()
        .iter()
        .map(|e| e.time.as_unix_nanos() as u64)
        .collect();
    assert_eq!(all.len() as u64, r.entries());
    assert!(all.windows(2).all(|p| p[0] < p[1]), "{all:?}");
    assert_eq!(*all.last().unwrap(), 24);
}
