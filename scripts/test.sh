#!/usr/bin/env bash
# The full test suite: formatting, lints, the crypto-provider guard, and every test
# (unit, in-process, real child processes, terraform's consul backend, and the test suite
# of py-consul, a Consul client nobody here wrote). Installs what it
# needs on a fresh Debian 12 machine of this kind.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
# The TLS tests make a Consul-style SEC1 CA key with openssl, the tool Consul's docs use.
command -v openssl >/dev/null || need_apt+=(openssl)
# The DNS tests ask with BIND's dig, a client nobody here wrote.
command -v dig >/dev/null || need_apt+=(bind9-dnsutils)
# py-consul's suite (scripts/clients) runs in a venv of the machine's python3.
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
# The testbed (testbed/) drives iproute2 for network namespaces and nftables for partitions.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v nft >/dev/null || need_apt+=(nftables)
# The metrics test checks the Prometheus output with Prometheus' own promtool.
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
  echo "==> installing ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v terraform >/dev/null; then
  echo "error: terraform (1.11) must be on PATH: the consul-backend acceptance test runs it" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> rustls uses ring only (no aws-lc-rs in the tree)"
if cargo tree -i aws-lc-rs >/dev/null 2>&1; then
  echo "error: aws-lc-rs is in the dependency tree" >&2
  cargo tree -i aws-lc-rs >&2
  exit 1
fi
echo "==> no crate cycles, no new import circles (scripts/check-cycles.py)"
python3 scripts/check-cycles.py
echo "==> the web UI bundle (ui/dist) is what ui/ builds to (scripts/ui-build.sh)"
bash scripts/ui-build.sh
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> binaries the tests start (meridian, meridian-gateway, testbed)"
# Built up front with the workspace's features: a test that finds meridian-gateway missing
# builds it itself (another package's binary), inside its own 300 s limit.
cargo build --workspace --bins --tests
echo "==> tests"
cargo nextest run --workspace --no-fail-fast
echo "==> the web UI in headless chromium (scripts/ui-test.sh)"
bash scripts/ui-test.sh
echo "==> py-consul's own test suite against meridian agent -dev (scripts/clients)"
bash scripts/clients/py-consul.sh
