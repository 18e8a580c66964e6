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
ROOT=$(cd "$HERE/../.." && pwd)
CMDLINE="bench/tls/run.sh"
for v in SEQ_N S_TIME; do
  [[ -n ${!v:-} ]] && CMDLINE="$v=${!v} $CMDLINE"
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if ((${#need[@]})); then
  log "installing ${need[*]} (apt)"
  sudo=""
  ((EUID == 0)) || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
[[ -x $HOME/.cargo/bin/cargo ]] && export PATH="$HOME/.cargo/bin:$PATH"
if [[ -z ${BENCH_BIN_DIR:-} ]]; then
  log "building meridian (cargo build --release)"
  (cd "$ROOT" && cargo build --release --bin meridian)
  BENCH_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
MERIDIAN="$BENCH_BIN_DIR/meridian"
[[ -x $MERIDIAN ]] || die "no meridian in $BENCH_BIN_DIR"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average at start: $LOAD_BEFORE"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- agent tls config || COMMIT+=" (+ uncommitted changes)"

TMP=$(mktemp -d /tmp/meridian-bench-tls.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$TMP" "$HERE/results.json.tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

export PKI="$TMP/pki"
mkdir -p "$PKI"
(cd "$PKI" && "$MERIDIAN" tls ca create >/dev/null && "$MERIDIAN" tls cert create -server >/dev/null \
  && "$MERIDIAN" tls cert create -client >/dev/null)

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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

deadline=$((SECONDS + 30))
until curl -sf "http://127.0.0.1:$HTTP_PORT/v1/status/leader" | grep -q 127.0.0.1; do
  ((SECONDS < deadline)) || { cat "$TMP/meridian.log" >&2; die "no leader within 30 s"; }
  sleep 0.2
done
until (echo >"/dev/tcp/127.0.0.1/$OSSL_PORT") 2>/dev/null; do
  ((SECONDS < deadline)) || { cat "$TMP/openssl.log" >&2; die "s_server did not listen"; }
  sleep 0.2
done
log "Meridian https $HTTPS_PORT (http $HTTP_PORT), openssl s_server $OSSL_PORT: measuring"

/usr/bin/python3 "$HERE/tls.py" >"$HERE/results.json.tmp"
/usr/bin/python3 - "$HERE/results.json.tmp" "$CMDLINE" "$COMMIT" "$LOAD_BEFORE" \
  "$(openssl version)" <<'PY' >"$HERE/results.json"
import json, os, sys
r = json.load(open(sys.argv[1]))
r = {"command": sys.argv[2], "meridian_commit": sys.argv[3], "openssl": sys.argv[5],
     "machine": {"nproc": os.cpu_count(), "kernel": os.uname().release,
                 "loadavg_before": sys.argv[4]}, **r}
json.dump(r, sys.stdout, indent=2)
PY
log "wrote bench/tls/results.json"
/usr/bin/python3 "$HERE/report.py" "$HERE/results.json" "$HERE/tls.png"
log "wrote bench/tls/tls.png"
