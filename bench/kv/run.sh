#!/usr/bin/env bash
# bench/kv: Meridian's KV store against single-member etcd 3.4, side by side in one run.
#
# Starts a durable single Meridian server and a single-member etcd (Debian etcd-server; it
# fsyncs every write by default), drives both over HTTP on 127.0.0.1 with wrk (same threads,
# connections and duration for both) and reports req/s, p50, p99 and the Meridian/etcd ratio
# for writes (KV PUT vs etcd put) and reads (default consistency vs linearizable range), plus
# each server's peak RSS. Writes bench/kv/results.json and bench/kv/kv.png and prints the
# block for BENCHMARKS.md. Goal (issue #2): Meridian >= 3x etcd on both.
#
# Usage: bench/kv/run.sh            (DURATION=30s bench/kv/run.sh for a longer run)
#        bench/kv/run.sh cluster    3 Meridian servers vs a 3-member etcd cluster, at 32 and
#                                   256 connections, plus leader failover (see main_cluster)
# Installs what it needs on a fresh Debian 12 machine (as root). The binary is taken from
# $CARGO_TARGET_DIR (default: target/) after `cargo build --release`, or from $BENCH_BIN
# (then nothing is built). FAILOVER=0 bench/kv/run.sh cluster skips the failover runs.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=2
CONNS=32
DEADLINE_SECS=60 # how long a server may take to become ready

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
# BENCH_BIN=path/to/meridian runs that binary and skips the build (e.g. a baseline build).
BENCH_BIN=${BENCH_BIN:-}
MERIDIAN="${BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/meridian}"
# FAILOVER=0 skips the leader-kill runs of cluster mode (wrk points only).
FAILOVER=${FAILOVER:-1}
CMDLINE="bench/kv/run.sh"
[[ $DURATION != 10s ]] && CMDLINE="DURATION=$DURATION $CMDLINE"
[[ -n $BENCH_BIN ]] && CMDLINE="BENCH_BIN=$BENCH_BIN $CMDLINE"

install_deps() {
  install_missing curl=curl etcd=etcd-server wrk=wrk gnuplot=gnuplot-nox
}

etcd_healthy() { [[ $1 == *'"health":"true"'* ]]; }

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- servers -----------------------------------------------------------------------------

start_meridian() {
  MP=$(free_port)
  local bin=$MERIDIAN help extra=() flag
  # Keep the agent's other listeners off Consul's default ports (another agent may hold them),
  # for whichever of Consul's port flags this build accepts.
  help=$("$bin" agent --help 2>&1 || true)
  for flag in -server-port -serf-lan-port -serf-wan-port -dns-port -grpc-port; do
    if grep -qE -- "(^|[[:space:]])-?${flag}([[:space:]=,]|$)" <<<"$help"; then
      extra+=("$flag" "$(free_port)")
    fi
  done
  log "starting meridian (http 127.0.0.1:$MP, data dir $TMP/m)"
  "$bin" agent -server -bootstrap-expect 1 -data-dir "$TMP/m" -bind 127.0.0.1 \
    -client 127.0.0.1 -http-port "$MP" -node bench -log-level warn "${extra[@]}" \
    >"$TMP/meridian.log" 2>&1 &
  MPID=$!
  PIDS+=("$MPID")
  wait_until meridian "$MPID" "$TMP/meridian.log" \
    url_says "http://127.0.0.1:$MP/v1/status/leader" leader_known
}

start_etcd() {
  EPORT=$(free_port)
  local peer
  peer=$(free_port)
  log "starting etcd $(etcd --version | awk '/etcd Version/ {print $3}') (client 127.0.0.1:$EPORT, data dir $TMP/e)"
  # Defaults kept: etcd fsyncs the WAL on every write (--unsafe-no-fsync is not set).
  etcd --name bench --data-dir "$TMP/e" \
    --listen-client-urls "http://127.0.0.1:$EPORT" --advertise-client-urls "http://127.0.0.1:$EPORT" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" --logger zap --log-level warn \
    >"$TMP/etcd.log" 2>&1 &
  EPID=$!
  PIDS+=("$EPID")
  wait_until etcd "$EPID" "$TMP/etcd.log" url_says "http://127.0.0.1:$EPORT/health" etcd_healthy
}

# Write bench/1 on both systems so the read workloads find it (and check they can write).
prewrite_read_key() {
  local value out
  value=$(printf '0123456789abcdef%.0s' {1..8})
  out=$(curl -sf -X PUT --data-binary "$value" "http://127.0.0.1:$MP/v1/kv/bench/1") ||
    die "meridian: PUT /v1/kv/bench/1 failed"
  [[ $out == *true* ]] || die "meridian: PUT /v1/kv/bench/1 returned '$out'"
  out=$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"key\":\"$(printf bench/1 | base64 -w0)\",\"value\":\"$(printf %s "$value" | base64 -w0)\"}" \
    "http://127.0.0.1:$EPORT/v3/kv/put") || die "etcd: POST /v3/kv/put failed"
  [[ $out == *'"header"'* ]] || die "etcd: /v3/kv/put returned '$out'"
}

# --- load --------------------------------------------------------------------------------

declare -A RPS P50 P99

# run_wrk LABEL WORKLOAD URL: run one workload; store req/s and latency under LABEL.
run_wrk() {
  local label=$1 workload=$2 url=$3 out line
  log "$label ($DURATION, wrk -t$THREADS -c$CONNS)"
  out=$(WORKLOAD=$workload wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s "$HERE/kv.lua" "$url" 2>&1) || { echo "$out" >&2; die "$label: wrk failed"; }
  line=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; die "$label: no RESULT line from wrk"; }
  local -A r=()
  local kv
  for kv in ${line#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
  local errs=$((r[bad] + r[connect] + r[read] + r[write] + r[timeout]))
  if ((errs > 0 || r[requests] == 0)); then
    echo "$out" >&2
    die "$label: $errs failed requests of ${r[requests]} (bad replies ${r[bad]}, socket errors connect ${r[connect]} read ${r[read]} write ${r[write]} timeout ${r[timeout]})"
  fi
  RPS[$label]=${r[rps]}
  P50[$label]=${r[p50_us]}
  P99[$label]=${r[p99_us]}
  printf '    %s req/s, p50 %s, p99 %s, %s requests, 0 errors\n' "${r[rps]}" \
    "$(ms "${r[p50_us]}")" "$(ms "${r[p99_us]}")" "${r[requests]}" >&2
}

ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# --- report ------------------------------------------------------------------------------

report() {
  local wr rr
  wr=$(ratio "${RPS[meridian writes]}" "${RPS[etcd writes]}")
  rr=$(ratio "${RPS[meridian reads]}" "${RPS[etcd reads]}")
  local goal_w=no goal_r=no
  awk -v r="$wr" 'BEGIN { exit !(r >= 3) }' && goal_w=yes
  awk -v r="$rr" 'BEGIN { exit !(r >= 3) }' && goal_r=yes
  local machine kernel commit etcd_ver when
  machine="$(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  kernel=$(uname -r)
  commit=$(commit_of)
  etcd_ver=$(etcd --version | awk '/etcd Version/ {print $3}')
  when=$(date -u +%Y-%m-%dT%H:%M:%SZ)

  # results.json
  cat >"$HERE/results.json" <<JSON
{
  "command": "$CMDLINE",
  "date": "$when",
  "machine": { "nproc": $(nproc), "kernel": "$kernel", "cpu_busy_pct_before": $BUSY_BEFORE },
  "meridian_commit": "$commit",
  "etcd_version": "$etcd_ver",
  "wrk": { "threads": $THREADS, "connections": $CONNS, "duration": "$DURATION" },
  "writes": {
    "meridian": { "rps": ${RPS[meridian writes]}, "p50_us": ${P50[meridian writes]}, "p99_us": ${P99[meridian writes]} },
    "etcd": { "rps": ${RPS[etcd writes]}, "p50_us": ${P50[etcd writes]}, "p99_us": ${P99[etcd writes]} },
    "ratio_rps": $wr,
    "goal_met": $([[ $goal_w == yes ]] && echo true || echo false)
  },
  "reads": {
    "meridian": { "rps": ${RPS[meridian reads]}, "p50_us": ${P50[meridian reads]}, "p99_us": ${P99[meridian reads]} },
    "etcd": { "rps": ${RPS[etcd reads]}, "p50_us": ${P50[etcd reads]}, "p99_us": ${P99[etcd reads]} },
    "ratio_rps": $rr,
    "goal_met": $([[ $goal_r == yes ]] && echo true || echo false)
  },
  "peak_rss_kib": { "meridian": $M_RSS, "etcd": $E_RSS }
}
JSON

  plot

  # Table (stdout) and the BENCHMARKS.md block.
  local table
  table=$(
    printf '| Workload | Meridian req/s | etcd req/s | Meridian/etcd | Meridian p50 / p99 | etcd p50 / p99 |\n'
    printf '|---|---:|---:|---:|---:|---:|\n'
    local w
    for w in writes reads; do
      printf '| %s | %.0f | %.0f | **%s×** | %s / %s | %s / %s |\n' \
        "$([[ $w == writes ]] && echo 'writes (KV PUT vs etcd put)' || echo 'reads (default vs etcd linearizable range)')" \
        "${RPS[meridian $w]}" "${RPS[etcd $w]}" "$([[ $w == writes ]] && echo "$wr" || echo "$rr")" \
        "$(ms "${P50[meridian $w]}")" "$(ms "${P99[meridian $w]}")" \
        "$(ms "${P50[etcd $w]}")" "$(ms "${P99[etcd $w]}")"
    done
    printf '| peak RSS | %s MiB | %s MiB | %s× | | |\n' "$(mib "$M_RSS")" "$(mib "$E_RSS")" \
      "$(ratio "$M_RSS" "$E_RSS")"
  )
  echo
  echo "$table"
  echo
  echo "Goal (Meridian >= 3x etcd): writes $goal_w (${wr}x), reads $goal_r (${rr}x)"
  echo
  echo "----- paste into BENCHMARKS.md -----"
  cat <<MD
### KV: Meridian vs etcd $etcd_ver (\`bench/kv\`)

\`$CMDLINE\` — one durable single Meridian server (\`-server -bootstrap-expect 1 -data-dir\`) and
one single-member etcd (defaults: every write fsynced), side by side in one run, both driven by
\`wrk -t$THREADS -c$CONNS -d$DURATION\` over HTTP on 127.0.0.1. Writes: Meridian \`PUT /v1/kv/bench/<n>\`
vs etcd \`POST /v3/kv/put\`, a fresh key per request, 128-byte values. Reads: Meridian
\`GET /v1/kv/bench/1\` (default consistency) vs etcd \`POST /v3/kv/range\` (linearizable).
Every reply was checked; the run fails on any error. Machine: $machine, Linux $kernel,
CPUs ${BUSY_BEFORE}% busy just before the run; Meridian $commit; $when.

$table

Goal (Meridian ≥ 3× etcd): writes **$goal_w**, reads **$goal_r**.

![Meridian vs etcd: req/s and p99](bench/kv/kv.png)
MD
  echo "------------------------------------"
}

# Grouped bars: req/s (left) and p99 latency (right), Meridian vs etcd, writes and reads.
plot() {
  local dat="$TMP/plot.dat"
  {
    echo "# workload meridian_rps etcd_rps meridian_p99_ms etcd_p99_ms rps_ratio"
    local w
    for w in writes reads; do
      awk -v w="$w" -v mr="${RPS[meridian $w]}" -v er="${RPS[etcd $w]}" \
        -v mp="${P99[meridian $w]}" -v ep="${P99[etcd $w]}" \
        'BEGIN { printf "%s %s %s %.3f %.3f %.1f\n", w, mr, er, mp / 1000, ep / 1000, mr / er }'
    done
  } >"$dat"
  plot_vs "$HERE/kv.png" \
    "Meridian vs etcd $(etcd --version | awk '/etcd Version/ {print $3}') — wrk -t$THREADS -c$CONNS -d$DURATION, $(nproc) CPUs" \
    etcd "$dat" "throughput (req/s, higher is better)" "p99 latency (ms, lower is better)" \
    "Meridian " "set xrange [-0.6:1.6]"
}

# --- cluster mode: 3 Meridian servers vs 3 etcd members ------------------------------------
#
# Both clusters run on 127.0.0.1 at the same time, each member with its own data dir on the
# same disk (so every write is fsynced on the leader and on a follower before it is
# acknowledged, on both systems). wrk is pointed at the leader of each (Meridian: the server
# /v1/status/leader names; etcd: the member whose /v3/maintenance/status says it leads).

CONNS_LIST=(${CONNS_LIST:-32 256})
declare -a M_HTTP M_RPC M_PID E_URL E_PID

# start_meridian_cluster TAG [HCL]: three servers, -bootstrap-expect 3, joined to the first.
start_meridian_cluster() {
  local tag=$1 hcl=${2:-} i serf0="" http rpc serf args
  M_HTTP=() M_RPC=() M_PID=()
  for i in 0 1 2; do
    http=$(free_port) rpc=$(free_port) serf=$(free_port)
    [[ -z $serf0 ]] && serf0=$serf
    args=(agent -server -bootstrap-expect 3 -data-dir "$TMP/$tag$i" -node "$tag$i"
      -bind 127.0.0.1 -client 127.0.0.1 -http-port "$http" -server-port "$rpc"
      -serf-lan-port "$serf" -serf-wan-port "$(free_port)" -dns-port "$(free_port)"
      -grpc-port "$(free_port)" -log-level warn)
    [[ -n $hcl ]] && args+=(-hcl "$hcl")
    ((i > 0)) && args+=(-retry-join "127.0.0.1:$serf0" -retry-interval 200ms)
    "$MERIDIAN" "${args[@]}" >"$TMP/$tag$i.log" 2>&1 &
    M_PID+=($!) M_HTTP+=("$http") M_RPC+=("$rpc")
    PIDS+=($!)
  done
  log "meridian cluster $tag${hcl:+ ($hcl)}: http ${M_HTTP[*]}, waiting for a leader known to all three"
  wait_until "meridian cluster $tag" "${M_PID[*]}" "$TMP/${tag}0.log $TMP/${tag}1.log $TMP/${tag}2.log" \
    cluster_ready
}

# All three servers name the same leader, and a write through the first one commits.
cluster_ready() {
  local l0 l1 l2
  l0=$(curl -s --max-time 2 "http://127.0.0.1:${M_HTTP[0]}/v1/status/leader" || true)
  l1=$(curl -s --max-time 2 "http://127.0.0.1:${M_HTTP[1]}/v1/status/leader" || true)
  l2=$(curl -s --max-time 2 "http://127.0.0.1:${M_HTTP[2]}/v1/status/leader" || true)
  WAIT_LAST="leaders ${l0:-none} ${l1:-none} ${l2:-none}"
  leader_known "$l0" && [[ $l0 == "$l1" && $l0 == "$l2" ]] &&
    curl -sf -X PUT -d ready "http://127.0.0.1:${M_HTTP[0]}/v1/kv/ready" | grep -q true
}

# The index (0..2) of the current Meridian leader.
meridian_leader() {
  local l i
  l=$(curl -s --max-time 2 "http://127.0.0.1:${M_HTTP[0]}/v1/status/leader")
  for i in 0 1 2; do
    [[ $l == "\"127.0.0.1:${M_RPC[$i]}\"" ]] && { echo "$i"; return; }
  done
  die "meridian leader $l is none of ours"
}

start_etcd_cluster() {
  local i names=() client=() peer=() initial=""
  E_URL=() E_PID=()
  for i in 0 1 2; do
    names+=("e$i") client+=("$(free_port)") peer+=("$(free_port)")
    initial+="${initial:+,}e$i=http://127.0.0.1:${peer[$i]}"
  done
  for i in 0 1 2; do
    # Defaults kept: every write fsynced, heartbeat 100 ms, election timeout 1000 ms.
    etcd --name "e$i" --data-dir "$TMP/e$i" \
      --listen-client-urls "http://127.0.0.1:${client[$i]}" --advertise-client-urls "http://127.0.0.1:${client[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peer[$i]}" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token bench \
      --logger zap --log-level warn >"$TMP/e$i.log" 2>&1 &
    E_PID+=($!) E_URL+=("http://127.0.0.1:${client[$i]}")
    PIDS+=($!)
  done
  log "etcd cluster: clients ${client[*]}, waiting for all three to be healthy"
  for i in 0 1 2; do
    wait_until "etcd e$i" "${E_PID[$i]}" "$TMP/e$i.log" url_says "${E_URL[$i]}/health" etcd_healthy
  done
}

# The index (0..2) of the etcd member that says it is the leader.
etcd_leader() {
  local i st
  for i in 0 1 2; do
    st=$(curl -s --max-time 2 -X POST -d '{}' "${E_URL[$i]}/v3/maintenance/status" || true)
    if /usr/bin/python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(s["header"]["member_id"] != s["leader"])' "$st" 2>/dev/null; then
      echo "$i"
      return
    fi
  done
  die "no etcd member says it leads"
}

# Write bench/1 through the leaders (the read workloads read it).
prewrite_cluster() {
  MP=${M_HTTP[$(meridian_leader)]}
  EPORT=${E_URL[$(etcd_leader)]##*:}
  prewrite_read_key
}

# cluster_wrk SYSTEM WORKLOAD-NAME WRK-WORKLOAD URL CONNS
cluster_wrk() {
  local system=$1 name=$2 workload=$3 url=$4 c=$5 label="$1 $2 c$5"
  CONNS=$c run_wrk "$label" "$workload" "$url"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$name" "$c" "${RPS[$label]}" \
    "${P50[$label]}" "${P99[$label]}" >>"$TMP/wrk.tsv"
}

# failover SYSTEM LABEL: SIGKILL the current leader under steady writes to all three members.
failover() {
  local system=$1 label=$2 li pid urls=()
  if [[ $system == meridian ]]; then
    li=$(meridian_leader)
    pid=${M_PID[$li]}
    local i
    for i in 0 1 2; do urls+=("http://127.0.0.1:${M_HTTP[$i]}"); done
  else
    li=$(etcd_leader)
    pid=${E_PID[$li]}
    urls=("${E_URL[@]}")
  fi
  log "failover $label: steady writes to all 3 members, then SIGKILL of the leader (member $li, pid $pid)"
  /usr/bin/python3 "$HERE/failover.py" "$system" "$pid" "${urls[@]}" >"$TMP/failover-$label.json" ||
    die "failover $label failed"
  wait "$pid" 2>/dev/null || true
}

main_cluster() {
  CMDLINE="bench/kv/run.sh cluster"
  [[ $DURATION != 10s ]] && CMDLINE="DURATION=$DURATION $CMDLINE"
  [[ $FAILOVER != 1 ]] && CMDLINE="FAILOVER=$FAILOVER $CMDLINE"
  [[ -n $BENCH_BIN ]] && CMDLINE="BENCH_BIN=$BENCH_BIN $CMDLINE"
  install_deps
  install_missing py:aiohttp=python3-aiohttp
  build_meridian
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

  note_load
  TMP=$(mktemp -d -t meridian-bench-kv3.XXXXXX)
  : >"$TMP/wrk.tsv"
  start_meridian_cluster m
  start_etcd_cluster
  prewrite_cluster
  local ml el
  ml=$(meridian_leader) el=$(etcd_leader)
  log "leaders: meridian m$ml (http ${M_HTTP[$ml]}), etcd e$el (${E_URL[$el]})"
  local mu="http://127.0.0.1:${M_HTTP[$ml]}" eu=${E_URL[$el]} c
  for c in "${CONNS_LIST[@]}"; do
    cluster_wrk meridian writes meridian-put "$mu" "$c"
    cluster_wrk etcd writes etcd-put "$eu" "$c"
    prewrite_cluster
    cluster_wrk meridian reads-default meridian-get "$mu" "$c"
    cluster_wrk meridian reads-consistent meridian-get-consistent "$mu" "$c"
    cluster_wrk etcd reads-linearizable etcd-range "$eu" "$c"
  done
  M_RSS=0 E_RSS=0
  local pid r
  for pid in "${M_PID[@]}"; do r=$(peak_rss_kib "$pid"); ((r > M_RSS)) && M_RSS=$r; done
  for pid in "${E_PID[@]}"; do r=$(peak_rss_kib "$pid"); ((r > E_RSS)) && E_RSS=$r; done

  if [[ $FAILOVER == 1 ]]; then
    failover meridian meridian-default
    failover etcd etcd
  fi
  stop_pids "${M_PID[@]}" "${E_PID[@]}"
  if [[ $FAILOVER == 1 ]]; then
    # Consul's recommended production timing (raft_multiplier 1: election timeout 1-2 s,
    # heartbeat 200 ms) is the same as etcd's defaults (election 1 s, randomized up to 2 s).
    start_meridian_cluster f 'performance { raft_multiplier = 1 }'
    failover meridian meridian-m1
    stop_pids "${M_PID[@]}"
  fi

  /usr/bin/python3 "$HERE/report_cluster.py" "$TMP" "$HERE" "$CMDLINE" \
    "$(commit_of)" \
    "$LOAD_BEFORE" "$BUSY_BEFORE" "$(etcd --version | awk '/etcd Version/ {print $3}')" \
    "$DURATION" "$THREADS" "$M_RSS" "$E_RSS"
  log "wrote bench/kv/results-cluster.json and bench/kv/kv-cluster.png"
}

# --- main --------------------------------------------------------------------------------

main() {
  install_deps
  build_meridian

  note_load

  TMP=$(mktemp -d -t meridian-bench-kv.XXXXXX)
  start_meridian
  start_etcd
  prewrite_read_key

  run_wrk "meridian writes" meridian-put "http://127.0.0.1:$MP"
  run_wrk "etcd writes" etcd-put "http://127.0.0.1:$EPORT"
  prewrite_read_key # the write runs may have replaced bench/1; make sure it is there
  run_wrk "meridian reads" meridian-get "http://127.0.0.1:$MP"
  run_wrk "etcd reads" etcd-range "http://127.0.0.1:$EPORT"

  M_RSS=$(peak_rss_kib "$MPID")
  E_RSS=$(peak_rss_kib "$EPID")
  report
  log "wrote bench/kv/results.json and bench/kv/kv.png"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  case ${1:-} in
    "") main ;;
    cluster) main_cluster ;;
    *) die "usage: bench/kv/run.sh [cluster]" ;;
  esac
fi
