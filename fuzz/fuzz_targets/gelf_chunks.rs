//! GELF chunk reassembly under arbitrary datagrams: never a panic, memory within the limits.
#![no_main]

use std::time::{Duration, Instant};

use edgelog_codec::gelf::chunk::{Limits, Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { timeout: Duration::from_secs(5), max_messages: 8, max_bytes: 4096 };
    let mut r = Reassembler::new(limits);
    let t0 = Instant::now();
    // Datagrams are separated by 0xff bytes; each one advances the clock by a second.
    for (k, datagram) in data.split(|&b| b == 0xff).enumerate() {
        let _ = r.push(datagram, t0 + Duration::from_secs(k as u64));
        assert!(r.pending_messages() <= limits.max_messages);
        assert!(r.pending_bytes() <= limits.max_bytes);
    }
});
