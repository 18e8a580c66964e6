#!/usr/bin/env bash
# bench/testbed: how long `testbed up` takes for 3 datacenters × (3 servers + 1 client
# + 1 gateway host) — 16 namespaces plus the WAN router and its link emulator, 12 agents,
# every DC with a leader all its agents agree on — and how long `down` takes.
# Issue #10's goal: `up` under 30 s on the 2-core machine.
#
# Usage: bench/testbed/up.sh            (RUNS=5 TOPOLOGY=path bench/testbed/up.sh to vary;
#        PROFILE=release builds and runs release binaries; default debug, as developers run)
# Needs root (network namespaces), iproute2, procps (sysctl). Honours CARGO_TARGET_DIR.
# Prints one line per run and a summary line; nothing is left behind (each run is downed).
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
TOPOLOGY=${TOPOLOGY:-testbed/examples/three-dcs.hcl}
PROFILE=${PROFILE:-debug}

if [ "$(id -u)" != 0 ]; then
  echo "bench/testbed: needs root (network namespaces)" >&2
  exit 2
fi
flags=()
[ "$PROFILE" = release ] && flags=(--release)
cargo build -q "${flags[@]}" --bin meridian --bin testbed
target=${CARGO_TARGET_DIR:-target}/$PROFILE
run_dir=$(mktemp -d /tmp/bench-testbed.XXXXXX)
trap '"$target/testbed" --run-dir "$run_dir" down >/dev/null 2>&1 || true; rm -rf "$run_dir"' EXIT

now() { date +%s.%N; }
ups=()
for i in $(seq 1 "$RUNS"); do
  t0=$(now)
  "$target/testbed" --run-dir "$run_dir" up "$TOPOLOGY" >"$run_dir.up.log" 2>&1 || {
    cat "$run_dir.up.log" >&2; exit 1; }
  t1=$(now)
  "$target/testbed" --run-dir "$run_dir" down >/dev/null
  t2=$(now)
  up=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
  down=$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}')
  ups+=("$up")
  printf 'run %d: up %.2fs, down %.2fs (%s, %s build)\n' "$i" "$up" "$down" "$TOPOLOGY" "$PROFILE"
done
rm -f "$run_dir.up.log"
sorted=$(printf '%s\n' "${ups[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
max=$(echo "$sorted" | tail -1)
printf 'testbed up: median %.2fs, max %.2fs over %d runs (goal: < 30 s) on %s cores\n' \
  "$median" "$max" "$RUNS" "$(nproc)"
