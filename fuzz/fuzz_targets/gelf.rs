//! GELF: inflation stays within its limit, parsing never panics, and what we encode is JSON
//! that parses back without error.
#![no_main]

use edgelog_codec::gelf::{self, compress};
use edgelog_codec::Mode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = compress::decompress(data, 1 << 16) {
        assert!(payload.len() <= 1 << 16);
        let m = gelf::parse(&payload, Mode::Lenient);
        let _ = gelf::parse(&payload, Mode::Strict);
        let mut out = Vec::new();
        gelf::encode(&mut out, &m, &[]);
        let back = gelf::parse(&out, Mode::Strict);
        assert_eq!(back.error, None, "{}", String::from_utf8_lossy(&out));
    }
});
