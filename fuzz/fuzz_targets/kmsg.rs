//! kmsg records: never a panic, in either mode.
#![no_main]

use edgelog_codec::{Mode, kmsg};
use edgelog_core::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kmsg::parse(data, None, Mode::Strict);
    let _ = kmsg::parse(data, Some(Timestamp::EPOCH), Mode::Lenient);
});
