#!/usr/bin/env bash
# The side-by-side comparison (issue #7): edgelogd, rsyslog and syslog-ng on the same
# workloads, alternating, several repetitions, medians and edgelogd/peer ratios.
#
#   bench/compare.sh                      # everything, 3 repetitions (about 20 minutes here)
#   bench/compare.sh --reps 1 --workloads relay,kill
#
# Arguments go to edgelog-compare (`target/release/edgelog-compare --help`). Prepares the peers
# first (bench/prepare-peers.sh), builds the release binaries, keeps every run as a JSON line
# in bench/results/<date>.jsonl and prints the Markdown summary BENCHMARKS.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash bench/prepare-peers.sh)"
cargo build --release -q -p edgelogd -p edgelog-bench
mkdir -p bench/results
out=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).jsonl
echo "bench/compare.sh: runs go to $out" >&2
target/release/edgelog-compare --syslog-ng "$SYSLOG_NG" --json "$out" "$@"
