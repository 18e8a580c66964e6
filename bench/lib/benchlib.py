"""Shared pieces of the bench/ drivers: logging, free ports, waiting with a deadline,
percentiles, child processes that are always stopped, one-shot HTTP calls and a checked wrk
run (bench/lib/check.lua). New drivers import this instead of carrying their own copies
(issue #12 item 6); the older drivers move over as they are touched.

Import it with:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
    import benchlib as bl
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROCS = []  # every process started through Proc, stopped in reverse order by stop_all()
_port = int(os.environ.get("PORT_BASE", "21000"))  # below the ephemeral range


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def binary(name):
    """A release binary of this checkout ($CARGO_TARGET_DIR or target/)."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", name)


def free_ports(n, ips=("127.0.0.1",)):
    """n distinct ports, free for TCP and UDP on every ip in ips."""
    global _port
    out = []
    while len(out) < n:
        _port += 1
        try:
            for ip in ips:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind((ip, _port))
        except OSError:
            continue
        out.append(_port)
    return out


def wait_for(what, cond, deadline=60.0, poll=0.1):
    """Polls cond() until it is true; fails naming `what` (and the last error) at the deadline,
    or at once if a child process died."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        for p in PROCS:
            p.check()
        try:
            if cond():
                return
        except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
            last = e
        time.sleep(poll)
    raise RuntimeError(f"timed out after {deadline:.0f}s waiting for {what} (last error: {last})")


def pct(xs, p):
    """The p-th percentile of sorted xs (nearest rank)."""
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs))) - 1))]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


class Proc:
    """A child process logging to <tmp>/<name>.log; check() fails if it has exited."""

    def __init__(self, name, args, tmp, env=None):
        self.name = name
        self.logpath = os.path.join(tmp, f"{name}.log")
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        PROCS.append(self)

    def check(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                               f"its log:\n{self.tail()}")

    def tail(self, lines=15):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def stop_all():
    while PROCS:
        PROCS.pop().stop()


def exit_on_signals():
    """SIGTERM/SIGINT raise SystemExit, so `finally: stop_all()` runs."""
    def on_signal(signum, _frame):
        raise SystemExit(f"interrupted by signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def http_call(port, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection → (status, lower-cased headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get_json(port, path, headers=None):
    code, _, body = http_call(port, "GET", path, headers=headers)
    if code != 200:
        raise OSError(f"GET {path}: {code} {body[:200]!r}")
    return json.loads(body) if body else None


def wrk(label, port, method, path, expect_status=200, expect="", body="", token="",
        conns=32, duration="5s", procs=()):
    """wrk -t2 with bench/lib/check.lua: every reply checked (status, and `expect` in the body);
    a PUT/POST path containing {n} gets a fresh number per request. Fails on any bad reply.
    Returns rps, p50/p99 (ms) and the CPU ms per request of each Proc in procs."""
    env = dict(os.environ, CHECK_METHOD=method, CHECK_PATH=path, CHECK_STATUS=str(expect_status),
               CHECK_EXPECT=expect, CHECK_BODY=body, CHECK_TOKEN=token)
    cpu0 = [p.cpu_s() for p in procs]
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{duration}", "--latency", "-s",
         os.path.join(HERE, "check.lua"), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{label}: no RESULT from wrk:\n{out}")
    r = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    errs = r["bad"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    if errs or r["requests"] == 0:
        raise RuntimeError(f"{label}: {errs:.0f} failed requests:\n{out}")
    cpu = {p.name: round((p.cpu_s() - c0) * 1000 / r["requests"], 4)
           for p, c0 in zip(procs, cpu0)}
    res = {"rps": round(r["rps"], 1), "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
           "requests": int(r["requests"]), "conns": conns, "cpu_ms_per_req": cpu}
    log(f"  {label}: {res['rps']:,.0f} req/s, p50 {res['p50_ms']:.2f} ms, "
        f"p99 {res['p99_ms']:.2f} ms")
    return res
