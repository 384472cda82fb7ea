//! The Debian package (`scripts/build-deb`, which `scripts/test` runs first and names in
//! `EDGELOG_DEB`): unpacked into a throwaway root, it holds what a box needs — both binaries,
//! the unit, the config as a conffile, the man pages, the completions — and the binaries run
//! from there: the config checks, the daemon starts, and the packaged `edgelog` reaches it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The package to check: `EDGELOG_DEB`, else the newest in target/debian. Under CI its
/// absence fails the test.
fn package() -> Option<PathBuf> {
    let named = std::env::var_os("EDGELOG_DEB").map(PathBuf::from);
    let built = || {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debian");
        let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        debs.pop()
    };
    let found = named.or_else(built).filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Debian package: scripts/test builds it with scripts/build-deb"
        );
        eprintln!("skipping: no package (scripts/build-deb makes one)");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_package_unpacked_into_a_throwaway_root_runs() {
    let Some(deb) = package() else { return };
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(r));
    let control = r.join("DEBIAN");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));

    assert_eq!(
        run(Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Package"))
        .trim(),
        "edgelog"
    );
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert!(
        conffiles.lines().any(|l| l == "/etc/edgelog/edgelogd.toml"),
        "{conffiles}"
    );
    for file in [
        "usr/sbin/edgelogd",
        "usr/bin/edgelog",
        "etc/edgelog/edgelogd.toml",
        "lib/systemd/system/edgelogd.service",
        "usr/share/man/man1/edgelog.1.gz",
        "usr/share/man/man8/edgelogd.8.gz",
        "usr/share/man/man5/edgelogd.toml.5.gz",
        "usr/share/bash-completion/completions/edgelog",
        "usr/share/bash-completion/completions/edgelogd",
        "usr/share/zsh/vendor-completions/_edgelog",
        "usr/share/zsh/vendor-completions/_edgelogd",
        "usr/share/fish/vendor_completions.d/edgelog.fish",
        "usr/share/fish/vendor_completions.d/edgelogd.fish",
        "usr/share/doc/edgelog/configuration.md",
        "usr/share/doc/edgelog/changelog.Debian.gz",
    ] {
        let meta = std::fs::metadata(r.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file} is empty");
    }
    // The binaries are stripped: no symbol table.
    let syms = Command::new("nm").arg(r.join("usr/sbin/edgelogd")).output();
    if let Ok(syms) = syms {
        assert!(
            String::from_utf8_lossy(&syms.stderr).contains("no symbols"),
            "edgelogd is not stripped"
        );
    }

    let edgelogd = r.join("usr/sbin/edgelogd");
    let edgelog = r.join("usr/bin/edgelog");
    assert!(run(Command::new(&edgelogd).arg("--version")).starts_with("edgelogd "));
    assert!(run(Command::new(&edgelog).arg("--version")).starts_with("edgelog "));
    let check = run(Command::new(&edgelogd)
        .args(["--check-config", "-c"])
        .arg(r.join("etc/edgelog/edgelogd.toml")));
    assert_eq!(check, "ok\n");

    // The packaged daemon, its embedded default in a run directory of its own (it leaves the
    // box's /dev/log alone there), and the packaged CLI sending to it.
    let (run_dir, state_dir) = (r.join("run"), r.join("state"));
    let mut daemon = Command::new(&edgelogd)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--state-dir")
        .arg(&state_dir)
        .env("XDG_CONFIG_HOME", r.join("xdg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !run_dir.join("control.sock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    run(Command::new(&edgelog).arg("--run-dir").arg(&run_dir).args([
        "logger",
        "-t",
        "pkg",
        "from the package",
    ]));
    let store = state_dir.join("store/current.log");
    let found = loop {
        let text = std::fs::read_to_string(&store).unwrap_or_default();
        if text.contains("from the package") || Instant::now() > deadline {
            break text.contains("from the package");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(daemon.wait().unwrap().success());
    assert!(found, "the packaged logger's message is not in the store");
}
