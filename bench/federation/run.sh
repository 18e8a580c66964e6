#!/usr/bin/env bash
# bench/federation: `?dc=` reads through the WAN gateways against local reads, in one run.
#
# Two datacenters on 127.0.0.1 (no root), each one server and one meridian-gateway. From dc1's
# server: GET /v1/kv/k (local) and GET /v1/kv/k?dc=dc2 (dc1 server -> dc1 gateway -> dc2
# gateway -> dc2 server), plus the DNS names web.service.consul and web.service.dc2.consul:
# sequential latency on one keep-alive connection (p50/p90/p99, SEQ_N rounds) and wrk
# throughput, first with the gateways talking directly, then through wanproxy.py (a userspace
# TCP+UDP relay on 127.0.0.2) at 0 ms and at WAN_RTT_MS round trip. Goal (issue #11): added
# latency p50 (cross-DC p50 - local p50) <= 1 WAN RTT + 1 ms. Writes
# bench/federation/results.json and bench/federation/federation.png and prints the table for
# BENCHMARKS.md. See fed.py for the details of each step.
#
# MODE=beyond runs beyond.py instead (issue #16): `?dc=any` lookups (HTTP and DNS) against
# local ones, and KV replication lag dc1 -> dc2 at RATE writes/s, at 0 ms and WAN_RTT_MS;
# it writes results-beyond.json and beyond.png (beyond_report.py).
#
# Usage: bench/federation/run.sh   (env: SEQ_N, WRK_DURATION, WRK_CONNS, WAN_RTT_MS, SETTINGS,
#        MODE=federation|beyond, RATE, REP_SECONDS, WRITERS (beyond),
#        BENCH_BIN_DIR = a dir with release meridian + meridian-gateway: skips the build)
# Installs wrk and gnuplot with apt if missing (sudo when not root). The binaries come from
# $CARGO_TARGET_DIR (default: target/) after `cargo build --release`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
MODE=${MODE:-federation}
case $MODE in
  federation) DRIVER_PY=fed.py OUT=results PNG=federation REPORT=report.py ;;
  beyond) DRIVER_PY=beyond.py OUT=results-beyond PNG=beyond REPORT=beyond_report.py ;;
  *) printf 'error: MODE=%s: expected federation or beyond\n' "$MODE" >&2; exit 2 ;;
esac
CMDLINE=$(cmdline bench/federation/run.sh SEQ_N WRK_DURATION WRK_CONNS WAN_RTT_MS SETTINGS MODE \
  RATE REP_SECONDS WRITERS)

install_missing wrk=wrk gnuplot=gnuplot-nox setsid=util-linux
# 127.0.0.2 is where the emulated WAN link listens; Linux routes all of 127/8 to lo.
/usr/bin/python3 -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null \
  || die "cannot bind 127.0.0.2 (the WAN relay's address): is 127.0.0.0/8 on lo?"

if [[ -z ${BENCH_BIN_DIR:-} ]]; then
  build_release "meridian and meridian-gateway" --bin meridian --bin meridian-gateway
  export BENCH_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi

LOAD_BEFORE=$(loadavg)
log "load average at start: $LOAD_BEFORE"
COMMIT=$(commit_of agent wan-gateway rpc gossip catalog config proto)

# fed.py stops every process it starts (SIGTERM, then SIGKILL) on exit, error and signals.
# In case it dies harder than that, it runs in its own process group, which the exit trap
# kills; the trap also removes the data dirs and logs.
export BENCH_TMP
BENCH_TMP=$(mktemp -d /tmp/meridian-bench-fed.XXXXXX)
CLEANUP_PATHS+=("$BENCH_TMP" "$HERE/$OUT.json.tmp")

setsid /usr/bin/python3 "$HERE/$DRIVER_PY" >"$HERE/$OUT.json.tmp" &
DRIVER=$!
PIDS+=("-$DRIVER")
rc=0
wait "$DRIVER" || rc=$?
((rc == 0)) || die "$DRIVER_PY failed (exit $rc); see the messages above"

wrap_results "$HERE/$OUT.json.tmp" "$CMDLINE" "$COMMIT" "$LOAD_BEFORE" >"$HERE/$OUT.json"
log "wrote bench/federation/$OUT.json"

# The picture (KV latency CDFs, wrk req/s) and the table for BENCHMARKS.md.
/usr/bin/python3 "$HERE/$REPORT" "$HERE/$OUT.json" "$HERE/$PNG.png"
log "wrote bench/federation/$PNG.png"
