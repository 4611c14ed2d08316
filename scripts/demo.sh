#!/usr/bin/env bash
# The live demo: simulated Cisco (gNMI), Nokia and Ericsson (SNMP) devices replaying the real
# recordings in testdata/, the real pipeline (`netfeat serve -c examples/demo.yaml`, embedded
# NATS on 127.0.0.1:4222), and `netfeat watch` printing the decisions as they land on NATS.
# Everything listens on loopback only. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-0}   # seconds; 0 = until Ctrl-C
mkdir -p bin data/demo
echo "== building bin/netfeat (the first build compiles DuckDB and takes a few minutes)"
go build -tags duckdb_arrow -o bin/netfeat ./cmd/netfeat
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
bin/netfeat sim snmp --recording testdata/snmp/timos.snmprec --listen 127.0.0.1:16100 >data/demo/sim-nokia.log 2>&1 & pids+=($!)
# 150 MB/s per counter: about 1.2 Gbit/s on each link, a congestion episode on the MINI-LINK.
bin/netfeat sim snmp --recording testdata/snmp/ericsson-ml.snmprec --listen 127.0.0.1:16200 --rate 150000000 >data/demo/sim-ericsson.log 2>&1 & pids+=($!)
bin/netfeat sim gnmi --platform iosxr --listen 127.0.0.1:57400 >data/demo/sim-cisco.log 2>&1 & pids+=($!)
bin/netfeat serve -c examples/demo.yaml >data/demo/serve.log 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -sf 127.0.0.1:9464/readyz >/dev/null 2>&1 && break; sleep 0.2; done
cat <<TXT
== netfeat is running (logs in data/demo/*.log)
   decisions:  nats sub 'netfeat.decisions.>'   (NATS at nats://127.0.0.1:4222)
   metrics:    curl -s 127.0.0.1:9464/metrics | grep netfeat_
   models:     bin/netfeat models list --server http://127.0.0.1:9464
== decisions, live (first ones after the first 5 s window hop):
TXT
if [ "$DURATION" -gt 0 ]; then
  timeout "$DURATION" bin/netfeat watch --nats nats://127.0.0.1:4222 || true
else
  bin/netfeat watch --nats nats://127.0.0.1:4222
fi
