//! Shell completions and the man page are generated from the clap definitions, so they cannot
//! drift from the CLI: the bash script is valid bash and knows every verb, the man page is roff
//! naming them.

use std::process::Command;

fn edgelog(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgelog"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completion_scripts_are_valid_and_know_every_verb() {
    let bash = edgelog(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgelog.bash");
    std::fs::write(&path, &bash).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for verb in [
        "decode",
        "show",
        "tail",
        "logger",
        "set",
        "completions",
        "man",
        "run",
        "queue",
        "status",
        "reload",
        "check-config",
    ] {
        assert!(bash.contains(verb), "bash completion lacks {verb}");
    }
    for shell in ["zsh", "fish"] {
        assert!(edgelog(&["completions", shell]).contains("tail"), "{shell}");
    }
}

#[test]
fn the_man_page_is_roff_naming_the_verbs() {
    let man = edgelog(&["man"]);
    assert!(
        man.contains(".TH edgelog 1"),
        "{}",
        &man[..man.len().min(300)]
    );
    for verb in ["decode", "show", "tail", "logger", "set"] {
        assert!(man.contains(verb), "man page lacks {verb}");
    }
}
