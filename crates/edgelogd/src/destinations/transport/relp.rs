//! The RELP client: rsyslog's Reliable Event Logging Protocol, so a record leaves our queue only
//! once the receiver said it has it.
//!
//! ```text
//! frame = TXNR SP COMMAND SP DATALEN [SP DATA] LF       TXNR 1..999999999, then 1 again
//! → 1 open 85 relp_version=0\nrelp_software=edgelog,0.1.0\ncommands=syslog
//! ← 1 rsp 92 200 OK\nrelp_version=0\n…\ncommands=syslog
//! → 2 syslog 57 <13>1 2026-11-22T09:00:00Z leaf-01 app - - - hello
//! ← 2 rsp 6 200 OK
//! → 9 close 0
//! ← 9 rsp 0            (then 0 serverclose 0)
//! ```
//!
//! A batch is sent in windows of at most `window` unanswered transactions (rsyslog's default
//! window is 128); each `200` answer acknowledges its record, anything else (or a connection
//! that breaks first) leaves it unacknowledged, to be sent again after the reconnect. So
//! nothing is lost when a receiver goes away in the middle of a stream, and what it receives
//! twice is at most the window it had not answered — RELP's at-least-once contract.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use edgelog_queue::Record;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::{Dialer, Io, Outcome, Transport, TransportConfig};
use crate::config::reader::{self, Diagnostics, Section};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "relp",
    read: |d, s, dirs| crate::destinations::network::read(d, s, dirs, read),
};

/// `window`: transactions sent and not yet answered, at most (128 by default).
fn read(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> TransportConfig {
    let window = s
        .value(d, "window", reader::count(1..=10_000))
        .map_or(128, |n| n as usize);
    TransportConfig::Relp { window }
}

/// How long the receiver may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TXNR: u32 = 999_999_999;

/// One RELP session over a connected stream.
#[derive(Debug)]
struct Session<S> {
    io: S,
    next_txnr: u32,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    window: usize,
}

/// One parsed frame.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    txnr: u32,
    command: String,
    data: Vec<u8>,
}

/// Parses one frame from the front of `buf`: `Ok(None)` when more bytes are needed.
fn parse(buf: &[u8]) -> anyhow::Result<Option<(Frame, usize)>> {
    // Header: three space-separated tokens (the third may end the frame when DATALEN is 0).
    let mut fields = Vec::with_capacity(3);
    let mut at = 0;
    while fields.len() < 3 {
        let Some(end) = buf[at..].iter().position(|&b| b == b' ' || b == b'\n') else {
            if buf.len() - at > 32 {
                bail!("RELP header too long");
            }
            return Ok(None);
        };
        fields.push(&buf[at..at + end]);
        at += end + 1;
        if buf[at - 1] == b'\n' && fields.len() < 3 {
            bail!("RELP frame cut short");
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let txnr: u32 = text(fields[0])
        .parse()
        .map_err(|_| anyhow!("bad RELP transaction number {:?}", text(fields[0])))?;
    let command = text(fields[1]);
    let len: usize = text(fields[2])
        .parse()
        .map_err(|_| anyhow!("bad RELP data length {:?}", text(fields[2])))?;
    if len == 0 {
        // "N cmd 0\n": the separator we consumed was the trailer.
        return Ok(Some((
            Frame {
                txnr,
                command,
                data: Vec::new(),
            },
            at,
        )));
    }
    if buf.len() < at + len + 1 {
        return Ok(None);
    }
    if buf[at + len] != b'\n' {
        bail!("RELP frame {txnr} has no trailer");
    }
    Ok(Some((
        Frame {
            txnr,
            command,
            data: buf[at..at + len].to_vec(),
        },
        at + len + 1,
    )))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Opens a session: offers `syslog` and expects the receiver to accept it.
    async fn open(io: S, window: usize) -> anyhow::Result<Session<S>> {
        let mut s = Session {
            io,
            next_txnr: 1,
            buf: Vec::new(),
            window: window.max(1),
        };
        let offers = format!(
            "relp_version=0\nrelp_software=edgelog,{},https://example.invalid/edgelog\ncommands=syslog",
            env!("CARGO_PKG_VERSION")
        );
        let txnr = s.write_frame("open", offers.as_bytes()).await?;
        s.io.flush().await?;
        let answer = s.answer().await.context("opening the RELP session")?;
        if answer.txnr != txnr || !answer.data.starts_with(b"200") {
            bail!(
                "the receiver refused the RELP session: {}",
                String::from_utf8_lossy(&answer.data)
            );
        }
        if !String::from_utf8_lossy(&answer.data).contains("syslog") {
            bail!("the receiver does not offer the RELP syslog command");
        }
        Ok(s)
    }

    async fn write_frame(&mut self, command: &str, data: &[u8]) -> anyhow::Result<u32> {
        let txnr = self.next_txnr;
        self.next_txnr = if txnr == MAX_TXNR { 1 } else { txnr + 1 };
        let mut head = itoa::Buffer::new().format(txnr).to_owned();
        head.push(' ');
        head.push_str(command);
        head.push(' ');
        head.push_str(itoa::Buffer::new().format(data.len()));
        let mut frame = Vec::with_capacity(head.len() + data.len() + 2);
        frame.extend_from_slice(head.as_bytes());
        if !data.is_empty() {
            frame.push(b' ');
            frame.extend_from_slice(data);
        }
        frame.push(b'\n');
        self.io
            .write_all(&frame)
            .await
            .context("writing to the receiver")?;
        Ok(txnr)
    }

    /// The next frame from the receiver.
    async fn answer(&mut self) -> anyhow::Result<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(ANSWER_TIMEOUT, self.io.read(&mut chunk))
                .await
                .map_err(|_| anyhow!("the receiver did not answer for {ANSWER_TIMEOUT:?}"))?
                .context("reading the receiver's answer")?;
            if n == 0 {
                bail!("the receiver closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `records` (sequence number, message) and returns the sequence numbers the
    /// receiver answered `200` for, and the error that ended the batch early, if any.
    async fn send(&mut self, records: &[(u64, &[u8])]) -> (Vec<u64>, Option<anyhow::Error>) {
        let mut accepted = Vec::with_capacity(records.len());
        let mut refused = None;
        for window in records.chunks(self.window) {
            if refused.is_some() {
                break;
            }
            let mut open: HashMap<u32, u64> = HashMap::with_capacity(window.len());
            for (seq, msg) in window {
                match self.write_frame("syslog", msg).await {
                    Ok(txnr) => {
                        open.insert(txnr, *seq);
                    }
                    Err(e) => return (accepted, Some(e)),
                }
            }
            if let Err(e) = self.io.flush().await {
                return (accepted, Some(e.into()));
            }
            while !open.is_empty() {
                let frame = match self.answer().await {
                    Ok(f) => f,
                    Err(e) => return (accepted, Some(e)),
                };
                match (frame.command.as_str(), open.remove(&frame.txnr)) {
                    ("rsp", Some(seq)) if frame.data.starts_with(b"200") => accepted.push(seq),
                    ("rsp", Some(_)) => {
                        // Keep reading this window's answers; send no further window.
                        let why = String::from_utf8_lossy(&frame.data).into_owned();
                        refused = Some(anyhow!("the receiver refused a record: {why}"));
                    }
                    ("serverclose", _) => {
                        return (accepted, Some(anyhow!("the receiver closed the session")));
                    }
                    (other, _) => {
                        return (
                            accepted,
                            Some(anyhow!("unexpected RELP frame {} {other}", frame.txnr)),
                        );
                    }
                }
            }
        }
        (accepted, refused)
    }

    /// Ends the session politely (best effort).
    async fn close(&mut self) {
        if self.write_frame("close", b"").await.is_ok() && self.io.flush().await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.answer()).await;
        }
    }
}

/// `relp`: a [`Session`] over TCP or TLS.
pub(super) struct Relp {
    dialer: Dialer,
    window: usize,
    session: Option<Session<Box<dyn Io>>>,
}

impl Relp {
    pub(super) fn new(dialer: Dialer, window: usize) -> Relp {
        Relp {
            dialer,
            window,
            session: None,
        }
    }
}

impl Transport for Relp {
    async fn connect(&mut self) -> anyhow::Result<()> {
        let io = self.dialer.dial().await?;
        let session = Session::open(io, self.window)
            .await
            .with_context(|| self.dialer.address.clone())?;
        self.session = Some(session);
        Ok(())
    }

    fn connected(&self) -> bool {
        self.session.is_some()
    }

    async fn send(&mut self, batch: &[Record]) -> Outcome {
        let Some(session) = self.session.as_mut() else {
            return Outcome::failed(anyhow!("not connected"));
        };
        let records: Vec<(u64, &[u8])> = batch.iter().map(|r| (r.seq, &r.payload[..])).collect();
        let (accepted, error) = session.send(&records).await;
        Outcome {
            accepted,
            error,
            ..Outcome::default()
        }
    }

    fn disconnect(&mut self) {
        self.session = None;
    }

    async fn close(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_with_and_without_data() {
        let (f, used) = parse(b"2 rsp 6 200 OK\n3 rsp").unwrap().unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), &f.data[..], used),
            (2, "rsp", &b"200 OK"[..], 15)
        );
        let (f, used) = parse(b"0 serverclose 0\n").unwrap().unwrap();
        assert_eq!(
            (f.txnr, f.command.as_str(), f.data.len(), used),
            (0, "serverclose", 0, 16)
        );
        assert!(parse(b"2 rsp 6 200").unwrap().is_none());
        assert!(parse(b"2 rsp").unwrap().is_none());
        assert!(parse(b"x rsp 6 200 OK\n").is_err());
        assert!(parse(b"2 rsp 6 200 OKX").is_err());
    }

    #[tokio::test]
    async fn a_session_acknowledges_what_the_receiver_answered() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let receiver = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 1024];
                let n = server.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return got;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some((f, used)) = parse(&buf).unwrap() {
                    buf.drain(..used);
                    let answer = match f.command.as_str() {
                        "open" => "200 OK\nrelp_version=0\ncommands=syslog".to_owned(),
                        // The third record is refused.
                        "syslog" if f.data.ends_with(b"2") => "500 no".to_owned(),
                        "syslog" => {
                            got.push(String::from_utf8(f.data).unwrap());
                            "200 OK".to_owned()
                        }
                        _ => return got,
                    };
                    let out = format!("{} rsp {} {answer}\n", f.txnr, answer.len());
                    server.write_all(out.as_bytes()).await.unwrap();
                }
            }
        });
        let mut s = Session::open(client, 2).await.unwrap();
        let msgs: Vec<(u64, Vec<u8>)> = (0..4u64)
            .map(|i| (10 + i, format!("m{i}").into_bytes()))
            .collect();
        let refs: Vec<(u64, &[u8])> = msgs.iter().map(|(s, m)| (*s, m.as_slice())).collect();
        let (ok, err) = s.send(&refs).await;
        // 12 was refused; 13, in the same window, was answered and counts.
        assert_eq!(ok, [10, 11, 13]);
        assert!(
            err.unwrap()
                .to_string()
                .contains("refused a record: 500 no")
        );
        drop(s);
        assert_eq!(receiver.await.unwrap(), ["m0", "m1", "m3"]);
    }
}
