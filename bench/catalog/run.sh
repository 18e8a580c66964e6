#!/usr/bin/env bash
# bench/catalog: catalog scale on one Meridian server with client agents, on 127.0.0.1.
#
# One durable server and 5 client agents; 1,000 services x 5 instances registered through the
# client agents' /v1/agent/service/register; /v1/health/service/<name>?passing req/s with wrk
# (at the server and at a client agent); then 10,000 concurrent blocking watchers
# (?index=N&wait=60s) on ONE client agent on one service, a new instance of that service
# registered, and the time until every watcher has returned plus the agent's RSS before,
# parked and after. Goal (issue #4): all 10,000 watchers return within 1 s of the change.
# Writes bench/catalog/results.json and bench/catalog/catalog.png and prints the table for
# BENCHMARKS.md. See catalog.py for the details of each step.
#
# Usage: bench/catalog/run.sh     (env: CLIENTS, SERVICES, WATCHERS, WRK_DURATION, REG_CONC)
# Installs what it needs on Debian 12 (as root). The binary is taken from $CARGO_TARGET_DIR
# (default: target/) after `cargo build --release`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
CMDLINE=$(cmdline bench/catalog/run.sh CLIENTS SERVICES WATCHERS WRK_DURATION REG_CONC WATCH_ON)

install_missing wrk=wrk gnuplot=gnuplot-nox py:aiohttp=python3-aiohttp py:uvloop=python3-uvloop
build_release meridian -p meridian-agent --bin meridian

# 10,000 watcher sockets on each side (the client and the watched agent): raise the limit as
# far as this machine allows (both processes inherit it).
ulimit -n "$(ulimit -Hn)"
WANT=$((${WATCHERS:-10000} + 1000))
(($(ulimit -n) >= WANT)) || die "open-files limit $(ulimit -n) < $WANT needed for the watchers"

LOAD_BEFORE=$(loadavg)
log "load average at start: $LOAD_BEFORE"
COMMIT=$(commit_of)

# catalog.py starts and stops every agent itself (SIGTERM, then SIGKILL after 10 s) and
# removes its temporary data dirs, on success and on failure.
CLEANUP_PATHS+=("$HERE/results.json.tmp")
/usr/bin/python3 "$HERE/catalog.py" >"$HERE/results.json.tmp" || die "catalog.py failed"
wrap_results "$HERE/results.json.tmp" "$CMDLINE" "$COMMIT" "$LOAD_BEFORE" >"$HERE/results.json"
rm -f "$HERE/results.json.tmp"
log "wrote bench/catalog/results.json"

# The picture: the watchers' return-time CDF and the agent's RSS.
/usr/bin/python3 - "$HERE/results.json" >"$HERE/cdf.dat" <<'PY'
import json, sys
for t, q in json.load(open(sys.argv[1]))["watch"]["cdf"]:
    print(t * 1000, q)
PY
read -r RB RP RA < <(/usr/bin/python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["watch"]["agent_rss_kib"]; print(w["before"]/1024, w["parked"]/1024, w["after"]/1024)' "$HERE/results.json")
gnuplot <<GP
set terminal pngcairo size 1100,420 font "sans,10"
set output "$HERE/catalog.png"
set multiplot layout 1,2 title "Meridian: ${WATCHERS:-10000} blocking watchers on $([[ ${WATCH_ON:-client} == server ]] && echo the server || echo one client agent) ($(nproc) CPUs, load ${LOAD_BEFORE%% *} at start)"
set title "watchers returned after the change (%)"
set xlabel "ms since the registration was sent"
set ylabel "% of watchers"
set grid
set key bottom right
set yrange [0:100]
plot "$HERE/cdf.dat" using 1:2 with lines lw 2 lc rgb "#2b7bba" title "returned", 1000 with lines dt 2 lc rgb "#999999" notitle
set title "watched agent RSS (MiB)"
set xlabel ""
set ylabel ""
unset grid
set grid ytics
set yrange [0:*]
set style data histogram
set style fill solid 0.85 border -1
set boxwidth 0.6
unset key
set xtics ("before" 0, "10k parked" 1, "after" 2)
plot '-' using 1:2 with boxes lc rgb "#2b7bba"
0 $RB
1 $RP
2 $RA
e
unset multiplot
GP
rm -f "$HERE/cdf.dat"
log "wrote bench/catalog/catalog.png"

/usr/bin/python3 - "$HERE/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w, reg = r["watch"], r["register"]
mib = lambda k: f"{k / 1024:.1f}"
print(f"Command: `{r['command']}` at commit {r['meridian_commit']}; {r['machine']['nproc']} CPUs, "
      f"Linux {r['machine']['kernel']}; load average at start {r['machine']['loadavg_before']}.\n")
print("| metric | value |")
print("|---|---:|")
print(f"| register {r['instances']:,} instances ({r['services']:,} services × {r['clients']} client agents, "
      f"{reg['concurrency_per_agent']} in flight per agent): all acknowledged | {reg['acked_s']} s |")
print(f"| … all in the server's catalog | {reg['in_catalog_s']} s ({reg['per_s']:,.0f}/s) |")
for k, label in (("health_server", "at the server"), ("health_client", "at a client agent (forwarded)")):
    h = r[k]
    print(f"| `/v1/health/service/<name>?passing` {label}, wrk -c{h['conns']} | "
          f"{h['rps']:,.0f} req/s, p50 {h['p50_us'] / 1000:.2f} ms, p99 {h['p99_us'] / 1000:.2f} ms |")
where = "the server" if w.get("agent") == "server" else "one client agent"
print(f"| {w['watchers']:,} blocking watchers on {where}: change registration acknowledged | {w['change_ack_s'] * 1000:.0f} ms |")
print(f"| … first / p50 / p99 / last watcher returned (from sending the change) | "
      f"{w['first_s'] * 1000:.0f} / {w['p50_s'] * 1000:.0f} / {w['p99_s'] * 1000:.0f} / {w['last_s'] * 1000:.0f} ms |")
print(f"| … returned within 1 s | {w['within_1s']:,} of {w['watchers']:,} |")
print(f"| … errors (early returns, bad replies) | {w['returned_early']} early, {sum(w['errors'].values())} bad {w['errors'] or ''} |")
a, s = w["agent_rss_kib"], w["server_rss_kib"]
print(f"| watched client agent RSS: before / 10k parked / after | {mib(a['before'])} / {mib(a['parked'])} / {mib(a['after'])} MiB |")
print(f"| server RSS: before / parked / after | {mib(s['before'])} / {mib(s['parked'])} / {mib(s['after'])} MiB |")
ok = w["within_1s"] == w["watchers"] and not w["errors"]
print(f"\nGoal (all {w['watchers']:,} watchers return within 1 s of the change): **{'met' if ok else 'not met'}**.")
PY
