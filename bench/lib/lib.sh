# shellcheck shell=bash
# bench/lib/lib.sh: the shell helpers the bench/*/run.sh drivers share, one copy each (issue #12
# item 6). Source it right after `set -euo pipefail`, from a script in bench/<name>/:
#
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   # shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
#   . "$HERE/../lib/lib.sh"
#
# (or `. "$ROOT/bench/lib/lib.sh"` where ROOT is the checkout). It sets ROOT (the checkout) and
# installs an EXIT trap (and INT/TERM/HUP -> exit 130) that stops every process in PIDS and
# removes $TMP and every path in CLEANUP_PATHS. It offers:
#   log MSG / die MSG              progress on stderr / an error on stderr and exit 1
#   install_missing CMD=PKG ...    apt-get install the packages whose command is missing
#                                  (py:MODULE=PKG: a Python module of /usr/bin/python3)
#   build_release WHAT ARGS...     cargo build --release ARGS in ROOT (rustup's cargo if any)
#   build_meridian                 build_release of meridian, unless BENCH_BIN names a binary
#   stop_pids PID...               SIGTERM, then SIGKILL after 10 s; "-PGID" is a process group
#   port_open PORT / free_port     a TCP listener on 127.0.0.1:PORT? / a port free for TCP+UDP
#   wait_until WHAT PIDS LOGS CMD  poll CMD until it succeeds, with a deadline (DEADLINE_SECS)
#   url_says URL PRED              GET URL and test the body with PRED (for wait_until)
#   leader_known BODY              the body of /v1/status/leader names a leader
#   loadavg / cpu_busy_pct         the 1/5/15 min load / % of the CPUs busy over 1 s
#   note_load                      LOAD_BEFORE and BUSY_BEFORE, logged (warns when busy)
#   ratio A B                      A/B with 2 decimals (0 when B is 0)
#   plot_vs PNG TITLE PEER DAT ... the two-panel Meridian-vs-peer bar chart of kv and dns
#   commit_of [PATH...]            the checkout's commit, marked when PATHs have changes
#   cmdline SCRIPT VAR...          "VAR=value ... SCRIPT" for the VARs that are set
#   wrap_results IN CMDLINE COMMIT LOADAVG [KEY=VALUE...]
#                                  a driver's JSON with the run's command, commit and machine

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- dependencies and the binary ---------------------------------------------------------

# install_missing SPEC...: SPEC is CMD=PACKAGE (installed when CMD is not on PATH) or
# py:MODULE=PACKAGE (installed when /usr/bin/python3 cannot import MODULE). One apt-get run for
# all that is missing, with sudo when not root.
install_missing() {
  local need=() spec what
  for spec in "$@"; do
    what=${spec%%=*}
    if [[ $what == py:* ]]; then
      /usr/bin/python3 -c "import ${what#py:}" 2>/dev/null || need+=("${spec#*=}")
    else
      command -v "$what" >/dev/null || need+=("${spec#*=}")
    fi
  done
  ((${#need[@]})) || return 0
  log "installing ${need[*]} (apt)"
  local sudo=""
  ((EUID == 0)) || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

# build_release WHAT CARGO-ARGS...: `cargo build --release CARGO-ARGS` in ROOT. cargo comes with
# the machine (rustup's toolchain); nothing else is fetched from outside.
build_release() {
  local what=$1
  shift
  if [[ -x $HOME/.cargo/bin/cargo ]]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
  command -v cargo >/dev/null || die "cargo is required to build $what"
  log "building $what (cargo build --release; the first build takes several minutes)"
  (cd "$ROOT" && cargo build --release "$@")
}

# build_meridian: builds the release meridian, unless BENCH_BIN names a binary to run instead.
build_meridian() {
  if [[ -n ${BENCH_BIN:-} ]]; then
    [[ -x $BENCH_BIN ]] || die "BENCH_BIN=$BENCH_BIN is not an executable"
    log "using $BENCH_BIN (BENCH_BIN set: not building)"
    return 0
  fi
  build_release meridian -p meridian-agent --bin meridian
}

# --- processes and cleanup ---------------------------------------------------------------

PIDS=()          # started processes ("-PGID": a process group), stopped on exit
TMP=""           # a scratch directory, removed on exit
CLEANUP_PATHS=() # more files or directories removed on exit

# stop_pids PID...: SIGTERM to each, then SIGKILL to whatever still runs 10 s later; reaps them.
# A "-PGID" entry stands for every process of that process group.
stop_pids() {
  local pid deadline=$((SECONDS + 10))
  for pid in "$@"; do kill -TERM -- "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 -- "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL -- "$pid" 2>/dev/null || true
    wait "${pid#-}" 2>/dev/null || true
  done
}

cleanup() {
  ((${#PIDS[@]} == 0)) || stop_pids "${PIDS[@]}"
  if [[ -n $TMP ]]; then rm -rf "$TMP"; fi
  ((${#CLEANUP_PATHS[@]} == 0)) || rm -rf "${CLEANUP_PATHS[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- ports and readiness -----------------------------------------------------------------

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The ports free_port handed out: a file, as free_port runs in $(...) subshells.
PORTS_TAKEN=$(mktemp -t bench-ports.XXXXXX)
CLEANUP_PATHS+=("$PORTS_TAKEN")
# free_port: a port on 127.0.0.1 free for TCP and UDP (and not handed out before in this run).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    grep -qx "$p" "$PORTS_TAKEN" && continue
    port_open "$p" && continue
    ss -Hlun "sport = :$p" 2>/dev/null | grep -q . && continue
    echo "$p" >>"$PORTS_TAKEN"
    echo "$p"
    return
  done
}

# wait_until WHAT PIDS LOGS CMD...: runs CMD every 0.1 s until it succeeds. Dies, after the last
# 30 lines of the matching log, as soon as one of PIDS has exited, or after DEADLINE_SECS
# (default 60) with the first log. PIDS and LOGS are space-separated lists, one log per pid
# (or one for all). CMD may set WAIT_LAST to what it saw, for the timeout message.
wait_until() {
  local what=$1 pids logs i
  read -ra pids <<<"$2"
  read -ra logs <<<"$3"
  shift 3
  local secs=${DEADLINE_SECS:-60}
  local deadline=$((SECONDS + secs))
  WAIT_LAST=""
  until "$@"; do
    for i in "${!pids[@]}"; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        tail -n 30 "${logs[$i]:-${logs[0]}}" >&2 || true
        die "$what: process ${pids[$i]} exited before it was ready (log above)"
      fi
    done
    if ((SECONDS >= deadline)); then
      tail -n 30 "${logs[0]}" >&2 || true
      die "$what: not ready after ${secs}s${WAIT_LAST:+ (last seen: $WAIT_LAST)}"
    fi
    sleep 0.1 # poll interval, not a wait for readiness
  done
}

# url_says URL PREDICATE: GET URL (2 s at most) and PREDICATE (a function taking the body)
# accepts the body; the body is left in WAIT_LAST.
url_says() {
  WAIT_LAST=$(curl -s --max-time 2 "$1" || true)
  "$2" "$WAIT_LAST"
}

leader_known() { [[ $1 =~ ^\"[^\"]+\"$ ]]; } # a non-empty JSON string

# --- the machine -------------------------------------------------------------------------

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Percent of all CPUs busy over one second (from /proc/stat), before anything is started.
cpu_busy_pct() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1 # a measurement window, not a wait for anything
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    na = split(a, x); split(b, y); total = 0
    for (i = 2; i <= na; i++) total += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%d", (total > 0) ? 100 * (total - idle) / total : 0 }'
}

# note_load: LOAD_BEFORE and BUSY_BEFORE, logged; the servers and the load generator share this
# machine's CPUs, so other load skews the numbers: a warning when over 20% were busy.
note_load() {
  LOAD_BEFORE=$(loadavg)
  BUSY_BEFORE=$(cpu_busy_pct)
  log "load average at start: $LOAD_BEFORE; CPUs ${BUSY_BEFORE}% busy"
  if ((BUSY_BEFORE > 20)); then
    log "warning: the CPUs were ${BUSY_BEFORE}% busy before the run; results will be noisy"
  fi
}

# --- results -----------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

# plot_vs PNG TITLE PEER DAT LEFT RIGHT [RATIO-PREFIX [EXTRA]]: two panels of grouped bars,
# Meridian vs PEER, from DAT's rows "label meridian peer meridian peer ratio": columns 2 and 3
# on the left (titled LEFT, each group labelled with "(RATIO-PREFIX<ratio>×)"), 4 and 5 on the
# right (titled RIGHT). EXTRA: more gnuplot settings for both panels.
plot_vs() {
  local png=$1 title=$2 peer=$3 dat=$4 left=$5 right=$6 prefix=${7:-} extra=${8:-}
  gnuplot <<GP || die "gnuplot failed"
set terminal pngcairo size 1100,450 font "sans,11"
set output "$png"
set multiplot layout 1,2 title "$title"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key below horizontal
set yrange [0:*]
$extra
set bmargin 4
set title "$left"
plot "$dat" using 2:xtic(sprintf("%s\\n(${prefix}%s×)", strcol(1), strcol(6))) title "Meridian" lc rgb "#2b7bba", "" using 3 title "$peer" lc rgb "#e0803a"
set title "$right"
plot "$dat" using 4:xtic(1) title "Meridian" lc rgb "#2b7bba", "" using 5 title "$peer" lc rgb "#e0803a"
unset multiplot
GP
}

# commit_of [PATH...]: the checkout's short commit, with " (+ uncommitted changes)" when the
# working tree (or just PATHs, when given) differs from it.
# shellcheck disable=SC2120 # the PATHs are optional
commit_of() {
  local commit
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if (($#)); then
    git -C "$ROOT" diff --quiet HEAD -- "$@" 2>/dev/null || commit+=" (+ uncommitted changes)"
  else
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit+=" (+ uncommitted changes)"
  fi
  echo "$commit"
}

# cmdline SCRIPT VAR...: the command line that gives this run, "VAR=value ... SCRIPT" for every
# VAR that is set and not empty.
cmdline() {
  local line=$1 v
  shift
  for v in "$@"; do
    if [[ -n ${!v:-} ]]; then line="$v=${!v} $line"; fi
  done
  echo "$line"
}

# wrap_results IN CMDLINE COMMIT LOADAVG [KEY=VALUE...]: IN's JSON object (a driver's output)
# on stdout behind "command", "meridian_commit", every KEY=VALUE and "machine" (nproc, kernel
# and, unless LOADAVG is empty, loadavg_before).
wrap_results() {
  /usr/bin/python3 - "$@" <<'PY'
import json, os, sys
path, command, commit, load, *extra = sys.argv[1:]
machine = {"nproc": os.cpu_count(), "kernel": os.uname().release}
if load:
    machine["loadavg_before"] = load
head = {"command": command, "meridian_commit": commit}
head.update(kv.split("=", 1) for kv in extra)
json.dump({**head, "machine": machine, **json.load(open(path))}, sys.stdout, indent=2)
PY
}
