//! Any bytes, decoded as whatever they look like, then written by every text encoder and
//! escaped as a destination would: the output holds no control character (so no LF or NUL
//! that would end the frame), unescapes to exactly what the encoder wrote, and GELF's JSON
//! holds no raw C0 control either.
#![no_main]

use edgelog_codec::escape::{self, Escape};
use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Mode, gelf, rfc3164, rfc5424};
use edgelog_core::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = Context::utc(Timestamp::from_unix(1_718_452_800, 0).unwrap());
    let m = Decoder::new(FormatHint::Auto, Mode::Lenient, ctx).decode(data);
    let mut texts = [Vec::new(), Vec::new()];
    rfc5424::format(&mut texts[0], &m, rfc5424::FormatOptions::default());
    rfc3164::format(&mut texts[1], &m, &rfc3164::FormatOptions::default());
    for text in texts {
        for esc in [Escape::Octal, Escape::C] {
            let mut out = text.clone();
            escape::escape(&mut out, 0, esc);
            assert!(!out.iter().any(|&b| escape::is_control(b)));
            assert_eq!(escape::unescape(&out, esc), text);
        }
    }
    let mut json = Vec::new();
    gelf::encode(&mut json, &m, &[]);
    assert!(!json.iter().any(|&b| b < 0x20));
});
