#!/usr/bin/env bash
# Regenerates docs/failure-matrix.md (issue #16 item 6) from a real run: builds the three
# binaries, brings up testbed/examples/beyond.toml (needs root: network namespaces),
# runs `testbed scenario failure-matrix`, which measures and asserts every cell and writes
# the document from its measurements, and takes the testbed down whatever happened.
# Exit status: the scenario's (non-zero when a cell differs from its expectation; the
# document is written either way and marks such cells).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin meridian --bin meridian-gateway --bin testbed
run_dir="$(mktemp -d /tmp/failure-matrix.XXXXXX)"
tb=(target/debug/testbed --run-dir "$run_dir")
trap '"${tb[@]}" down >/dev/null 2>&1 || true' EXIT
"${tb[@]}" up testbed/examples/beyond.toml --gateway target/debug/meridian-gateway
status=0
"${tb[@]}" scenario failure-matrix --doc docs/failure-matrix.md || status=$?
"${tb[@]}" down
trap - EXIT
echo "docs/failure-matrix.md written (results and logs in $run_dir)"
exit "$status"
