#!/usr/bin/env bash
# bench/acl: requests per second with ACLs on vs off, side by side in one run (issue #17,
# goal >= 0.9x). See acl.py for the setup and the workloads. Writes bench/acl/results.json,
# bench/acl/acl.png and prints the table for BENCHMARKS.md.
#
# Usage: bench/acl/run.sh      (env: ROUNDS, WRK_DURATION, WRK_CONNS)
# Installs what it needs on Debian 12 (as root). The binary is taken from $CARGO_TARGET_DIR
# (default: target/) after `cargo build --release`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
CMDLINE=$(cmdline bench/acl/run.sh ROUNDS WRK_DURATION WRK_CONNS)

install_missing wrk=wrk gnuplot=gnuplot-nox
build_release meridian -p meridian-agent --bin meridian

COMMIT=$(commit_of)
CLEANUP_PATHS+=("$HERE/results.json.tmp")
/usr/bin/python3 "$HERE/acl.py" >"$HERE/results.json.tmp" || die "acl.py failed"
wrap_results "$HERE/results.json.tmp" "$CMDLINE" "$COMMIT" "" >"$HERE/results.json"
rm -f "$HERE/results.json.tmp"
log "wrote bench/acl/results.json"

/usr/bin/python3 - "$HERE/results.json" >"$HERE/bars.dat" <<'PY'
import json, sys
for name, w in json.load(open(sys.argv[1]))["workloads"].items():
    print(name.replace("_", "-"), w["off"]["rps_median"], w["on"]["rps_median"])
PY
gnuplot <<GP
set terminal pngcairo size 900,420 font "sans,10"
set output "$HERE/acl.png"
set title "Meridian: requests/s with ACLs off vs on (median of rounds, $(nproc) CPUs)"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set ylabel "requests/s"
set yrange [0:*]
set grid ytics
set key top right
plot "$HERE/bars.dat" using 2:xtic(1) title "ACLs off" lc rgb "#999999", "" using 3 title "ACLs on (app token)" lc rgb "#2b7bba"
GP
rm -f "$HERE/bars.dat"
log "wrote bench/acl/acl.png"

/usr/bin/python3 - "$HERE/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"Command: `{r['command']}` at commit {r['meridian_commit']}; {r['machine']['nproc']} CPUs, "
      f"Linux {r['machine']['kernel']}; load average at start {r['loadavg_start']}, at end "
      f"{r['loadavg_end']}; wrk -t2 -c{r['conns']} -d{r['duration']}, median of {r['rounds']} "
      f"alternating rounds per side.\n")
print("| workload | ACLs off req/s | ACLs on req/s | on / off | p50 off → on (ms) |")
print("|---|---:|---:|---:|---:|")
worst = None
for name, w in r["workloads"].items():
    off, on = w["off"], w["on"]
    print(f"| {name} | {off['rps_median']:,.0f} | {on['rps_median']:,.0f} | {w['ratio']:.2f}× | "
          f"{off['p50_ms_median']:.2f} → {on['p50_ms_median']:.2f} |")
    worst = w["ratio"] if worst is None else min(worst, w["ratio"])
print(f"\nGoal (ACLs on >= 0.9x of off on every workload): **{'met' if worst >= 0.9 else 'not met'}** "
      f"(lowest ratio {worst:.2f}×).")
PY
