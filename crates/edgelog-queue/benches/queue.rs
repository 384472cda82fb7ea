//! Queue throughput: a batch of 256 records of 200 bytes appended, read and acknowledged by
//! one consumer — the daemon's steady state — for the memory queue and the disk queue under
//! each fsync policy.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgelog_queue::disk::{DiskOptions, Fsync};
use edgelog_queue::{DiskQueue, MemoryQueue, Queue, WhenFull};

const BATCH: usize = 256;

fn cycle(q: &mut dyn Queue, refs: &[&[u8]]) {
    let a = q.append(refs).unwrap();
    let got = q.read(0, BATCH, usize::MAX).unwrap();
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    q.ack(0, &seqs).unwrap();
    assert_eq!(a.taken, BATCH);
}

fn bench(c: &mut Criterion) {
    let record = vec![b'x'; 200];
    let refs: Vec<&[u8]> = (0..BATCH).map(|_| record.as_slice()).collect();
    let mut g = c.benchmark_group("queue_batch_256x200B");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(5));

    let mut mem = MemoryQueue::new(1 << 20, 1 << 30, WhenFull::Block, &["d"]);
    g.bench_function("memory", |b| b.iter(|| cycle(&mut mem, &refs)));

    for (name, fsync) in [
        ("disk_fsync_never", Fsync::Never),
        ("disk_fsync_100ms", Fsync::Every(Duration::from_millis(100))),
        ("disk_fsync_always", Fsync::Always),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = DiskOptions {
            fsync,
            ..DiskOptions::default()
        };
        let (mut q, _) = DiskQueue::open(dir.path(), opts, &["d"]).unwrap();
        g.bench_function(name, |b| b.iter(|| cycle(&mut q, &refs)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
