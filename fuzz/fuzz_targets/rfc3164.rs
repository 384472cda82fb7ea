//! RFC 3164 and its variants: never a panic, in UTC and in a zone with DST, near New Year.
#![no_main]

use edgelog_codec::Mode;
use edgelog_codec::rfc3164::{self, Context};
use edgelog_core::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_unix(1_735_689_599, 0).unwrap(); // 2024-12-31T23:59:59Z
    let cet = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    for ctx in [Context::utc(now), Context::new(now, cet)] {
        for mode in [Mode::Lenient, Mode::Strict] {
            let m = rfc3164::parse(data, &ctx, mode);
            assert!(m.message.is_some() || m.error.is_some());
        }
    }
});
