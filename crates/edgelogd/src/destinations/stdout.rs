//! `stdout`: one line per record, for pipes and for watching the daemon work.

use std::io::{self, BufWriter, Write as _};

use super::Sink;
use crate::event::{Device, Event};
use crate::output::Encoder;

#[derive(Debug)]
pub(super) struct Stdout {
    encoder: Encoder,
    out: BufWriter<io::Stdout>,
    line: Vec<u8>,
}

impl Stdout {
    pub(super) fn new(encoder: Encoder) -> Stdout {
        Stdout {
            encoder,
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
            line: Vec::with_capacity(1024),
        }
    }
}

impl Sink for Stdout {
    fn write(&mut self, e: &Event, device: &Device) -> io::Result<usize> {
        self.line.clear();
        self.encoder.encode(&mut self.line, e, device);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        Ok(self.line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
