//! Human output: aligned columns, and text made safe for a terminal.
//!
//! Messages come from anyone who can reach `/dev/log` or a network port, and a terminal obeys
//! escape sequences: `\x1b]0;…\x07` retitles the window, `\x1b[31m` recolours it, OSC 52
//! writes the clipboard. So every cell of a human view passes through [`visible`], which
//! writes control characters — C0, DEL and C1 — as `\xHH` (`\u{HH}` for C1), the way
//! `journalctl` and `less` show them. `--json` output is JSON-escaped and left as it is.

use std::borrow::Cow;
use std::io::Write as _;

use anyhow::Context as _;

/// `s` with control characters (C0, DEL, C1) written visibly as escapes; borrowed when there
/// are none (the common case).
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    let control = |c: char| c.is_control();
    if !s.contains(control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && control(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub(crate) fn write_out(out: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}

/// Pads columns to their widest cell, each cell made [`visible`]; the last column is not
/// padded.
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| visible(c)).collect())
        .collect();
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_never_sent_to_the_terminal() {
        assert!(matches!(visible("plain text, ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            visible("\x1b]0;PWNED\x07\x1b[31mred\nnext\u{9b}2J\x7f"),
            "\\x1b]0;PWNED\\x07\\x1b[31mred\\nnext\\u{9b}2J\\x7f"
        );
        let table = columns(&[
            vec!["A".into(), "B".into()],
            vec!["\x1b[31m".into(), "x".into()],
        ]);
        assert!(!table.contains('\x1b'), "{table:?}");
        assert!(table.starts_with("A         B\n"), "{table:?}");
    }
}
