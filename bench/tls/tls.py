#!/usr/bin/python3
"""bench/tls driver: what a TLS handshake costs on Meridian's accept path, and what reusing a
connection saves, against OpenSSL's `s_server` as the peer. Writes JSON to stdout, progress to
stderr. Started by run.sh (which makes the certificates and starts the servers).

Both servers present the same certificate (made by `meridian tls cert create -server`) and
require a client certificate (mutual TLS, as the gateways' and servers' RPC ports do with
verify_incoming): Meridian's HTTPS port (`meridian_tls::incoming`, rustls + ring, the code the
RPC and gateway ports run) and `openssl s_server -www -Verify 1`.

Sequential latency, one request at a time, SEQ_N each after WARMUP:
  new_conn     TCP connect + full mTLS handshake (no resumption) + GET + close
  reused       GET on one kept-alive mTLS connection (Meridian only: s_server -www closes)
  plaintext    GET on one kept-alive plain HTTP connection (Meridian's HTTP port)
Throughput: `openssl s_time -new` (fresh handshake per connection) for S_TIME seconds
against each server, the CPU seconds each server used during it.
"""

import json
import os
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as bl  # noqa: E402

SEQ_N = int(os.environ.get("SEQ_N", "2000"))
WARMUP = 50
S_TIME = int(os.environ.get("S_TIME", "10"))
PKI = os.environ["PKI"]
CA = os.path.join(PKI, "consul-agent-ca.pem")
CERT = os.path.join(PKI, "dc1-client-consul-0.pem")
KEY = os.path.join(PKI, "dc1-client-consul-0-key.pem")
PATH = "/v1/status/leader"


def context():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(CERT, KEY)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def read_response(f):
    """Status code of one HTTP/1.x response from file `f`, its body read (Content-Length,
    or to EOF when the server closes)."""
    status = f.readline()
    if not status:
        raise RuntimeError("connection closed before a response")
    code = int(status.split()[1])
    length = None
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = f.read(length) if length is not None else f.read()
    return code, body


def request(sock, host="localhost", close=False):
    hdr = f"GET {PATH} HTTP/1.1\r\nHost: {host}\r\n" + ("Connection: close\r\n" if close else "")
    sock.sendall((hdr + "\r\n").encode())


def new_conn_once(ctx, port, path_ok):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            request(s, close=True)
            with s.makefile("rb") as f:
                code, body = read_response(f)
    if code != 200 or not path_ok(body):
        raise RuntimeError(f"port {port}: {code} {body[:80]!r}")


class KeepAlive:
    def __init__(self, port, tls):
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = context().wrap_socket(raw, server_hostname="localhost") if tls else raw
        self.f = self.s.makefile("rb")

    def once(self):
        request(self.s)
        code, body = read_response(self.f)
        if code != 200 or not body.startswith(b'"127.0.0.1:'):
            raise RuntimeError(f"{code} {body[:80]!r}")

    def close(self):
        self.f.close()
        self.s.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summarize(ms):
    return {"n": len(ms), "min_ms": round(min(ms), 3), "p50_ms": round(pct(ms, 50), 3),
            "p90_ms": round(pct(ms, 90), 3), "p99_ms": round(pct(ms, 99), 3),
            "cdf": [[round(pct(ms, q), 4), q] for q in range(0, 101)]}


def timed(name, fn):
    for _ in range(WARMUP):
        fn()
    ms, t0 = [], time.monotonic()
    for i in range(SEQ_N):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
        if (i + 1) % 500 == 0:
            bl.log(f"  {name}: {i + 1}/{SEQ_N} ({time.monotonic() - t0:.0f}s)")
    out = summarize(ms)
    bl.log(f"  {name}: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
    return out


def s_time(name, port, pid):
    bl.log(f"  {name}: openssl s_time -new for {S_TIME}s")
    c0 = bl.cpu_s(pid)
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(S_TIME),
         "-CAfile", CA, "-cert", CERT, "-key", KEY, "-verify", "1"],
        capture_output=True, text=True, check=True).stdout
    cpu = bl.cpu_s(pid) - c0
    # "N connections in T real seconds, B bytes read per connection"
    line = next(l for l in out.splitlines() if "real seconds" in l)
    conns, secs = int(line.split()[0]), float(line.split()[3])
    res = {"connections": conns, "seconds": secs, "handshakes_per_s": round(conns / secs, 1),
           "server_cpu_ms_per_handshake": round(cpu * 1000 / max(conns, 1), 4)}
    bl.log(f"  {name}: {res['handshakes_per_s']} handshakes/s, server CPU "
           f"{res['server_cpu_ms_per_handshake']} ms each")
    return res


def main():
    https, http, ossl = (int(os.environ[k]) for k in ("HTTPS_PORT", "HTTP_PORT", "OSSL_PORT"))
    mpid, opid = int(os.environ["MERIDIAN_PID"]), int(os.environ["OSSL_PID"])
    ctx = context()
    res = {"seq_n": SEQ_N, "warmup": WARMUP, "s_time_s": S_TIME, "sequential": {}}
    bl.log(f"sequential, {SEQ_N} requests each")
    leader = lambda b: b.startswith(b'"127.0.0.1:')
    res["sequential"]["meridian_new_conn"] = timed(
        "Meridian, new mTLS connection per request", lambda: new_conn_once(ctx, https, leader))
    res["sequential"]["openssl_new_conn"] = timed(
        "openssl s_server, new mTLS connection per request",
        lambda: new_conn_once(ctx, ossl, lambda b: b"s_server" in b))
    for name, port, tls in (("meridian_reused", https, True), ("meridian_plaintext", http, False)):
        c = KeepAlive(port, tls)
        try:
            res["sequential"][name] = timed(name, c.once)
        finally:
            c.close()
    res["s_time"] = {"meridian": s_time("Meridian", https, mpid),
                     "openssl": s_time("openssl s_server", ossl, opid)}
    s, t = res["sequential"], res["s_time"]
    res["handshake_cost_p50_ms"] = round(
        s["meridian_new_conn"]["p50_ms"] - s["meridian_reused"]["p50_ms"], 3)
    res["tls_cost_reused_p50_ms"] = round(
        s["meridian_reused"]["p50_ms"] - s["meridian_plaintext"]["p50_ms"], 3)
    res["handshakes_ratio_vs_openssl"] = round(
        t["meridian"]["handshakes_per_s"] / t["openssl"]["handshakes_per_s"], 3)
    json.dump(res, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
