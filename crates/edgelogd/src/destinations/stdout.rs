//! `stdout`: one line per record, for pipes and for watching the daemon work.

use std::io::{self, BufWriter, Write as _};
use std::sync::Arc;

use crate::component::{Built, DestinationSpec, DestinationStart, DestinationType, Sink};
use crate::event::{Device, Event};
use crate::output::{Encoder, OutputFormat};

pub(crate) const TYPE: DestinationType = DestinationType {
    name: "stdout",
    read: |d, s, _| {
        let format = OutputFormat::read(d, s, &OutputFormat::ALL);
        Some(Arc::new(StdoutConfig { format }))
    },
};

/// `type = "stdout"`.
#[derive(Debug, Clone, PartialEq)]
struct StdoutConfig {
    format: OutputFormat,
}

impl DestinationSpec for StdoutConfig {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn endpoint(&self) -> String {
        "standard output".to_owned()
    }

    fn how(&self) -> String {
        self.format.name().to_owned()
    }

    fn breakable_framing(&self) -> Option<&'static str> {
        self.format.is_text().then_some("standard output's lines")
    }

    fn build(&self, cx: DestinationStart<'_>) -> anyhow::Result<Built> {
        let encoder = Encoder::new(self.format, cx.escape, cx.stats);
        Ok(Built::local(Box::new(move || {
            Ok(Box::new(Stdout::new(encoder)) as Box<dyn Sink>)
        })))
    }
}

#[derive(Debug)]
struct Stdout {
    encoder: Encoder,
    out: BufWriter<io::Stdout>,
    line: Vec<u8>,
}

impl Stdout {
    fn new(encoder: Encoder) -> Stdout {
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
