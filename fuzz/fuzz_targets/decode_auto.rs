//! Any bytes, auto-detected, both modes: never a panic, always a message, and the JSON line
//! `edgelog decode` prints is valid JSON.
#![no_main]

use edgelog_codec::rfc3164::Context;
use edgelog_codec::{Decoder, FormatHint, Mode, json};
use edgelog_core::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = Context::utc(Timestamp::from_unix(1_718_452_800, 0).unwrap());
    for mode in [Mode::Lenient, Mode::Strict] {
        let m = Decoder::new(FormatHint::Auto, mode, ctx.clone()).decode(data);
        let mut out = Vec::new();
        json::write_line(&mut out, &m);
        assert!(out.ends_with(b"\n") && out.iter().filter(|&&b| b == b'\n').count() == 1);
    }
});
