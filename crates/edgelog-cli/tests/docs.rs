//! docs/cli.md names every verb of `edgelog` and every option of `edgelogd`, as their
//! `--help` lists them: the reference cannot fall behind the binaries.

use std::process::Command;

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
