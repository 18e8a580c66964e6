#!/usr/bin/env bash
# bench/gossip: Meridian's LAN gossip against HashiCorp serf (Debian `serf`), side by side.
#
# Runs N Meridian client agents and N serf agents on 127.0.0.1 with the same 32-byte key and
# the same LAN timings (probe 1s / 500ms, suspicion x4, gossip 200ms), for each N (10 and 30
# by default): time to converge after joins, time until every survivor sees a SIGKILLed
# member failed, false failures during CPU stress (stress-ng on every core), gossip bytes per
# member per second at idle (nftables counters on the gossip ports only) and RSS per agent.
# Writes bench/gossip/results.json and bench/gossip/gossip.png and prints the table for
# BENCHMARKS.md. Goal (issue #3): faster convergence and detection than serf, no more
# bandwidth, no false failures, RSS at most 2x serf's.
#
# Usage: bench/gossip/run.sh [N...]      (as root: nftables counters need it)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
SIZES=("$@")
((${#SIZES[@]})) || SIZES=(10 30)
CMDLINE="bench/gossip/run.sh ${SIZES[*]}"

((EUID == 0)) || die "run as root (nftables byte counters)"
install_missing serf=serf nft=nftables stress-ng=stress-ng gnuplot=gnuplot-nox \
  py:msgpack=python3-msgpack
build_release meridian -q -p meridian-agent --bin meridian

/usr/bin/python3 "$HERE/gossip.py" "${SIZES[@]}" >"$HERE/results.json"
log "wrote bench/gossip/results.json"

# The table for BENCHMARKS.md, with Meridian/serf ratios.
/usr/bin/python3 - "$HERE/results.json" "$CMDLINE" "$(git -C "$ROOT" rev-parse --short HEAD)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"Command: `{sys.argv[2]}` at commit {sys.argv[3]} ({r['machine']})\n")
print("| N | metric | Meridian | serf | Meridian/serf |")
print("|---|---|---|---|---|")
rows = [("converge_s", "convergence after joins (s)"), ("detect_s", "failure seen by all (s)"),
        ("false_failures", "false failures under CPU stress"),
        ("bytes_per_member_s", "gossip bytes/member/s (idle)"),
        ("rss_mean_mib", "RSS per agent, mean (MiB)"), ("rss_max_mib", "RSS per agent, max (MiB)")]
for n, row in r["sizes"].items():
    for key, label in rows:
        m, s = row["meridian"][key], row["serf"][key]
        ratio = f"{m / s:.2f}" if s else "-"
        print(f"| {n} | {label} | {m} | {s} | {ratio} |")
PY

# The picture: convergence and detection times, bytes and RSS, per N.
/usr/bin/python3 - "$HERE/results.json" >"$HERE/plot.dat" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for n, row in r["sizes"].items():
    m, s = row["meridian"], row["serf"]
    print(n, m["converge_s"], s["converge_s"], m["detect_s"], s["detect_s"],
          m["bytes_per_member_s"], s["bytes_per_member_s"], m["rss_mean_mib"], s["rss_mean_mib"])
PY
gnuplot <<GP
set terminal pngcairo size 1400,400 font "sans,10"
set output "$HERE/gossip.png"
set multiplot layout 1,4 title "Meridian vs serf LAN gossip (lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set yrange [0:*]
set title "convergence after joins (s)"
plot "$HERE/plot.dat" using 2:xtic(sprintf("N=%d",\$1)) title "Meridian" lc rgb "#2a7ab0", "" using 3 title "serf" lc rgb "#e08030"
set title "failure seen by every survivor (s)"
plot "$HERE/plot.dat" using 4:xtic(sprintf("N=%d",\$1)) title "Meridian" lc rgb "#2a7ab0", "" using 5 title "serf" lc rgb "#e08030"
set title "gossip bytes / member / s"
plot "$HERE/plot.dat" using 6:xtic(sprintf("N=%d",\$1)) title "Meridian" lc rgb "#2a7ab0", "" using 7 title "serf" lc rgb "#e08030"
set title "RSS per agent (MiB)"
plot "$HERE/plot.dat" using 8:xtic(sprintf("N=%d",\$1)) title "Meridian" lc rgb "#2a7ab0", "" using 9 title "serf" lc rgb "#e08030"
unset multiplot
GP
rm -f "$HERE/plot.dat"
log "wrote bench/gossip/gossip.png"
