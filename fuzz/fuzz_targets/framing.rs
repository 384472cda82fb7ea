//! The framer under arbitrary bytes and read boundaries: every byte is accounted for (in a
//! frame, a trailer, a length prefix or the discarded count), no frame exceeds the maximum, and
//! the framer always makes progress.
#![no_main]

use edgelog_codec::{Framer, Framing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else { return };
    let step = usize::from(step % 32) + 1;
    for framing in [Framing::Auto, Framing::Lf, Framing::Nul, Framing::OctetCounting] {
        let mut framer = Framer::new(framing, 64);
        let mut buf = Vec::new();
        let (mut fed, mut frames, mut consumed_total) = (0, 0usize, 0usize);
        loop {
            let eof = fed == input.len();
            loop {
                let (n, frame) = framer.next_frame(&buf, eof);
                if let Some(f) = frame {
                    assert!(f.data.len() <= 64);
                    frames += 1;
                }
                consumed_total += n;
                buf.drain(..n);
                if n == 0 {
                    break;
                }
            }
            if eof {
                break;
            }
            let end = (fed + step).min(input.len());
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
        }
        assert!(buf.is_empty());
        assert_eq!(consumed_total, input.len());
        assert!(frames <= input.len() + 1);
    }
});
