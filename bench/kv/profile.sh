#!/usr/bin/env bash
# bench/kv/profile.sh: a 3-server Meridian cluster under wrk writes (or ?consistent reads),
# with `perf record -g` on the leader; prints the top of `perf report`. For finding where a
# write's time goes, not a benchmark (no peer, no ratio).
#
# Usage: BENCH_BIN=path/to/meridian bench/kv/profile.sh [meridian-put|meridian-get-consistent] [conns]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/run.sh"
WORKLOAD=${1:-meridian-put}
CONNS=${2:-32}
PERF_SECS=${PERF_SECS:-8}
TMP=$(mktemp -d -t meridian-prof.XXXXXX)
ulimit -n 65536 2>/dev/null || true
start_meridian_cluster p "${HCL:-}"
li=$(meridian_leader)
url="http://127.0.0.1:${M_HTTP[$li]}"
MP=${M_HTTP[$li]}
curl -sf -X PUT --data-binary x "$url/v1/kv/bench/1" >/dev/null
log "leader p$li pid ${M_PID[$li]}; $WORKLOAD at $CONNS conns, perf for ${PERF_SECS}s"
(sleep 2; perf record -F 999 -g -p "${M_PID[$li]}" -o "$TMP/perf.data" -- sleep "$PERF_SECS" >/dev/null 2>&1) &
prof=$!
DURATION=$((PERF_SECS + 4))s run_wrk "$WORKLOAD" "$WORKLOAD" "$url"
wait "$prof"
perf report -i "$TMP/perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null | grep -v '^$' | head -${TOP:-60}
perf report -i "$TMP/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
