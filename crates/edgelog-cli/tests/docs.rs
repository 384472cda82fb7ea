//! Shell completions and the man page are generated from the clap definitions, so they cannot
//! drift from the CLI: the bash script is valid bash and knows every verb, the man page is roff
//! naming them. docs/cli.md names every verb of `edgelog` and every option of `edgelogd`, as
//! their `--help` lists them, so the reference cannot fall behind the binaries either.

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
        "delete",
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

fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names in the `Commands:` section of a help text.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn docs_cli_md_names_every_verb_and_option() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let edgelog = env!("CARGO_BIN_EXE_edgelog");
    let mut verbs = Vec::new();
    for verb in commands(&help(edgelog, &[])) {
        let sub = commands(&help(edgelog, &[&verb]));
        if sub.is_empty() {
            verbs.push(verb);
            continue;
        }
        for s in sub {
            let deeper = commands(&help(edgelog, &[&verb, &s]));
            if deeper.is_empty() {
                verbs.push(format!("{verb} {s}"));
            }
            for d in deeper {
                verbs.push(format!("{verb} {s} {d}"));
            }
        }
    }
    assert!(verbs.len() >= 15, "{verbs:?}");
    for v in &verbs {
        assert!(
            doc.contains(&format!("`edgelog {v}")),
            "docs/cli.md lacks `edgelog {v}`"
        );
    }
    // edgelogd sits beside edgelog once the workspace is built.
    let edgelogd = std::path::Path::new(edgelog).with_file_name("edgelogd");
    if edgelogd.exists() {
        let h = help(edgelogd.to_str().unwrap(), &[]);
        for opt in h.split_whitespace().filter(|w| w.starts_with("--")) {
            let opt = opt.trim_end_matches(',');
            if opt == "--help" || opt == "--version" {
                continue;
            }
            assert!(doc.contains(opt), "docs/cli.md lacks edgelogd {opt}");
        }
    }
}
