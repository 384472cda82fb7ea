//! libfaketime (Debian's `faketime`, installed by the test command) for tests that step a
//! process's real-time clock while it runs: the process is started with [`LIBFAKETIME`]
//! preloaded and `FAKETIME_TIMESTAMP_FILE` pointing at a file that [`set_offset`] rewrites
//! (`FAKETIME_NO_CACHE=1` makes each clock read see the change at once).
//!
//! Shared by the crates' tests with `#[path = "…/support/faketime.rs"] mod faketime;`.

#![allow(dead_code)]

use std::path::Path;

/// The multi-threaded variant of the library.
pub(crate) const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// Whether libfaketime is installed; under CI (`CI=true`) its absence fails the test.
pub(crate) fn available() -> bool {
    if Path::new(LIBFAKETIME).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{LIBFAKETIME} is missing (scripts/test installs Debian's faketime)"
    );
    eprintln!("not run: libfaketime is not installed (scripts/test installs it)");
    false
}

/// Sets the offset (`+1d`, `-1h`, `+0`): written aside and renamed, so it is never read
/// half-written.
pub(crate) fn set_offset(file: &Path, spec: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, spec).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}
