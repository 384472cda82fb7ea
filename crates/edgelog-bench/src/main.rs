//! `edgelog-load`: the load generator and the counting sink of the benchmark harness.
//!
//! `send` writes sequence-numbered syslog lines of a realistic shape (RFC 5424 or 3164) over
//! TCP, UDP or a unix datagram socket, at full speed or at a fixed rate — with
//! `--nonblocking`, a datagram the socket cannot take now is counted as refused rather than
//! waited for, as a program that must not block on logging does; `write` appends such lines to
//! a file at a rate, as a program logging to a file does. `sink` listens on TCP, splits frames
//! (LF, octet counting or auto), reads each `seq=N`, and reports what arrived: distinct
//! sequence numbers, duplicates, what is missing, and the rate; `--stall-after` makes it stop
//! reading for a while, as a receiver that hangs does. `count` reports the same of files.
//! Every command prints one JSON object, so a harness can tabulate them. Written for speed:
//! frames are built into one buffer per write, and the sink scans bytes without decoding the
//! syslog header.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use edgelog_codec::{Framer, Framing};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "edgelog-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Rfc5424,
    Rfc3164,
    /// A program's own log line: time, tag, text, no PRI.
    Plain,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send numbered records.
    Send {
        /// tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH (a datagram socket).
        #[arg(long)]
        to: String,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// The first sequence number.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Records per second (0: as fast as the receiver takes them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, value_enum, default_value = "rfc5424")]
        format: Format,
        /// TCP: octet counting instead of LF.
        #[arg(long)]
        octet_counting: bool,
        /// Datagrams: count what the socket refuses now instead of waiting for room.
        #[arg(long)]
        nonblocking: bool,
    },
    /// Append numbered lines to a file at a rate.
    Write {
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Lines per second (0: as fast as the disk takes them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, value_enum, default_value = "plain")]
        format: Format,
    },
    /// Count the numbered records in files (one per line).
    Count {
        /// The files (a missing one counts as empty).
        #[arg(long = "file", required = true)]
        files: Vec<std::path::PathBuf>,
        #[arg(long)]
        expect: u64,
    },
    /// Count numbered records arriving over TCP.
    Sink {
        /// tcp://HOST:PORT to listen on.
        #[arg(long)]
        listen: String,
        /// Stop once this many distinct records arrived.
        #[arg(long)]
        expect: u64,
        /// Stop after this long without a byte.
        #[arg(long, default_value_t = 10)]
        idle_seconds: u64,
        /// Stop reading once this many distinct records arrived…
        #[arg(long, value_name = "N")]
        stall_after: Option<u64>,
        /// …for this long, then go on.
        #[arg(long, default_value_t = 30)]
        stall_seconds: u64,
    },
}

fn record(out: &mut Vec<u8>, format: Format, seq: u64) {
    let body = match format {
        Format::Rfc5424 => format!(
            "<134>1 2026-11-22T08:00:00.123456Z leaf-01 bgpd 4242 PEER - peer 10.0.0.2 session state changed to Established seq={seq}"
        ),
        Format::Rfc3164 => format!(
            "<134>Nov 22 08:00:00 leaf-01 bgpd[4242]: peer 10.0.0.2 session state changed to Established seq={seq}"
        ),
        Format::Plain => format!(
            "2026-11-22T08:00:00.123456Z bgpd[4242]: peer 10.0.0.2 session state changed to Established seq={seq}"
        ),
    };
    out.extend_from_slice(body.as_bytes());
}

fn send(
    to: &str,
    count: u64,
    start: u64,
    rate: u64,
    format: Format,
    octet: bool,
    nonblocking: bool,
) -> anyhow::Result<serde_json::Value> {
    let begun = Instant::now();
    let mut refused = 0u64;
    // A datagram send: refused (counted) when the socket is full and we must not wait.
    let mut datagram = |r: std::io::Result<usize>| -> anyhow::Result<()> {
        match r {
            Ok(_) => Ok(()),
            Err(e) if nonblocking && e.kind() == std::io::ErrorKind::WouldBlock => {
                refused += 1;
                Ok(())
            }
            Err(e) => Err(e).context("sending"),
        }
    };
    // Paced sends go in small bursts, checked against the clock.
    let pace = |sent: u64| pace(begun, rate, sent);
    let mut one = Vec::with_capacity(256);
    if let Some(addr) = to.strip_prefix("tcp://") {
        let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        let mut buf = Vec::with_capacity(1 << 20);
        let burst = if rate > 0 { (rate / 100).max(1) } else { 4096 };
        let mut seq = start;
        while seq < start + count {
            buf.clear();
            for s in seq..(seq + burst).min(start + count) {
                one.clear();
                record(&mut one, format, s);
                if octet {
                    edgelog_codec::framing::write_octet_counted(&mut buf, &one);
                } else {
                    edgelog_codec::framing::write_delimited(&mut buf, &one, b'\n');
                }
            }
            s.write_all(&buf).context("sending")?;
            seq = (seq + burst).min(start + count);
            pace(seq - start);
        }
        s.flush()?;
    } else if let Some(addr) = to.strip_prefix("udp://") {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.connect(addr)
            .with_context(|| format!("connecting to {addr}"))?;
        s.set_nonblocking(nonblocking)?;
        for (i, seq) in (start..start + count).enumerate() {
            one.clear();
            record(&mut one, format, seq);
            datagram(s.send(&one))?;
            if i % 8 == 0 {
                pace(i as u64);
            }
        }
    } else if let Some(path) = to.strip_prefix("unix://") {
        let s = UnixDatagram::unbound()?;
        s.set_nonblocking(nonblocking)?;
        for (i, seq) in (start..start + count).enumerate() {
            one.clear();
            record(&mut one, format, seq);
            datagram(s.send_to(&one, path)).with_context(|| format!("sending to {path}"))?;
            if i % 8 == 0 {
                pace(i as u64);
            }
        }
    } else {
        bail!("unknown destination {to:?}: expected tcp://, udp:// or unix://");
    }
    let secs = begun.elapsed().as_secs_f64();
    Ok(json!({
        "sent": count - refused, "refused": refused, "seconds": secs,
        "rate": count as f64 / secs,
    }))
}

/// Paces `done` of a stream started at `begun` to `rate` per second (0: no pacing).
fn pace(begun: Instant, rate: u64, done: u64) {
    if rate > 0 {
        let due = Duration::from_secs_f64(done as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(begun.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

fn write_file(
    path: &std::path::Path,
    count: u64,
    rate: u64,
    format: Format,
) -> anyhow::Result<serde_json::Value> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let begun = Instant::now();
    let burst = if rate > 0 { (rate / 100).max(1) } else { 4096 };
    let mut buf = Vec::with_capacity(1 << 20);
    let mut seq = 0;
    while seq < count {
        buf.clear();
        for s in seq..(seq + burst).min(count) {
            record(&mut buf, format, s);
            buf.push(b'\n');
        }
        // Whole lines per write, as a logging program writes them.
        f.write_all(&buf)
            .with_context(|| format!("writing {}", path.display()))?;
        seq = (seq + burst).min(count);
        pace(begun, rate, seq);
    }
    let secs = begun.elapsed().as_secs_f64();
    Ok(json!({"written": count, "seconds": secs, "rate": count as f64 / secs}))
}

/// The `seq=N` number at the end of a frame.
fn seq_of(frame: &[u8]) -> Option<u64> {
    let at = memchr::memmem::rfind(frame, b"seq=")? + 4;
    let digits = frame[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// What arrived of records numbered `0..expect`.
#[derive(Debug)]
struct Tally {
    seen: Vec<bool>,
    distinct: u64,
    duplicates: u64,
    /// The lowest and highest duplicated sequence numbers.
    duplicated: Option<(u64, u64)>,
    unexpected: u64,
    total: u64,
}

impl Tally {
    fn new(expect: u64) -> Tally {
        Tally {
            seen: vec![false; expect as usize],
            distinct: 0,
            duplicates: 0,
            duplicated: None,
            unexpected: 0,
            total: 0,
        }
    }

    fn add(&mut self, seq: u64) {
        self.total += 1;
        match self.seen.get_mut(seq as usize) {
            Some(b) if *b => {
                self.duplicates += 1;
                let (lo, hi) = self.duplicated.get_or_insert((seq, seq));
                (*lo, *hi) = ((*lo).min(seq), (*hi).max(seq));
            }
            Some(b) => {
                *b = true;
                self.distinct += 1;
            }
            None => self.unexpected += 1,
        }
    }

    fn complete(&self) -> bool {
        self.distinct == self.seen.len() as u64
    }

    fn report(&self, secs: f64) -> serde_json::Value {
        let missing: Vec<u64> = self
            .seen
            .iter()
            .enumerate()
            .filter(|(_, b)| !**b)
            .map(|(i, _)| i as u64)
            .take(20)
            .collect();
        json!({
            "received": self.total, "distinct": self.distinct, "duplicates": self.duplicates,
            "lost": self.seen.len() as u64 - self.distinct, "unexpected": self.unexpected,
            "first_missing": missing, "duplicated_range": self.duplicated, "seconds": secs,
            "rate": if secs > 0.0 { self.distinct as f64 / secs } else { 0.0 },
        })
    }
}

fn sink(
    listen: &str,
    expect: u64,
    idle: u64,
    stall: Option<(u64, Duration)>,
) -> anyhow::Result<serde_json::Value> {
    let addr = listen
        .strip_prefix("tcp://")
        .with_context(|| format!("unknown listen address {listen:?}: expected tcp://HOST:PORT"))?;
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    // Readers stop reading while this is set (a stalled receiver: the sender's writes back up).
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u64>>();
    let readers_stalled = stalled.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            let stalled = readers_stalled.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut framer = Framer::new(Framing::Auto, 1 << 16);
                let mut buf = Vec::with_capacity(1 << 20);
                let mut chunk = vec![0u8; 1 << 20];
                loop {
                    while stalled.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    buf.extend_from_slice(&chunk[..n]);
                    let mut seqs = Vec::new();
                    let mut start = 0;
                    loop {
                        let (used, frame) = framer.next_frame(&buf[start..], n == 0);
                        start += used;
                        match frame {
                            Some(f) => seqs.extend(seq_of(f.data)),
                            None if used == 0 => break,
                            None => {}
                        }
                    }
                    buf.drain(..start);
                    if tx.send(seqs).is_err() || n == 0 {
                        break;
                    }
                }
            });
        }
    });
    let mut tally = Tally::new(expect);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut stall = stall;
    let mut resume_at: Option<Instant> = None;
    while !tally.complete() {
        // A stall (to come, or going on) does not count as idleness.
        let stalling = match (stall, resume_at) {
            (Some((_, pause)), _) => pause,
            (None, Some(at)) => at.saturating_duration_since(Instant::now()),
            (None, None) => Duration::ZERO,
        };
        match rx.recv_timeout(Duration::from_secs(idle) + stalling) {
            Ok(seqs) => {
                if seqs.is_empty() {
                    continue;
                }
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                for s in seqs {
                    tally.add(s);
                }
                if let Some((after, pause)) = stall
                    && tally.distinct >= after
                {
                    stall = None;
                    resume_at = Some(Instant::now() + pause);
                    stalled.store(true, std::sync::atomic::Ordering::Relaxed);
                    let stalled = stalled.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(pause);
                        stalled.store(false, std::sync::atomic::Ordering::Relaxed);
                    });
                }
            }
            Err(_) => break,
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    Ok(tally.report(secs))
}

/// The numbered records of files, one per line.
fn count(files: &[std::path::PathBuf], expect: u64) -> anyhow::Result<serde_json::Value> {
    let mut tally = Tally::new(expect);
    for f in files {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", f.display())),
        };
        for line in data.split(|&b| b == b'\n') {
            if let Some(seq) = seq_of(line) {
                tally.add(seq);
            }
        }
    }
    Ok(tally.report(0.0))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send {
            to,
            count,
            start,
            rate,
            format,
            octet_counting,
            nonblocking,
        } => send(&to, count, start, rate, format, octet_counting, nonblocking),
        Command::Write {
            file,
            count,
            rate,
            format,
        } => write_file(&file, count, rate, format),
        Command::Count { files, expect } => count(&files, expect),
        Command::Sink {
            listen,
            expect,
            idle_seconds,
            stall_after,
            stall_seconds,
        } => sink(
            &listen,
            expect,
            idle_seconds,
            stall_after.map(|n| (n, Duration::from_secs(stall_seconds))),
        ),
    };
    match result {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgelog-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
