//! A small tmpfs for a test — the run directory of a device, full — mounted on a temporary
//! directory and unmounted when dropped. Mounting needs root, as CI runs: elsewhere
//! [`Tmpfs::mount`] returns `None` and the test says it did not run; under CI (`CI=true`) a
//! tmpfs that cannot be mounted fails the test instead.
//!
//! Shared by the crates' tests with `#[path = "…/support/tmpfs.rs"] mod tmpfs;`.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `1m`).
    pub(crate) fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "cannot mount a tmpfs on {} (CI runs as root)",
                dir.path().display()
            );
            eprintln!("not run: mounting a tmpfs needs root");
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free now.
    pub(crate) fn free(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(self.path()).unwrap();
        s.blocks_available() as u64 * s.fragment_size() as u64
    }

    /// Writes a file that leaves at most `leave` bytes free (rounded down to pages); returns
    /// its path, so the test can remove it to give the space back.
    pub(crate) fn fill(&self, leave: u64) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let page = vec![0xaa_u8; 4096];
        while self.free() > leave {
            if f.write_all(&page).is_err() {
                break;
            }
        }
        f.sync_all().unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
