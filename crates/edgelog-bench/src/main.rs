//! `edgelog-load`: the load generator and the counting sink of the benchmark harness.
//!
//! `send` writes sequence-numbered syslog lines of a realistic shape (RFC 5424 or 3164) over
//! TCP, UDP or a unix datagram socket, at full speed or at a fixed rate; `sink` listens on TCP,
//! splits frames (LF, octet counting or auto), reads each `seq=N`, and reports what arrived:
//! distinct sequence numbers, duplicates, what is missing, and the rate. Both print one JSON
//! object, so a harness can tabulate them. Written for speed: frames are built into one
//! buffer per write, and the sink scans bytes without decoding the syslog header.

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
) -> anyhow::Result<serde_json::Value> {
    let begun = Instant::now();
    // Paced sends go in small bursts, checked against the clock.
    let pace = |sent: u64| {
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(begun.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    };
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
        for (i, seq) in (start..start + count).enumerate() {
            one.clear();
            record(&mut one, format, seq);
            s.send(&one).context("sending")?;
            if i % 64 == 0 {
                pace(i as u64);
            }
        }
    } else if let Some(path) = to.strip_prefix("unix://") {
        let s = UnixDatagram::unbound()?;
        for (i, seq) in (start..start + count).enumerate() {
            one.clear();
            record(&mut one, format, seq);
            s.send_to(&one, path)
                .with_context(|| format!("sending to {path}"))?;
            if i % 64 == 0 {
                pace(i as u64);
            }
        }
    } else {
        bail!("unknown destination {to:?}: expected tcp://, udp:// or unix://");
    }
    let secs = begun.elapsed().as_secs_f64();
    Ok(json!({"sent": count, "seconds": secs, "rate": count as f64 / secs}))
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

fn sink(listen: &str, expect: u64, idle: u64) -> anyhow::Result<serde_json::Value> {
    let addr = listen
        .strip_prefix("tcp://")
        .with_context(|| format!("unknown listen address {listen:?}: expected tcp://HOST:PORT"))?;
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u64>>();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut framer = Framer::new(Framing::Auto, 1 << 16);
                let mut buf = Vec::with_capacity(1 << 20);
                let mut chunk = vec![0u8; 1 << 20];
                loop {
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
    let mut seen = vec![false; expect as usize];
    let (mut distinct, mut duplicates, mut beyond, mut total) = (0u64, 0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while distinct < expect {
        match rx.recv_timeout(Duration::from_secs(idle)) {
            Ok(seqs) => {
                if seqs.is_empty() {
                    continue;
                }
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                for s in seqs {
                    total += 1;
                    match seen.get_mut(s as usize) {
                        Some(b) if *b => duplicates += 1,
                        Some(b) => {
                            *b = true;
                            distinct += 1;
                        }
                        None => beyond += 1,
                    }
                }
            }
            Err(_) => break,
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    let missing: Vec<u64> = seen
        .iter()
        .enumerate()
        .filter(|(_, b)| !**b)
        .map(|(i, _)| i as u64)
        .take(20)
        .collect();
    Ok(json!({
        "received": total, "distinct": distinct, "duplicates": duplicates,
        "lost": expect - distinct, "unexpected": beyond, "first_missing": missing,
        "seconds": secs, "rate": if secs > 0.0 { distinct as f64 / secs } else { 0.0 },
    }))
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
        } => send(&to, count, start, rate, format, octet_counting),
        Command::Sink {
            listen,
            expect,
            idle_seconds,
        } => sink(&listen, expect, idle_seconds),
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
