#!/usr/bin/env bash
# Prepares the peers the comparison harness runs against (issue #7), on a fresh machine of
# this kind: rsyslog from Debian's packages (installed), and syslog-ng from Debian's packages
# too — it conflicts with rsyslog as a package, so its .deb files (and those of libraries the
# machine lacks) are fetched with `apt-get download` and unpacked with `dpkg -x` into
# bench/.peers/syslog-ng. Prints the environment to run it with.
set -euo pipefail
cd "$(dirname "$0")"
peers=$PWD/.peers
mkdir -p "$peers/debs" "$peers/syslog-ng"

if ! command -v rsyslogd >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-relp >/dev/null
fi

if [[ ! -x $peers/syslog-ng/usr/sbin/syslog-ng ]]; then
  cd "$peers/debs"
  pkgs=(syslog-ng-core)
  for dep in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
                 --no-replaces --no-enhances syslog-ng-core | awk '/Depends:/ {print $2}' | tr -d '<>'); do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$dep")
  done
  apt-get download -q "${pkgs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
  for f in *.deb; do dpkg -x "$f" "$peers/syslog-ng"; done
  cd - >/dev/null
fi

libs=$(find "$peers/syslog-ng" -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
echo "export SYSLOG_NG=$peers/syslog-ng/usr/sbin/syslog-ng"
echo "export SYSLOG_NG_LD_LIBRARY_PATH=$libs"
LD_LIBRARY_PATH=$libs "$peers/syslog-ng/usr/sbin/syslog-ng" --version | head -1 >&2
rsyslogd -v | head -1 >&2
