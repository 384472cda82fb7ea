//! `edgelog queue verify <dir>`: checks a disk queue offline and says what is wrong.
//!
//! Read-only — it does not repair (opening the queue in the daemon truncates a torn tail and
//! sets corrupt segments aside). Every segment is read whole: header, every record's length,
//! checksum and sequence number, the numbering from segment to segment, and every cursor.
//! Exit 0 when the queue is sound, 1 when something is wrong or it cannot be read.

use std::path::Path;

use anyhow::Context as _;
use edgelog_queue::disk;
use serde_json::json;

use crate::view::write_out;

pub(crate) fn verify(dir: &Path, json: bool) -> anyhow::Result<bool> {
    if !dir.is_dir() {
        anyhow::bail!("{}: not a directory", dir.display());
    }
    let v = disk::verify(dir).with_context(|| format!("verifying {}", dir.display()))?;
    let records: u64 = v.segments.iter().map(|s| s.records).sum();
    let bytes: u64 = v.segments.iter().map(|s| s.file_bytes).sum();
    let first = v.segments.first().map(|s| s.first_seq);
    let last = v
        .segments
        .last()
        .map(|s| (s.first_seq + s.records).saturating_sub(1));
    if json {
        let segments: Vec<_> = v
            .segments
            .iter()
            .map(|s| {
                json!({"file": s.path.file_name().map(|n| n.to_string_lossy()), "first_seq": s.first_seq,
                       "records": s.records, "bytes": s.file_bytes, "valid_bytes": s.valid_bytes,
                       "problem": s.problem})
            })
            .collect();
        let cursors: serde_json::Map<String, serde_json::Value> = v
            .cursors
            .iter()
            .map(|(n, c)| {
                let v = match c {
                    Ok(a) => json!({"acked": a}),
                    Err(e) => json!({"error": e}),
                };
                (n.clone(), v)
            })
            .collect();
        let out = json!({"dir": dir.display().to_string(), "ok": v.problems.is_empty(),
                         "segments": segments, "records": records, "bytes": bytes,
                         "first_seq": first, "last_seq": last, "cursors": cursors,
                         "problems": v.problems});
        write_out(&format!("{out}\n"))?;
    } else {
        let mut out = format!(
            "queue {}: {} segments, {records} records ({bytes} bytes)",
            dir.display(),
            v.segments.len()
        );
        if let (Some(f), Some(l)) = (first, last) {
            out += &format!(", records {f} to {l}");
        }
        out.push('\n');
        for (name, c) in &v.cursors {
            match c {
                Ok(a) => out += &format!("  consumer {name:<16} acknowledged up to {a}\n"),
                Err(e) => out += &format!("  consumer {name:<16} {e}\n"),
            }
        }
        if v.problems.is_empty() {
            out += "ok\n";
        } else {
            for p in &v.problems {
                out += &format!("problem: {p}\n");
            }
        }
        write_out(&out)?;
    }
    Ok(v.problems.is_empty())
}
