//! `stdin`: one record per line, for pipes (`logread -F | edgelogd --config …`).
//!
//! End of input ends the source, not the daemon: the records read so far are flushed and the
//! other sources go on.

use tokio::io::AsyncReadExt as _;

use std::sync::Arc;

use edgelog_codec::{Framer, Framing};

use crate::component::{SourceSpec, SourceStart, SourceType, Stop};
use crate::ingest::Ingest;

pub(crate) const TYPE: SourceType = SourceType {
    name: "stdin",
    format: edgelog_codec::FormatHint::Auto,
    read: |_, _, _| Some(Arc::new(StdinSource)),
};

/// `type = "stdin"`: no keys of its own.
#[derive(Debug, Clone, PartialEq)]
struct StdinSource;

impl SourceSpec for StdinSource {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }

    fn endpoints(&self) -> Vec<String> {
        vec!["stdin".to_owned()]
    }

    fn describe(&self) -> String {
        "standard input".to_owned()
    }

    fn start(&self, cx: SourceStart<'_>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        Ok(tokio::spawn(run(cx.max_frame, cx.ingest, cx.stop)))
    }
}

async fn run(max_frame: usize, mut ingest: Ingest, mut stop: Stop) {
    let mut input = tokio::io::stdin();
    let mut framer = Framer::new(Framing::Lf, max_frame);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut eof = false;
    while !eof {
        buf.reserve(16 * 1024);
        eof = tokio::select! {
            _ = stop.wait() => true,
            r = input.read_buf(&mut buf) => !matches!(r, Ok(n) if n > 0),
        };
        if ingest
            .stream(&mut framer, &mut buf, eof, None)
            .await
            .is_err()
        {
            return;
        }
        if ingest.flush().await.is_err() {
            return;
        }
    }
}
