//! The daemon's module graph has no cycle: what a module names of the crate (`crate::…`,
//! `super::…`) are its edges, test modules and comments aside. The config imports no
//! component, configs no machinery; a cycle here is where a change starts to touch
//! everything (ARCHITECTURE.md, "Adding a source or destination type").

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src`, by path (`destinations::queue`), with its code sans tests and
/// comments.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_owned();
            }
            if name == "lib" || name == "main" {
                name = String::new();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name, code);
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module.
fn resolve<'a>(path: &[&str], modules: &'a BTreeMap<String, String>) -> Option<&'a str> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find_map(|p| modules.get_key_value(&p).map(|(k, _)| k.as_str()))
}

/// The paths after `prefix` in `code`: `crate::a::b`, `super::{c, d}` as `c` and `d`.
fn paths<'c>(code: &'c str, prefix: &str) -> Vec<Vec<&'c str>> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let word = |s: &'c str| {
            let end = s
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(s.len());
            s[..end]
                .split("::")
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        };
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(|p| word(p.trim())));
        } else {
            out.push(word(rest));
        }
    }
    out
}

fn edges(modules: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut edges = BTreeMap::new();
    for (name, code) in modules {
        let mut to = BTreeSet::new();
        let parent: Vec<&str> = name.split("::").filter(|p| !p.is_empty()).collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        for p in paths(code, "crate::") {
            to.extend(resolve(&p, modules));
        }
        for p in paths(code, "super::") {
            let full: Vec<&str> = parent.iter().copied().chain(p).collect();
            to.extend(resolve(&full, modules));
        }
        // `use child::…` of a module's own children.
        let own: Vec<&str> = name.split("::").filter(|p| !p.is_empty()).collect();
        for line in code.lines() {
            let line = line.trim_start().trim_start_matches("pub(crate) ");
            if let Some(rest) = line.strip_prefix("use ").or(line.strip_prefix("pub use ")) {
                let first = rest.split("::").next().unwrap_or_default();
                let full: Vec<&str> = own.iter().copied().chain([first]).collect();
                if let Some(child) = modules.get_key_value(&full.join("::")) {
                    to.insert(child.0.as_str());
                }
            }
        }
        to.remove(name.as_str());
        to.remove("");
        edges.insert(name.as_str(), to);
    }
    edges
}

/// A cycle through `start`, if there is one.
fn cycle<'a>(start: &'a str, edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    let mut stack = vec![(start, vec![start])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for &next in &edges[at] {
            if next == start {
                return Some(path.clone());
            }
            if seen.insert(next) {
                let mut p = path.clone();
                p.push(next);
                stack.push((next, p));
            }
        }
    }
    None
}

#[test]
fn no_module_of_the_daemon_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    assert!(modules.contains_key("config") && modules.contains_key("destinations::queue"));
    let edges = edges(&modules);
    // The checker sees what it must: the config reads with its reader, the queue's owner
    // writes with the component's `Sink`.
    assert!(edges["config"].contains("config::reader"));
    assert!(edges["destinations::queue"].contains("component"));
    let cycles: Vec<_> = edges.keys().filter_map(|m| cycle(m, &edges)).collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
    // The config knows no component.
    let components: Vec<&str> = edges["config"]
        .iter()
        .copied()
        .filter(|m| m.starts_with("sources") || m.starts_with("destinations"))
        .collect();
    assert!(components.is_empty(), "config imports {components:?}");
}
