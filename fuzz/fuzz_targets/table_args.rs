//! Table entry payloads come from shared memory any process may have scribbled on: decoding
//! arbitrary bytes and formatting them into any template never panics, and what the encoder
//! writes into a buffer of any size decodes back.
#![no_main]

use edgelog_core::maps;
use edgelog_core::table::args::{ArgWriter, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<_> = decode(data).collect();
    let template = String::from_utf8_lossy(&data[..data.len().min(32)]);
    let _ = maps::format(&template, &args);
    let _ = maps::placeholders(&template);

    let Some((&size, rest)) = data.split_first() else { return };
    let mut buf = vec![0u8; usize::from(size)];
    let mut w = ArgWriter::new(&mut buf);
    let text = String::from_utf8_lossy(rest);
    w.str(&text);
    w.u64(rest.len() as u64);
    let back: Vec<_> = decode(w.as_bytes()).collect();
    assert!(back.len() <= 2);
    assert!(w.as_bytes().len() <= usize::from(size));
});
