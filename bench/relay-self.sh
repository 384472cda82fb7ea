#!/usr/bin/env bash
# TCP -> edgelogd -> TCP relay, memory queue and disk queue, 1,000,000 RFC 5424 lines.
# A first measurement of edgelogd alone (issue #5); the side-by-side harness with rsyslog and
# syslog-ng is issue #7. Usage: bench/relay-self.sh [repetitions]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
cargo build --release -q -p edgelogd
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$T/lines" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1_000_000):
        f.write("<134>1 2026-11-22T08:00:00.123456Z leaf-01 bgpd 4242 PEER - peer 10.0.0.2 session state changed to Established seq=%d\n" % i)
PY
cat > "$T/sink.py" <<'PY'
import socket, sys, time
n = int(sys.argv[2]); s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
c, _ = s.accept(); got = 0
while got < n:
    d = c.recv(1 << 20)
    if not d:
        c, _ = s.accept(); continue
    got += d.count(b"\n")
PY
for kind in memory disk; do
  for rep in $(seq 1 "$reps"); do
    rm -rf "$T/run" "$T/state"
    cat > "$T/c.toml" <<TOML
[sources.tcp]
type = "syslog_tcp"
address = "127.0.0.1:19514"
[tables]
enabled = false
[destinations.relay]
type = "syslog_tcp"
address = "127.0.0.1:19600"
framing = "lf"
queue = { kind = "$kind", max_bytes = "1GiB", max_records = 2000000 }
batch = { max_records = 2000 }
TOML
    python3 "$T/sink.py" 19600 1000000 & sink=$!
    sleep 0.3
    ./target/release/edgelogd --config "$T/c.toml" --run-dir "$T/run" --state-dir "$T/state" 2>"$T/err" & d=$!
    sleep 0.5
    start=$(date +%s.%N)
    cat "$T/lines" > /dev/tcp/127.0.0.1/19514
    wait $sink
    end=$(date +%s.%N)
    rss=$(awk '/VmHWM/ {print $2}' /proc/$d/status)
    cpu=$(ps -o cputime= -p $d)
    kill $d; wait $d 2>/dev/null || true
    secs=$(echo "$end - $start" | bc)
    echo "$kind rep $rep: ${secs}s, $(echo "1000000 / $secs" | bc) msgs/s, peak RSS ${rss} kB, cpu $cpu"
  done
done
