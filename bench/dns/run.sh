#!/usr/bin/env bash
# bench/dns: Meridian's DNS interface against Knot DNS, side by side in one run.
#
# Starts one Meridian `-dev` agent (release build) with 10 instances of `web` registered in
# its catalog, and one Knot DNS (Debian knot) serving a static zone `consul.` with the same 10
# A records for web.service.consul. (TTL 0, as Meridian's default service TTL). Both are
# asked `web.service.consul A` by dnsperf (Debian dnsperf) with the same settings, one
# setting after the other, Meridian and Knot back to back in each:
#   - throughput: dnsperf with no rate limit (-Q unset), over UDP with 1 and with 8 clients,
#     and over TCP with 8 clients; QPS, average/max/stddev latency, queries lost, and the CPU
#     each server used (to see whether the server or dnsperf was the limit);
#   - latency: a fixed LAT_QPS queries/s (-Q) over UDP with -v, per-query latencies -> p50/p99.
# Every query carries EDNS0 (dnsperf -e): without it Meridian, as Consul, answers plain UDP
# with at most udp_answer_limit (3) records and TC set, a smaller reply than Knot's.
# On 2 CPUs each server is pinned to CPU 0 (Knot: 1 UDP + 1 TCP worker; Meridian's tokio
# runtime sizes itself to its one allowed CPU) and dnsperf (-T 1) to CPU 1 (PIN=0: unpinned).
# Writes bench/dns/results.json and bench/dns/dns.png and prints the block for BENCHMARKS.md.
# Goal (issue #5): Meridian >= 0.5x Knot's QPS.
#
# Usage: bench/dns/run.sh          (DURATION=30 LAT_QPS=2000 PIN=0 bench/dns/run.sh to vary;
#        BENCH_BIN=path/to/meridian [BENCH_COMMIT=abc1234] bench/dns/run.sh runs that
#        binary, builds nothing, and reports it as built from BENCH_COMMIT)
#        (not MERIDIAN_*: the agent reads MERIDIAN_* variables as its configuration)
# Installs what it needs on a fresh Debian 12 machine (as root). Honours CARGO_TARGET_DIR.
set -euo pipefail

DURATION=${DURATION:-15}   # seconds per throughput run
LAT_QPS=${LAT_QPS:-5000}   # rate of the latency run
LAT_SECS=${LAT_SECS:-5}
PIN=${PIN:-1}
INSTANCES=10
DEADLINE_SECS=60 # how long a server may take to become ready
# Throughput settings: "mode clients".
SETTINGS=("udp 1" "udp 8" "tcp 8")

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
CMDLINE="bench/dns/run.sh"
[[ $DURATION != 15 ]] && CMDLINE="DURATION=$DURATION $CMDLINE"
[[ $LAT_QPS != 5000 ]] && CMDLINE="LAT_QPS=$LAT_QPS $CMDLINE"
[[ $LAT_SECS != 5 ]] && CMDLINE="LAT_SECS=$LAT_SECS $CMDLINE"
[[ $PIN != 1 ]] && CMDLINE="PIN=$PIN $CMDLINE"
BENCH_BIN=${BENCH_BIN:-}
[[ -n $BENCH_BIN ]] && CMDLINE="BENCH_BIN=$BENCH_BIN $CMDLINE"

# Pinning: servers on CPU 0, dnsperf on CPU 1 (when there are 2+ CPUs and PIN=1).
if ((PIN)) && (($(nproc) >= 2)); then
  SERVER_CPU=(taskset -c 0)
  CLIENT_CPU=(taskset -c 1)
  PINNING="servers pinned to CPU 0, dnsperf to CPU 1 (taskset)"
else
  SERVER_CPU=()
  CLIENT_CPU=()
  PINNING="unpinned"
fi

# dig_a PORT: the A records web.service.consul. gets from 127.0.0.1:PORT, sorted.
dig_a() {
  dig @127.0.0.1 -p "$1" +time=1 +tries=1 +noall +answer web.service.consul A 2>/dev/null |
    awk '$4 == "A" {print $5}' | sort -V || true # not answering yet is not an error
}

# has_all PORT: the server on PORT answers with all INSTANCES records.
has_all() {
  local got
  got=$(dig_a "$1" | wc -l)
  WAIT_LAST="$got A records for web.service.consul, want $INSTANCES"
  ((got == INSTANCES))
}

addr() { echo "127.1.0.$1"; } # instance addresses: loopback, never contacted

# --- servers -----------------------------------------------------------------------------

start_meridian() {
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  local bin=${BENCH_BIN:-$target/release/meridian} hp i body out
  MDNS=$(free_port)
  hp=$(free_port)
  log "starting meridian -dev (dns 127.0.0.1:$MDNS, http 127.0.0.1:$hp; ${SERVER_CPU[*]:-unpinned})"
  "${SERVER_CPU[@]}" "$bin" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -node bench \
    -dns-port "$MDNS" -http-port "$hp" -serf-lan-port 0 -serf-wan-port 0 -server-port 0 \
    -log-level warn >"$TMP/meridian.log" 2>&1 &
  MPID=$!
  PIDS+=("$MPID")
  # Registering needs a leader; -dev elects itself within a second or two.
  wait_until "meridian leader" "$MPID" "$TMP/meridian.log" \
    url_says "http://127.0.0.1:$hp/v1/status/leader" leader_known
  log "registering $INSTANCES instances of web (PUT /v1/catalog/register)"
  for i in $(seq 1 "$INSTANCES"); do
    body="{\"Node\":\"web-$i\",\"Address\":\"$(addr "$i")\",\"Service\":{\"Service\":\"web\",\"Port\":80}}"
    out=$(curl -sf -X PUT -d "$body" "http://127.0.0.1:$hp/v1/catalog/register") ||
      die "meridian: register web-$i failed"
    [[ $out == *true* ]] || die "meridian: register web-$i returned '$out'"
  done
  wait_until meridian "$MPID" "$TMP/meridian.log" has_all "$MDNS"
}

start_knot() {
  local d="$TMP/knot" i
  mkdir -p "$d/db"
  KDNS=$(free_port)
  {
    echo "\$ORIGIN consul."
    echo "\$TTL 0"
    echo "@ SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0"
    echo "@ NS ns"
    echo "ns A 127.0.0.1"
    for i in $(seq 1 "$INSTANCES"); do echo "web.service A $(addr "$i")"; done
  } >"$d/consul.zone"
  # One UDP and one TCP worker, on the one CPU it is pinned to (knot sizes its pools by the
  # machine's CPUs, not its affinity).
  cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: 127.0.0.1@$KDNS
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$d/db"
template:
  - id: default
    storage: "$d"
    file: "%s.zone"
zone:
  - domain: consul.
EOF
  log "starting knotd $(knotd -V | awk '{print $NF}') (dns 127.0.0.1:$KDNS; ${SERVER_CPU[*]:-unpinned})"
  "${SERVER_CPU[@]}" knotd -c "$d/knot.conf" >"$TMP/knot.log" 2>&1 &
  KPID=$!
  PIDS+=("$KPID")
  wait_until knot "$KPID" "$TMP/knot.log" has_all "$KDNS"
}

# Both must answer the same records, or the comparison means nothing.
check_same_answers() {
  local m k
  m=$(dig_a "$MDNS")
  k=$(dig_a "$KDNS")
  [[ $m == "$k" ]] || die "answers differ: meridian [$m] knot [$k]"
  log "both answer web.service.consul A with the same $INSTANCES records: $(echo $m)"
}

# --- load --------------------------------------------------------------------------------

declare -A QPS AVG MAX SD LOST RESP CPU CORES P50 P99 LATN

# "busy total" jiffies of each CPU (user..steal, idle = idle + iowait), one CPU a line.
cpu_jiffies() {
  awk '/^cpu[0-9]/ { t = 0; for (i = 2; i <= 9; i++) t += $i; print $1, t - $5 - $6, t }' /proc/stat
}

# cpu_busy_between BEFORE AFTER: "cpu0%/cpu1%/..." busy between two cpu_jiffies snapshots,
# softirq and other processes included (what the server's own CPU time leaves out).
cpu_busy_between() {
  awk 'NR == FNR { b[$1] = $2; t[$1] = $3; next }
    { d = $3 - t[$1]; printf "%s%d", (n++ ? "/" : ""), (d > 0) ? 100 * ($2 - b[$1]) / d : 0 }' \
    <(echo "$1") <(echo "$2")
}

# CPU seconds (user + system, all threads) a process has used.
cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# run_perf KEY SERVER PORT PID MODE CLIENTS: one throughput run; results under KEY.
run_perf() {
  local key=$1 server=$2 port=$3 pid=$4 mode=$5 clients=$6 out c0 c1 t0 t1 j0 j1
  log "$server $mode -c $clients (${DURATION}s, dnsperf -T 1 -e, no rate limit)"
  j0=$(cpu_jiffies)
  c0=$(cpu_secs "$pid")
  t0=$(date +%s.%N)
  out=$("${CLIENT_CPU[@]}" dnsperf -s 127.0.0.1 -p "$port" -m "$mode" -d "$TMP/queries" \
    -l "$DURATION" -c "$clients" -T 1 -e -t 2 2>&1) || { echo "$out" >&2; die "$key: dnsperf failed"; }
  t1=$(date +%s.%N)
  c1=$(cpu_secs "$pid")
  j1=$(cpu_jiffies)
  CORES[$key]=$(cpu_busy_between "$j0" "$j1")
  echo "$out" >"$TMP/$key.out"
  parse_perf "$key" "$out"
  CPU[$key]=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (e - s) }')
  printf '    %s qps, avg %s ms, max %s ms, stddev %s ms, lost %s, server process CPU %s%%, CPUs busy %s%%\n' \
    "${QPS[$key]}" "${AVG[$key]}" "${MAX[$key]}" "${SD[$key]}" "${LOST[$key]}" "${CPU[$key]}" \
    "${CORES[$key]}" >&2
}

# parse_perf KEY OUTPUT: QPS, latency (ms), lost, response size; fail on anything but NOERROR.
parse_perf() {
  local key=$1 out=$2 codes
  QPS[$key]=$(awk '/Queries per second:/ {printf "%.0f", $4}' <<<"$out")
  AVG[$key]=$(awk '/^  Average Latency/ && !done {gsub(/[(),]/, ""); printf "%.3f", $4 * 1000; done = 1}' <<<"$out")
  MAX[$key]=$(awk '/^  Average Latency/ && !done {gsub(/[(),]/, ""); printf "%.3f", $8 * 1000; done = 1}' <<<"$out")
  SD[$key]=$(awk '/^  Latency StdDev/ && !done {printf "%.3f", $4 * 1000; done = 1}' <<<"$out")
  LOST[$key]=$(awk '/Queries lost:/ {print $3; exit}' <<<"$out")
  RESP[$key]=$(awk '/Average packet size:/ {print $7; exit}' <<<"$out")
  codes=$(awk -F': *' '/Response codes:/ {print $2}' <<<"$out")
  [[ -n ${QPS[$key]} && -n ${AVG[$key]} ]] || { echo "$out" >&2; die "$key: cannot read dnsperf's output"; }
  [[ $codes =~ ^NOERROR\ [0-9]+\ \(100\.00%\)$ ]] || { echo "$out" >&2; die "$key: not all NOERROR: $codes"; }
}

# run_latency KEY SERVER PORT: LAT_QPS queries/s for LAT_SECS over UDP, p50/p99 from -v.
run_latency() {
  local key=$1 server=$2 port=$3 out
  log "$server latency (udp -c 1, -Q $LAT_QPS for ${LAT_SECS}s, per-query times)"
  "${CLIENT_CPU[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$TMP/queries" -l "$LAT_SECS" -c 1 \
    -T 1 -e -t 2 -Q "$LAT_QPS" -v >"$TMP/$key.out" 2>&1 || { cat "$TMP/$key.out" >&2; die "$key: dnsperf failed"; }
  out=$(grep -v '^> ' "$TMP/$key.out")
  parse_perf "$key" "$out"
  read -r LATN[$key] P50[$key] P99[$key] < <(
    awk '/^> NOERROR/ {print $NF * 1000}' "$TMP/$key.out" | sort -g |
      awk '{v[NR] = $1} END { if (NR == 0) { print 0, 0, 0; exit }
        i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999)
        printf "%d %.3f %.3f\n", NR, v[i50], v[i99] }')
  printf '    %s answers, p50 %s ms, p99 %s ms, max %s ms\n' "${LATN[$key]}" "${P50[$key]}" \
    "${P99[$key]}" "${MAX[$key]}" >&2
}

# --- report ------------------------------------------------------------------------------

setting_key() { echo "${1/ /-c}"; } # "udp 8" -> udp-c8

report() {
  local machine kernel commit when knot_ver dnsperf_ver s k r goal=yes rows=() json_runs=""
  machine="$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  kernel=$(uname -r)
  if [[ -n $BENCH_BIN ]]; then
    commit=${BENCH_COMMIT:-"binary $BENCH_BIN"} # what the caller says it was built from
  else
    commit=$(commit_of agent config proto Cargo.lock)
  fi
  knot_ver=$(knotd -V | awk '{print $NF}')
  dnsperf_ver=$(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')
  when=$(date -u +%Y-%m-%dT%H:%M:%SZ)

  for s in "${SETTINGS[@]}"; do
    k=$(setting_key "$s")
    r=$(ratio "${QPS[m-$k]}" "${QPS[k-$k]}")
    awk -v r="$r" 'BEGIN { exit !(r >= 0.5) }' || goal=no
    RATIO[$k]=$r
    json_runs+=$(printf '%s\n    "%s": { "mode": "%s", "clients": %s, "ratio_qps": %s,' \
      "${json_runs:+,}" "$k" "${s% *}" "${s#* }" "$r")
    local who
    for who in m k; do
      json_runs+=$(printf '\n      "%s": { "qps": %s, "avg_ms": %s, "max_ms": %s, "stddev_ms": %s, "lost": %s, "response_bytes": %s, "server_cpu_pct": %s, "cpus_busy_pct": "%s" }%s' \
        "$([[ $who == m ]] && echo meridian || echo knot)" "${QPS[$who-$k]}" "${AVG[$who-$k]}" \
        "${MAX[$who-$k]}" "${SD[$who-$k]}" "${LOST[$who-$k]}" "${RESP[$who-$k]}" "${CPU[$who-$k]}" "${CORES[$who-$k]}" \
        "$([[ $who == m ]] && echo , || echo ' }')")
    done
  done

  cat >"$HERE/results.json" <<JSON
{
  "command": "$CMDLINE",
  "date": "$when",
  "machine": { "nproc": $(nproc), "kernel": "$kernel", "loadavg_before": "$LOAD_BEFORE", "cpu_busy_pct_before": $BUSY_BEFORE },
  "meridian_commit": "$commit",
  "knot_version": "$knot_ver",
  "dnsperf": { "version": "$dnsperf_ver", "threads": 1, "edns": true, "duration_s": $DURATION, "pinning": "$PINNING" },
  "throughput": {$json_runs
  },
  "latency": {
    "qps": $LAT_QPS, "duration_s": $LAT_SECS, "mode": "udp", "clients": 1,
    "meridian": { "answers": ${LATN[m-lat]}, "p50_ms": ${P50[m-lat]}, "p99_ms": ${P99[m-lat]}, "max_ms": ${MAX[m-lat]} },
    "knot": { "answers": ${LATN[k-lat]}, "p50_ms": ${P50[k-lat]}, "p99_ms": ${P99[k-lat]}, "max_ms": ${MAX[k-lat]} }
  },
  "goal_met": $([[ $goal == yes ]] && echo true || echo false)
}
JSON

  plot

  local table
  table=$(
    printf '| dnsperf setting | Meridian QPS | Knot QPS | Meridian/Knot | Meridian avg / max / sd (ms) | Knot avg / max / sd (ms) | server process CPU M / K | CPU0/CPU1 busy M; K |\n'
    printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
    for s in "${SETTINGS[@]}"; do
      k=$(setting_key "$s")
      printf '| %s, -c %s | %s | %s | **%s×** | %s / %s / %s | %s / %s / %s | %s%% / %s%% | %s; %s |\n' \
        "${s% *}" "${s#* }" "$(thousands "${QPS[m-$k]}")" "$(thousands "${QPS[k-$k]}")" "${RATIO[$k]}" \
        "${AVG[m-$k]}" "${MAX[m-$k]}" "${SD[m-$k]}" "${AVG[k-$k]}" "${MAX[k-$k]}" "${SD[k-$k]}" \
        "${CPU[m-$k]}" "${CPU[k-$k]}" "${CORES[m-$k]}" "${CORES[k-$k]}"
    done
    printf '| latency: udp, -c 1, -Q %s | p50 %s / p99 %s ms | p50 %s / p99 %s ms | | | | | |\n' \
      "$LAT_QPS" "${P50[m-lat]}" "${P99[m-lat]}" "${P50[k-lat]}" "${P99[k-lat]}"
  )
  echo
  echo "$table"
  echo
  echo "Goal (Meridian >= 0.5x Knot QPS in every setting): $goal"
  echo
  echo "----- paste into BENCHMARKS.md -----"
  cat <<MD
\`$CMDLINE\` — Meridian $commit (\`agent -dev\`, release build, 10 \`web\` instances in the
catalog) vs Knot DNS $knot_ver (static zone \`consul.\`, the same 10 A records, TTL 0), asked
\`web.service.consul A\` with EDNS0 by dnsperf $dnsperf_ver (\`-T 1 -e\`, no \`-Q\`,
${DURATION} s per run; Meridian and Knot back to back per setting); $PINNING. Knot: 1 UDP and
1 TCP worker. Replies ${RESP[m-udp-c1]} bytes (Meridian) and ${RESP[k-udp-c1]} bytes (Knot), all
NOERROR. Machine: $machine, Linux $kernel; load average at start $LOAD_BEFORE, CPUs
${BUSY_BEFORE}% busy just before; $when.

$table

Goal (Meridian ≥ 0.5× Knot's QPS): **$goal**.

![Meridian vs Knot: QPS and average latency](bench/dns/dns.png)
MD
  echo "------------------------------------"
}

declare -A RATIO

thousands() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }

# Grouped bars: QPS (left) and average latency (right) per setting, Meridian vs Knot.
plot() {
  local dat="$TMP/plot.dat" s k
  {
    echo "# setting meridian_qps knot_qps meridian_avg_ms knot_avg_ms ratio"
    for s in "${SETTINGS[@]}"; do
      k=$(setting_key "$s")
      echo "${s% *}-c${s#* } ${QPS[m-$k]} ${QPS[k-$k]} ${AVG[m-$k]} ${AVG[k-$k]} ${RATIO[$k]}"
    done
  } >"$dat"
  plot_vs "$HERE/dns.png" \
    "Meridian vs Knot DNS $(knotd -V | awk '{print $NF}') — dnsperf -T 1 -e, ${DURATION}s, $(nproc) CPUs, $PINNING" \
    Knot "$dat" "queries/s (higher is better)" "average latency (ms, lower is better)"
}

# --- main --------------------------------------------------------------------------------

main() {
  install_missing curl=curl knotd=knot dnsperf=dnsperf dig=bind9-dnsutils gnuplot=gnuplot-nox \
    taskset=util-linux
  build_meridian
  note_load

  TMP=$(mktemp -d -t meridian-bench-dns.XXXXXX)
  echo "web.service.consul A" >"$TMP/queries"
  start_meridian
  start_knot
  check_same_answers

  local s k
  for s in "${SETTINGS[@]}"; do
    k=$(setting_key "$s")
    # shellcheck disable=SC2086 # "mode clients"
    run_perf "m-$k" meridian "$MDNS" "$MPID" $s
    # shellcheck disable=SC2086
    run_perf "k-$k" knot "$KDNS" "$KPID" $s
  done
  run_latency m-lat meridian "$MDNS"
  run_latency k-lat knot "$KDNS"

  report
  log "wrote bench/dns/results.json and bench/dns/dns.png"
}

[[ ${BASH_SOURCE[0]} == "$0" ]] && main "$@"
