#!/usr/bin/python3
"""bench/gossip driver: N Meridian client agents and N serf agents, side by side.

For each system and each N it measures, on loopback, with the same key and the same
(LAN) gossip timings:
  converge   seconds from the first join until every agent sees N alive members
  detect     seconds from SIGKILL of one agent until every survivor reports it failed
  false      (observer, member) pairs seen not-alive during CPU stress (nobody was killed)
  bytes      gossip bytes per member per second over an idle window (nftables counters on
             the gossip ports only, so the measurement's own API/RPC polling is excluded)
  rss        resident memory per agent at idle (mean and max, MiB)

Meridian agents are client agents (no -server): gossip, HTTP API and agent duties, no raft,
which is what a serf agent is compared against. Members are polled over persistent
connections (HTTP keep-alive for Meridian, serf's msgpack RPC for serf) every POLL seconds.
Writes a JSON document on stdout; progress goes to stderr.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import msgpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as bl  # noqa: E402

POLL = 0.05
DEADLINE = 120.0
STRESS_SECS = float(os.environ.get("STRESS_SECS", "20"))
IDLE_SECS = float(os.environ.get("IDLE_SECS", "20"))
MERIDIAN = bl.meridian_bin()
KEY = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
# Port plan: gossip ports in one range per system (counted), API/RPC ports elsewhere.
PORTS = {
    "meridian": {"gossip": 17000, "api": 27000},
    "serf": {"gossip": 18000, "api": 28000},
}


def wait_for(what, cond):
    bl.wait_for(what, cond, deadline=DEADLINE, poll=POLL)


# --- agents -----------------------------------------------------------------------------


class MeridianAgent:
    ALIVE, FAILED = 1, 4

    def __init__(self, i, tmp):
        self.name = f"m{i}"
        self.gossip = PORTS["meridian"]["gossip"] + i
        self.http = PORTS["meridian"]["api"] + i
        data = os.path.join(tmp, self.name)
        self.log = open(os.path.join(tmp, f"{self.name}.log"), "w")
        self.proc = subprocess.Popen(
            [MERIDIAN, "agent", "-data-dir", data, "-node", self.name, "-bind", "127.0.0.1",
             "-client", "127.0.0.1", "-http-port", str(self.http), "-serf-lan-port",
             str(self.gossip), "-dns-port", "-1", "-encrypt", KEY, "-log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.conn = None

    def _get(self, path, method="GET"):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=5)
                self.conn.request(method, path)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.conn = None
        return 0, b""

    def ready(self):
        return self._get("/v1/agent/self")[0] == 200

    def join(self, other):
        self._get(f"/v1/agent/join/127.0.0.1:{other.gossip}", method="PUT")

    def statuses(self):
        code, body = self._get("/v1/agent/members")
        if code != 200:
            return {}
        return {m["Name"]: m["Status"] for m in json.loads(body)}


class SerfAgent:
    ALIVE, FAILED = "alive", "failed"

    def __init__(self, i, tmp):
        self.name = f"s{i}"
        self.gossip = PORTS["serf"]["gossip"] + i
        self.rpc = PORTS["serf"]["api"] + i
        self.log = open(os.path.join(tmp, f"{self.name}.log"), "w")
        self.proc = subprocess.Popen(
            ["serf", "agent", "-node", self.name, "-bind", f"127.0.0.1:{self.gossip}",
             "-rpc-addr", f"127.0.0.1:{self.rpc}", "-encrypt", KEY, "-log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.sock = None
        self.unpacker = None
        self.seq = 0

    def _call(self, command, body=None):
        for _ in range(2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.rpc), timeout=5)
                    self.unpacker = msgpack.Unpacker(raw=False)
                    self._send("handshake", {"Version": 1})
                    self._recv(with_body=False)
                return self._send_recv(command, body)
            except (OSError, ValueError, msgpack.exceptions.ExtraData):
                self.sock = None
        return None

    def _send(self, command, body):
        self.seq += 1
        data = msgpack.packb({"Command": command, "Seq": self.seq})
        if body is not None:
            data += msgpack.packb(body)
        self.sock.sendall(data)

    def _next(self):
        while True:
            for obj in self.unpacker:
                return obj
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("serf rpc closed")
            self.unpacker.feed(chunk)

    def _recv(self, with_body):
        header = self._next()
        if header.get("Error"):
            raise ValueError(header["Error"])
        return self._next() if with_body else None

    def _send_recv(self, command, body):
        self._send(command, body)
        return self._recv(with_body=command in ("members", "join"))

    def ready(self):
        return self._call("members") is not None

    def join(self, other):
        self._call("join", {"Existing": [f"127.0.0.1:{other.gossip}"], "Replay": False})

    def statuses(self):
        out = self._call("members")
        if not out:
            return {}
        return {m["Name"]: m["Status"] for m in out.get("Members", [])}


# --- gossip byte counters (nftables) ---------------------------------------------------------


def nft(*args, stdin=None):
    return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True, check=True)


def counters_setup(n):
    rules = ["table inet meridian_bench {", " chain out {",
             "  type filter hook output priority 0; policy accept;"]
    for system in ("meridian", "serf"):
        lo = PORTS[system]["gossip"]
        hi = lo + n - 1
        # Every gossip datagram is addressed to a gossip port; TCP (serf's push-pull) is
        # counted in both directions.
        rules.append(f'  udp dport {lo}-{hi} counter comment "{system}"')
        rules.append(f'  tcp dport {lo}-{hi} counter comment "{system}"')
        rules.append(f'  tcp sport {lo}-{hi} counter comment "{system}"')
    rules += [" }", "}"]
    counters_teardown()
    nft("-f", "-", stdin="\n".join(rules) + "\n")


def counters_read():
    out = json.loads(nft("-j", "list", "table", "inet", "meridian_bench").stdout)
    total = {"meridian": 0, "serf": 0}
    for item in out.get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                total[rule.get("comment", "")] += expr["counter"]["bytes"]
    return total


def counters_teardown():
    subprocess.run(["nft", "delete", "table", "inet", "meridian_bench"], capture_output=True)


# --- measurements -----------------------------------------------------------------------


def all_see(agents, want_alive):
    for a in agents:
        st = a.statuses()
        if sum(1 for s in st.values() if s == a.ALIVE) != want_alive:
            return False
    return True


def run_system(kind, n, tmp):
    cls = MeridianAgent if kind == "meridian" else SerfAgent
    bl.log(f"{kind}: starting {n} agents")
    agents = [cls(i, os.path.join(tmp, kind)) for i in range(n)]
    try:
        for a in agents:
            wait_for(f"{a.name} ready", a.ready)
        bl.log(f"{kind}: joining {n - 1} agents to {agents[0].name}")
        t0 = time.monotonic()
        threads = [threading.Thread(target=a.join, args=(agents[0],)) for a in agents[1:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(f"{kind} convergence", lambda: all_see(agents, n))
        converge = time.monotonic() - t0
        bl.log(f"{kind}: converged in {converge:.2f}s")

        before = counters_read()[kind]
        time.sleep(IDLE_SECS)  # the measurement window itself, not a wait for a condition
        idle_bytes = counters_read()[kind] - before
        bytes_per_member = idle_bytes / n / IDLE_SECS
        rss = [bl.rss_kib(a.proc.pid) / 1024.0 for a in agents]
        bl.log(f"{kind}: {bytes_per_member:.0f} B/member/s, RSS mean {sum(rss)/n:.1f} MiB")

        bl.log(f"{kind}: {STRESS_SECS:.0f}s of CPU stress on every core")
        stress = subprocess.Popen(["stress-ng", "--cpu", str(os.cpu_count()), "--timeout",
                                   f"{int(STRESS_SECS)}s", "--quiet"])
        false_pairs = set()
        while stress.poll() is None:
            for a in agents:
                for name, status in a.statuses().items():
                    if status != a.ALIVE:
                        false_pairs.add((a.name, name))
            time.sleep(POLL)
        wait_for(f"{kind} recovered after stress", lambda: all_see(agents, n))
        bl.log(f"{kind}: false failures under stress: {len(false_pairs)}")

        victim = agents[-1]
        survivors = agents[:-1]
        t0 = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()

        def detected():
            return all(a.statuses().get(victim.name) == a.FAILED for a in survivors)

        wait_for(f"{kind} failure detection", detected)
        detect = time.monotonic() - t0
        bl.log(f"{kind}: every survivor saw {victim.name} failed after {detect:.2f}s")
        return {
            "converge_s": round(converge, 3),
            "detect_s": round(detect, 3),
            "false_failures": len(false_pairs),
            "bytes_per_member_s": round(bytes_per_member, 1),
            "rss_mean_mib": round(sum(rss) / n, 1),
            "rss_max_mib": round(max(rss), 1),
        }
    finally:
        for a in agents:
            if a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()


def main():
    sizes = [int(x) for x in (sys.argv[1:] or ["10", "30"])]
    results = {"sizes": {}, "machine": f"{os.cpu_count()} cores", "key_bytes": 32}
    counters_setup(max(sizes))
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-gossip-") as tmp:
                for kind in ("meridian", "serf"):
                    os.makedirs(os.path.join(tmp, kind), exist_ok=True)
                row = {kind: run_system(kind, n, tmp) for kind in ("meridian", "serf")}
                results["sizes"][str(n)] = row
    finally:
        counters_teardown()
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
