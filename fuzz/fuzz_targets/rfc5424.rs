//! RFC 5424: never a panic; a frame that strict mode accepts formats back to a frame that
//! parses to the same message.
#![no_main]

use edgelog_codec::{Mode, rfc5424};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rfc5424::parse(data, Mode::Lenient);
    let m = rfc5424::parse(data, Mode::Strict);
    if m.error.is_none() {
        let mut out = Vec::new();
        rfc5424::format(&mut out, &m, rfc5424::FormatOptions::default());
        let again = rfc5424::parse(&out, Mode::Strict);
        assert_eq!(again.error, None, "{:?}", String::from_utf8_lossy(&out));
        assert_eq!(again.structured_data, m.structured_data);
        assert_eq!(again.hostname, m.hostname);
        assert_eq!(again.pri, m.pri);
    }
});
