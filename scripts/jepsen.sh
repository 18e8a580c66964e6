#!/usr/bin/env bash
# The Jepsen test's long mode (#19): many seeded 60 s runs of `testbed jepsen`, each
# checked for linearizability; a failed run keeps its history, the servers' logs and a
# timeline plot under the results dir. Prints a line per run; exits 1 if any run failed.
#
#   scripts/jepsen.sh                         100 seeds, ?consistent reads, kill/pause/restart
#   scripts/jepsen.sh --reads default         the same with Consul's default reads
#   scripts/jepsen.sh --agents 2              through client agents
#   scripts/jepsen.sh --testbed --runs 20     on a testbed (root): partitions too
#
# Any `testbed jepsen` flag may be given; see `target/debug/testbed jepsen --help`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building meridian and testbed"
cargo build -q --bin meridian --bin testbed
out="${JEPSEN_OUT:-target/jepsen/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
testbed=target/debug/testbed
run_dir="$out/testbed"

args=(--runs 100 --seed 1 --time 60s --out "$out")
if [[ " $* " == *" --testbed "* ]]; then
  # A testbed of one DC (3 servers, a client host for the clients), taken down after.
  mkdir -p "$run_dir"
  printf '[datacenter.dc1]\nservers = 3\nclients = 1\n' >"$run_dir/topology.toml"
  "$testbed" --run-dir "$run_dir" up "$run_dir/topology.toml" --meridian target/debug/meridian
  trap '"$testbed" --run-dir "$run_dir" down >/dev/null' EXIT
  [[ " $* " == *" --nemesis "* ]] || args+=(--nemesis partition,isolate,flap,kill,pause,restart)
fi
echo "==> results in $out"
"$testbed" --run-dir "$run_dir" jepsen "${args[@]}" "$@"
