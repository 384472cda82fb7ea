//! The comparison harness itself, small: edgelogd and a real rsyslogd through the relay, disk
//! relay, `/dev/log` and `kill -9` workloads. Every run completes, edgelogd loses nothing, and
//! the summary has its tables and ratios — so the harness BENCHMARKS.md quotes keeps working.
//! (syslog-ng needs `bench/prepare-peers.sh`, which downloads it; it stays out of CI.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_edgelog-compare");

#[test]
fn edgelogd_and_rsyslog_through_four_workloads() {
    let have = Command::new("sh")
        .args(["-c", "command -v rsyslogd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "rsyslogd is missing; scripts/test installs it"
        );
        eprintln!("skipping: rsyslogd is not installed");
        return;
    }
    let edgelogd = std::path::Path::new(BIN).with_file_name("edgelogd");
    assert!(
        edgelogd.exists(),
        "{} is missing: run the workspace's tests (scripts/test)",
        edgelogd.display()
    );
    let out = Command::new(BIN)
        .args([
            "--systems",
            "edgelogd,rsyslog",
            "--workloads",
            "relay,relay-disk,devlog,kill",
            "--reps",
            "1",
            "--count",
            "5000",
            "--rates",
            "5000",
            "--devlog-seconds",
            "1",
            "--kill-count",
            "20000",
            "--kill-rate",
            "20000",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 8, "{stdout}");
    for r in &rows {
        assert!(r.get("error").is_none(), "a run failed: {r}");
        // CPU time is counted in clock ticks: a small run may take less than one.
        assert!(r["cpu_seconds"].as_f64().is_some_and(|c| c >= 0.0), "{r}");
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 1.0, "{r}");
        if r["system"] == "edgelogd" {
            assert_eq!(r["lost"], 0, "{r}");
            assert_eq!(r["delivered"], r["sent"], "{r}");
        }
    }
    for title in [
        "### relay",
        "### relay-disk",
        "### devlog, offered 5000",
        "### kill",
    ] {
        assert!(stdout.contains(title), "{title} missing:\n{stdout}");
    }
    assert!(stdout.contains("| edgelogd / rsyslog |"), "{stdout}");
}
