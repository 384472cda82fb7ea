//! RFC 6587 framing: each framing alone, auto-detection per frame, oversize frames and
//! resynchronisation, the end of the stream, and arbitrary read boundaries.

use edgelog_codec::framing::{write_delimited, write_octet_counted};
use edgelog_codec::{Framer, Framing};

#[derive(Debug, PartialEq, Eq)]
struct Got {
    data: Vec<u8>,
    counted: bool,
    truncated: bool,
    incomplete: bool,
}

/// Feeds `input` in reads of `step` bytes, as a socket would, and collects the frames.
fn split(framing: Framing, max: usize, input: &[u8], step: usize) -> (Vec<Got>, u64) {
    let mut framer = Framer::new(framing, max);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        let eof = fed == input.len();
        loop {
            let (n, frame) = framer.next_frame(&buf, eof);
            if let Some(f) = frame {
                out.push(Got {
                    data: f.data.to_vec(),
                    counted: f.octet_counted,
                    truncated: f.truncated,
                    incomplete: f.incomplete,
                });
            }
            buf.drain(..n);
            if n == 0 {
                break;
            }
        }
        if eof {
            assert!(buf.is_empty(), "bytes left over at the end: {buf:?}");
            return (out, framer.discarded_bytes());
        }
        let end = (fed + step).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
    }
}

fn data(frames: &[Got]) -> Vec<&[u8]> {
    frames.iter().map(|g| g.data.as_slice()).collect()
}

#[test]
fn lf_crlf_and_nul_trailers() {
    let (f, _) = split(Framing::Lf, 100, b"one\ntwo\r\nthree", 1000);
    assert_eq!(data(&f), [&b"one"[..], b"two", b"three"]);
    let (f, _) = split(Framing::Nul, 100, b"{\"a\":1}\0{\"b\":2}\0", 1000);
    assert_eq!(data(&f), [&b"{\"a\":1}"[..], b"{\"b\":2}"]);
    // A NUL is not a trailer in LF framing, nor a LF in NUL framing.
    let (f, _) = split(Framing::Lf, 100, b"a\0b\n", 1000);
    assert_eq!(data(&f), [&b"a\0b"[..]]);
}

#[test]
fn octet_counting_keeps_embedded_newlines() {
    let mut input = Vec::new();
    write_octet_counted(&mut input, b"<13>1 - - - - - - two\nlines");
    write_octet_counted(&mut input, b"<13>1 - - - - - - next");
    for framing in [Framing::OctetCounting, Framing::Auto] {
        let (f, _) = split(framing, 100, &input, 3);
        assert_eq!(
            data(&f),
            [
                &b"<13>1 - - - - - - two\nlines"[..],
                b"<13>1 - - - - - - next"
            ]
        );
        assert!(f.iter().all(|g| g.counted));
    }
}

#[test]
fn auto_mixes_counted_lf_garbage_oversize_and_empty_frames() {
    let mut input = Vec::new();
    write_octet_counted(&mut input, b"<13>1 - h a - - - counted");
    input.extend_from_slice(b"<13>Jun 15 11:00:00 h a: lf\n");
    input.extend_from_slice(b"\x01\x02 garbage \xff\n");
    input.extend_from_slice(&[b'x'; 50]);
    input.extend_from_slice(b"\n\n");
    write_octet_counted(&mut input, &[b'<'; 45]);
    input.extend_from_slice(b"123 not counted\n");
    input.extend_from_slice(b"tail without newline");
    let (f, discarded) = split(Framing::Auto, 32, &input, 7);
    assert_eq!(
        data(&f),
        [
            &b"<13>1 - h a - - - counted"[..],
            b"<13>Jun 15 11:00:00 h a: lf",
            b"\x01\x02 garbage \xff",
            &[b'x'; 32],
            b"",
            &[b'<'; 32],
            b"123 not counted",
            b"tail without newline",
        ]
    );
    let truncated: Vec<bool> = f.iter().map(|g| g.truncated).collect();
    assert_eq!(
        truncated,
        [false, false, false, true, false, true, false, false]
    );
    assert_eq!(discarded, 18 + 13);
}

#[test]
fn a_lf_after_a_counted_frame_is_its_trailer_in_auto_mode() {
    let (f, _) = split(Framing::Auto, 100, b"5 <13>a\n5 <13>b\n\nc\n", 1);
    assert_eq!(data(&f), [&b"<13>a"[..], b"<13>b", b"", b"c"]);
}

#[test]
fn oversize_lf_frame_resynchronises_on_the_next_trailer() {
    let mut input = vec![b'a'; 100];
    input.extend_from_slice(b"\nnext\n");
    for step in [1, 7, 1000] {
        let (f, discarded) = split(Framing::Lf, 10, &input, step);
        assert_eq!(data(&f), [&[b'a'; 10][..], b"next"], "step {step}");
        assert!(f[0].truncated && !f[1].truncated);
        assert_eq!(discarded, 90);
    }
}

#[test]
fn oversize_counted_frame_skips_exactly_its_length() {
    let mut input = Vec::new();
    write_octet_counted(&mut input, &[b'<'; 100]);
    write_octet_counted(&mut input, b"<13>after");
    let (f, discarded) = split(Framing::OctetCounting, 10, &input, 9);
    assert_eq!(data(&f), [&[b'<'; 10][..], b"<13>after"]);
    assert_eq!(discarded, 90);
}

#[test]
fn the_end_of_the_stream_ends_the_last_frame() {
    let (f, _) = split(Framing::OctetCounting, 100, b"20 <13>short", 1000);
    assert_eq!(
        f,
        [Got {
            data: b"<13>short".to_vec(),
            counted: true,
            truncated: false,
            incomplete: true
        }]
    );
    let (f, _) = split(Framing::Lf, 100, b"last\r", 1000);
    assert_eq!(data(&f), [&b"last"[..]]);
    let (f, _) = split(Framing::Auto, 100, b"", 1000);
    assert!(f.is_empty());
}

#[test]
fn a_bad_length_in_octet_counting_falls_back_to_the_next_lf() {
    let (f, _) = split(Framing::OctetCounting, 100, b"abc <13>x\n5 <13>y", 1000);
    assert_eq!(data(&f), [&b"abc <13>x"[..], b"<13>y"]);
}

#[test]
fn delimited_writer_keeps_the_frame_whole() {
    let mut out = Vec::new();
    write_delimited(&mut out, b"two\nlines", b'\n');
    write_delimited(&mut out, b"nul\0inside", 0);
    assert_eq!(out, b"two lines\nnulinside\0");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn lf_safe() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no trailer", |b| *b != b'\n'),
            0..40,
        )
        .prop_filter("a trailing CR belongs to CRLF", |v| {
            v.last() != Some(&b'\r')
        })
    }

    proptest! {
        #[test]
        fn lf_frames_survive_any_read_boundaries(msgs in proptest::collection::vec(lf_safe(), 0..20), step in 1usize..64) {
            let mut input = Vec::new();
            for m in &msgs {
                write_delimited(&mut input, m, b'\n');
            }
            let (frames, discarded) = split(Framing::Lf, 1024, &input, step);
            prop_assert_eq!(data(&frames), msgs.iter().map(Vec::as_slice).collect::<Vec<_>>());
            prop_assert_eq!(discarded, 0);
        }

        #[test]
        fn counted_frames_carry_any_bytes(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..20), step in 1usize..64) {
            let mut input = Vec::new();
            for m in &msgs {
                write_octet_counted(&mut input, m);
            }
            let (frames, _) = split(Framing::OctetCounting, 1024, &input, step);
            prop_assert_eq!(data(&frames), msgs.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }

        #[test]
        fn auto_splits_mixed_streams_frame_by_frame(
            msgs in proptest::collection::vec((any::<bool>(), proptest::collection::vec(b' '..=b'~', 0..40)), 0..20),
            step in 1usize..64,
        ) {
            let mut input = Vec::new();
            let mut want = Vec::new();
            for (counted, body) in msgs {
                let mut m = b"<13>".to_vec();
                m.extend_from_slice(&body);
                if counted {
                    write_octet_counted(&mut input, &m);
                } else {
                    write_delimited(&mut input, &m, b'\n');
                }
                want.push(m);
            }
            let (frames, _) = split(Framing::Auto, 1024, &input, step);
            prop_assert_eq!(data(&frames), want.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }
}
