#!/usr/bin/env bash
# bench/tls: the cost of a mutual-TLS handshake on Meridian's accept path and what reusing a
# connection saves, side by side with OpenSSL's `s_server` (Debian's openssl) as the peer.
#
# One durable Meridian server with its HTTPS port on (tls.https, verify_incoming: the accept
# path the RPC and gateway ports share, meridian_tls::incoming over rustls + ring) and
# `openssl s_server -www -Verify 1` with the same certificate, both on 127.0.0.1. tls.py
# measures sequential latency (new connection per request vs one kept-alive connection vs
# plaintext) and `openssl s_time -new` handshakes/s with the CPU each server used. Writes
# bench/tls/results.json and bench/tls/tls.png and prints the table for BENCHMARKS.md.
#
# Usage: bench/tls/run.sh   (env: SEQ_N, S_TIME, BENCH_BIN_DIR = a dir with a release
#        meridian: skips the build). Installs openssl and gnuplot with apt if missing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/lib.sh
. "$HERE/../lib/lib.sh"
CMDLINE=$(cmdline bench/tls/run.sh SEQ_N S_TIME)

install_missing openssl=openssl gnuplot=gnuplot-nox
if [[ -z ${BENCH_BIN_DIR:-} ]]; then
  build_release meridian --bin meridian
  BENCH_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
MERIDIAN="$BENCH_BIN_DIR/meridian"
[[ -x $MERIDIAN ]] || die "no meridian in $BENCH_BIN_DIR"

LOAD_BEFORE=$(loadavg)
log "load average at start: $LOAD_BEFORE"
COMMIT=$(commit_of agent tls config)

TMP=$(mktemp -d /tmp/meridian-bench-tls.XXXXXX)
CLEANUP_PATHS+=("$HERE/results.json.tmp")

export PKI="$TMP/pki"
mkdir -p "$PKI"
(cd "$PKI" && "$MERIDIAN" tls ca create >/dev/null && "$MERIDIAN" tls cert create -server >/dev/null \
  && "$MERIDIAN" tls cert create -client >/dev/null)

export HTTP_PORT HTTPS_PORT OSSL_PORT
HTTP_PORT=$(free_port); HTTPS_PORT=$(free_port); OSSL_PORT=$(free_port)
cat >"$TMP/tls.hcl" <<HCL
tls {
  defaults {
    ca_file = "$PKI/consul-agent-ca.pem"
    cert_file = "$PKI/dc1-server-consul-0.pem"
    key_file = "$PKI/dc1-server-consul-0-key.pem"
  }
  https {
    verify_incoming = true
  }
}
HCL
"$MERIDIAN" agent -server -bootstrap-expect 1 -node s1 -bind 127.0.0.1 -client 127.0.0.1 \
  -data-dir "$TMP/s1" -http-port "$HTTP_PORT" -https-port "$HTTPS_PORT" -dns-port -1 \
  -server-port "$(free_port)" -serf-lan-port "$(free_port)" -config-file "$TMP/tls.hcl" \
  -log-level warn >"$TMP/meridian.log" 2>&1 &
export MERIDIAN_PID=$!
PIDS+=("$MERIDIAN_PID")
openssl s_server -accept "127.0.0.1:$OSSL_PORT" -www -quiet -Verify 1 \
  -cert "$PKI/dc1-server-consul-0.pem" -key "$PKI/dc1-server-consul-0-key.pem" \
  -CAfile "$PKI/consul-agent-ca.pem" >"$TMP/openssl.log" 2>&1 &
export OSSL_PID=$!
PIDS+=("$OSSL_PID")

DEADLINE_SECS=30
wait_until "meridian leader" "$MERIDIAN_PID" "$TMP/meridian.log" \
  url_says "http://127.0.0.1:$HTTP_PORT/v1/status/leader" leader_known
wait_until "openssl s_server" "$OSSL_PID" "$TMP/openssl.log" port_open "$OSSL_PORT"
log "Meridian https $HTTPS_PORT (http $HTTP_PORT), openssl s_server $OSSL_PORT: measuring"

/usr/bin/python3 "$HERE/tls.py" >"$HERE/results.json.tmp"
wrap_results "$HERE/results.json.tmp" "$CMDLINE" "$COMMIT" "$LOAD_BEFORE" \
  "openssl=$(openssl version)" >"$HERE/results.json"
log "wrote bench/tls/results.json"
/usr/bin/python3 "$HERE/report.py" "$HERE/results.json" "$HERE/tls.png"
log "wrote bench/tls/tls.png"
