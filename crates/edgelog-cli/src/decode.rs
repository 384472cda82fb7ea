//! `edgelog decode`: stdin → frames → one JSON line per frame (docs/cli.md, `edgelog decode`).
//!
//! The input is streamed through the same [`Framer`] and [`Decoder`] the daemon uses, so what
//! this prints is what `edgelogd` would make of the same bytes. N frames in, N lines out: a
//! frame that does not parse is printed with its problems, never skipped. In `--strict` mode
//! the exit code is 2 when any frame broke its grammar, so the command can validate a capture.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Framer, Framing, Mode, json};
use edgelog_core::Timestamp;
use jiff::tz::TimeZone;

#[derive(Debug, clap::Args)]
pub(crate) struct DecodeArgs {
    /// Format of each frame: auto, rfc5424, rfc3164, gelf, kmsg or raw.
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    format: FormatHint,
    /// How the input is split into frames: auto, lf, nul or octet-counting.
    #[arg(long, default_value = "auto", value_name = "FRAMING")]
    framing: Framing,
    /// Report the first grammar violation of each frame instead of recovering.
    #[arg(long)]
    strict: bool,
    /// Longest frame in bytes; longer frames are cut and flagged.
    #[arg(long, default_value_t = Framer::DEFAULT_MAX_FRAME, value_name = "BYTES")]
    max_frame: usize,
    /// Time zone of timestamps that carry none (RFC 3164), e.g. Europe/Berlin or UTC.
    /// Default: the system's.
    #[arg(long, value_name = "TZ", value_parser = parse_zone)]
    timezone: Option<TimeZone>,
    /// The clock that yearless timestamps are placed near (RFC 3339). Default: now.
    #[arg(long, value_name = "TIME")]
    now: Option<Timestamp>,
    /// Boot time (RFC 3339) that turns kmsg's microseconds since boot into timestamps.
    #[arg(long, value_name = "TIME")]
    boot_time: Option<Timestamp>,
}

fn parse_zone(name: &str) -> Result<TimeZone, String> {
    if name.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    if name.eq_ignore_ascii_case("local") || name.eq_ignore_ascii_case("system") {
        return Ok(TimeZone::system());
    }
    TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))
}

pub(crate) fn run(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let zone = args.timezone.clone().unwrap_or_else(TimeZone::system);
    let context = Context::new(args.now.unwrap_or_else(Timestamp::now), zone);
    let decoder = Decoder::new(args.format, mode, context).with_boot_time(args.boot_time);
    let mut framer = Framer::new(args.framing, args.max_frame);

    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let (mut frames, mut broken) = (0u64, 0u64);
    let mut start = 0;
    let mut eof = false;
    loop {
        loop {
            let (consumed, frame) = framer.next_frame(&buf[start..], eof);
            start += consumed;
            let Some(frame) = frame else {
                if consumed == 0 {
                    break;
                }
                continue;
            };
            let m = decoder.decode_frame(frame);
            frames += 1;
            broken += u64::from(m.error.is_some());
            json::write_line(&mut out, &m);
            if out.len() >= 64 * 1024 {
                stdout.write_all(&out).context("writing to stdout")?;
                out.clear();
            }
        }
        if eof {
            break;
        }
        buf.drain(..start);
        start = 0;
        let filled = buf.len();
        buf.resize(filled + 64 * 1024, 0);
        let n = read_retrying(&mut stdin, &mut buf[filled..]).context("reading stdin")?;
        buf.truncate(filled + n);
        eof = n == 0;
    }
    stdout.write_all(&out).context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    if broken > 0 {
        eprintln!("edgelog decode: {broken} of {frames} frames broke their grammar (--strict)");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_retrying(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
