"""Sends numbered records to edgelogd with graypy, the Python GELF client library.

usage: gelf_client.py udp|tcp|http HOST PORT FIRST COUNT
Every other UDP message is long enough to be chunked (small chunk size, zlib compressed).
"""
import logging
import sys

import graypy

kind, host, port, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if kind == "udp":
    handler = graypy.GELFUDPHandler(host, port, gelf_chunker=graypy.handler.GELFWarningChunker(chunk_size=300))
elif kind == "tcp":
    handler = graypy.GELFTCPHandler(host, port)
elif kind == "http":
    handler = graypy.GELFHTTPHandler(host, port, path="/gelf")
else:
    raise SystemExit(f"unknown transport {kind}")

log = logging.getLogger("gelftest")
log.setLevel(logging.DEBUG)
log.addHandler(handler)
for i in range(first, first + count):
    padding = " pad" * 500 if kind == "udp" and i % 2 else ""
    log.warning("seq=%d via %s%s", i, kind, padding, extra={"peer": "10.0.0.2", "asn": 65001})
handler.close()
