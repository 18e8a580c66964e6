"""Shared pieces of the bench/ drivers: logging, free ports, waiting with a deadline,
percentiles, child processes that are always stopped (and a Meridian agent as one), a
process's RSS and CPU time, one-shot HTTP calls and a checked wrk run (bench/lib/check.lua,
or a driver's own script). Every Python driver imports this instead of carrying its own
copies (issue #12 item 6); the shell side is bench/lib/lib.sh.

Import it with:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import benchlib as bl
"""

import base64
import contextlib
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


def meridian_bin():
    """The meridian binary to run: $BENCH_MERIDIAN_BIN, or this checkout's release build."""
    return os.environ.get("BENCH_MERIDIAN_BIN", binary("meridian"))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def ports_from(base):
    """free_ports hands out ports above `base` from now on ($PORT_BASE, when set, wins)."""
    global _port
    _port = int(os.environ.get("PORT_BASE", str(base)))


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


def rss_kib(pid):
    """The resident memory (VmRSS) of a process in KiB; 0 when it has none (it has exited)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """CPU seconds (user + system, all threads) a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Proc:
    """A child process logging to <tmp>/<name>.log; check() fails if it has exited.
    With stdin (e.g. subprocess.PIPE) its stdin and stdout are text pipes to the driver and
    only stderr goes to the log. stop() sends SIGTERM and SIGKILL after term_wait seconds."""

    def __init__(self, name, args, tmp, env=None, stdin=None, term_wait=10):
        self.name = name
        self.term_wait = term_wait
        self.logpath = os.path.join(tmp, f"{name}.log")
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            args, stdin=stdin, stdout=self.logf if stdin is None else subprocess.PIPE,
            stderr=self.logf, text=stdin is not None, env=dict(os.environ, **(env or {})))
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
        return cpu_s(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.term_wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


class Agent(Proc):
    """A meridian agent on 127.0.0.1 with free ports (.http, .serf): a durable server
    (-bootstrap-expect 1) or, with join=<a serf LAN port>, an agent retry-joining it.
    config_hcl is written to <tmp>/<name>.hcl and given with -config-file."""

    def __init__(self, name, tmp, server, join=None, config_hcl=None):
        self.http, rpc, self.serf, wan, dns, grpc = free_ports(6)
        args = [meridian_bin(), "agent", "-data-dir", os.path.join(tmp, name), "-node", name,
                "-bind", "127.0.0.1", "-client", "127.0.0.1", "-http-port", str(self.http),
                "-serf-lan-port", str(self.serf), "-serf-wan-port", str(wan),
                "-dns-port", str(dns), "-grpc-port", str(grpc), "-log-level", "warn"]
        if server:
            args += ["-server", "-bootstrap-expect", "1", "-server-port", str(rpc)]
        if join:
            args += ["-retry-join", f"127.0.0.1:{join}", "-retry-interval", "200ms"]
        if config_hcl:
            path = os.path.join(tmp, f"{name}.hcl")
            with open(path, "w") as f:
                f.write(config_hcl)
            args += ["-config-file", path]
        super().__init__(name, args, tmp)


def stop_all():
    while PROCS:
        PROCS.pop().stop()


@contextlib.contextmanager
def stopping_all():
    """`with bl.stopping_all():` every Proc is stopped on the way out, whatever happens; on an
    error the last lines of each one's log go to stderr first."""
    try:
        yield
    except Exception:
        for p in PROCS:
            print(f"--- last lines of {p.name}'s log:\n{p.tail()}", file=sys.stderr)
        raise
    finally:
        stop_all()


def exit_on_signals():
    """SIGTERM/SIGINT/SIGHUP raise SystemExit, so `finally: stop_all()` runs."""
    def on_signal(signum, _frame):
        raise SystemExit(f"interrupted by signal {signum}")
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)


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


def wrk_run(label, port, script, env, conns=32, duration="5s"):
    """wrk -t2 -c<conns> -d<duration> --latency with a wrk script whose done() prints one
    "RESULT key=value ..." line (requests, rps, p50_us, ..., bad and the socket errors), with
    `env` added to the environment. Fails on any bad reply or socket error; returns the
    RESULT line's values as floats."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{duration}", "--latency", "-s", script,
         f"http://127.0.0.1:{port}"],
        env=dict(os.environ, **env), capture_output=True, text=True, check=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{label}: no RESULT from wrk:\n{out}")
    r = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    errs = r["bad"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    if errs or r["requests"] == 0:
        raise RuntimeError(f"{label}: {errs:.0f} failed requests:\n{out}")
    return r


def check_env(method, path, expect_status=200, expect="", body="", token=""):
    """The environment of bench/lib/check.lua for one request shape."""
    return dict(CHECK_METHOD=method, CHECK_PATH=path, CHECK_STATUS=str(expect_status),
                CHECK_EXPECT=expect, CHECK_BODY=body, CHECK_TOKEN=token)


CHECK_LUA = os.path.join(HERE, "check.lua")


def wrk(label, port, method, path, expect_status=200, expect="", body="", token="",
        conns=32, duration="5s", procs=()):
    """wrk -t2 with bench/lib/check.lua: every reply checked (status, and `expect` in the body);
    a PUT/POST path containing {n} gets a fresh number per request. Fails on any bad reply.
    Returns rps, p50/p99 (ms) and the CPU ms per request of each Proc in procs."""
    cpu0 = [p.cpu_s() for p in procs]
    r = wrk_run(label, port, CHECK_LUA,
                check_env(method, path, expect_status, expect, body, token), conns, duration)
    cpu = {p.name: round((p.cpu_s() - c0) * 1000 / r["requests"], 4)
           for p, c0 in zip(procs, cpu0)}
    res = {"rps": round(r["rps"], 1), "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
           "requests": int(r["requests"]), "conns": conns, "cpu_ms_per_req": cpu}
    log(f"  {label}: {res['rps']:,.0f} req/s, p50 {res['p50_ms']:.2f} ms, "
        f"p99 {res['p99_ms']:.2f} ms")
    return res
