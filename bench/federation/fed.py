#!/usr/bin/python3
"""bench/federation driver: `?dc=` reads through the gateways against local reads, same run.

On loopback, no root. Two datacenters, each one server (`meridian agent -server
-bootstrap-expect 1`) and one gateway (`meridian-gateway`), the gateways joined over WAN
gossip. A key `k` in each datacenter, a service `web` in each. From dc1's server:
  kv_local   GET /v1/kv/k                    answered by dc1's server
  kv_cross   GET /v1/kv/k?dc=dc2             dc1 server -> dc1 gateway -> dc2 gateway -> dc2 server
  dns_local  web.service.consul A            (UDP, dc1's DNS port)
  dns_cross  web.service.dc2.consul A        (UDP, relayed as kv_cross is)
Per setting:
  - sequential latency: SEQ_N rounds, each one request of every kind above in turn (so a
    busy moment of the machine hits all of them alike), HTTP on one keep-alive connection
    per kind, DNS on one UDP socket; every reply checked;
  - throughput: wrk -t2 -cWRK_CONNS -dWRK_DURATION --latency, local then cross-DC, every reply
    checked (bench/lib/check.lua), with the CPU time every process used during it.
Settings: `direct` (the gateways talk on 127.0.0.1, no emulated WAN), `direct-mtls` (the same
with every RPC hop mutual TLS: certificates from `meridian tls`, verify_incoming,
verify_outgoing, verify_server_hostname; connections are reused), then a fresh federation
whose dc2 gateway advertises 127.0.0.2 on the WAN, where wanproxy.py relays TCP (RPC) and UDP
(gossip) to it: `proxy-0ms` (relay, no delay: the relay's own cost) and `proxy-<RTT>ms`
(WAN_RTT_MS / 2 each way). The relay's added round trip is checked with a TCP echo through
the same relay process. Writes a JSON document on stdout; progress
goes to stderr.
Every process started here is stopped (SIGTERM, then SIGKILL) on exit, error or signal.
"""

import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import benchlib as bl  # noqa: E402

BIN = os.environ.get("BENCH_BIN_DIR") or os.path.dirname(bl.binary("meridian"))
SEQ_N = int(os.environ.get("SEQ_N", "2000"))
WARMUP = 50
WRK_DURATION = os.environ.get("WRK_DURATION", "10s")
WRK_CONNS = int(os.environ.get("WRK_CONNS", "32"))
WAN_RTT_MS = float(os.environ.get("WAN_RTT_MS", "50"))
SETTINGS = os.environ.get("SETTINGS", "direct,direct-mtls,proxy-0ms,proxy-wan").split(",")
bl.ports_from(23000)  # below the ephemeral range
DEADLINE = 60.0
POLL = 0.2  # wait_for's poll: copies.py and beyond.py time catching up with it
TERM_WAIT = 5  # seconds a process has to exit on SIGTERM before it is killed
VALUES = {"dc1": "value-in-dc1", "dc2": "value-in-dc2"}
WEB_IPS = {"dc1": "10.1.0.7", "dc2": "10.2.0.7"}


def wait_for(what, cond, deadline=DEADLINE):
    bl.wait_for(what, cond, deadline=deadline, poll=POLL)


# --- HTTP and DNS clients --------------------------------------------------------------------


class KeepAlive:
    """One HTTP/1.1 connection, one GET at a time; checks status and body."""

    def __init__(self, port, path, expect):
        self.port, self.path, self.expect = port, path, expect.encode()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self):
        self.conn.request("GET", self.path)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200 or self.expect not in body:
            raise RuntimeError(f"GET {self.path}: {r.status} {body[:300]!r}")
        if (r.getheader("connection") or "").lower() == "close":
            raise RuntimeError(f"GET {self.path}: the server closed the keep-alive connection")

    def close(self):
        self.conn.close()


def dns_query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1)  # RD, one question, one OPT
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)  # A IN
    return q + b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0)  # EDNS0, 4096-byte payload


class Dns:
    """One UDP socket asking one name; checks rcode, answer count and the expected address."""

    def __init__(self, port, name, ip):
        self.port, self.name, self.ip = port, name, socket.inet_aton(ip)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))

    def get(self):
        qid = random.randrange(65536)
        self.sock.send(dns_query(self.name, qid))
        while True:
            data = self.sock.recv(4096)
            if struct.unpack(">H", data[:2])[0] == qid:
                break  # a late reply to an earlier query is skipped
        flags, _, an = struct.unpack(">HHH", data[2:8])
        if flags & 0xF or an == 0 or self.ip not in data:
            raise RuntimeError(f"dig {self.name}: rcode {flags & 0xF}, {an} answers, {data!r}")

    def close(self):
        self.sock.close()


# --- the federation --------------------------------------------------------------------------


def make_pki(tmp, tag):
    """A CA and per-process certificates made with `meridian tls`, for mtls=True."""
    d = os.path.join(tmp, tag, "pki")
    os.makedirs(d, exist_ok=True)
    run = lambda *a: subprocess.run([os.path.join(BIN, "meridian"), "tls", *a], cwd=d,
                                    check=True, capture_output=True)
    run("ca", "create")
    pki = {"ca": os.path.join(d, "consul-agent-ca.pem")}
    for dc in ("dc1", "dc2"):
        for kind in ("server", "gateway"):
            run("cert", "create", f"-{kind}", "-dc", dc)
            pki[(dc, kind)] = (os.path.join(d, f"{dc}-{kind}-consul-0.pem"),
                               os.path.join(d, f"{dc}-{kind}-consul-0-key.pem"))
    return pki


def start_federation(tmp, tag, wan_proxy, mtls=False, server_args=None):
    """Two DCs (server + gateway each); with wan_proxy, dc2's gateway is reached through
    wanproxy.py on 127.0.0.2; with mtls, every RPC hop (server <-> gateway <-> gateway) is
    mutual TLS with verify_incoming, verify_outgoing and verify_server_hostname. Returns a
    dict of ports and processes. server_args: extra flags per datacenter's server."""
    fed = {"procs": {}}
    server_args = server_args or {}
    pki = make_pki(tmp, tag) if mtls else None
    ips = ("127.0.0.1", "127.0.0.2")
    for n, dc in ((1, "dc1"), (2, "dc2")):
        rpc, serf, wan, http_, dns, grpc = bl.free_ports(6, ips)
        fed[dc] = {"http": http_, "dns": dns, "serf": serf}
        fed["procs"][f"s{n}"] = bl.Proc(f"{tag}-s{n}", [
            os.path.join(BIN, "meridian"), "agent", "-server", "-bootstrap-expect", "1",
            "-datacenter", dc, "-node", f"s{n}", "-bind", "127.0.0.1", "-client", "127.0.0.1",
            "-data-dir", os.path.join(tmp, tag, f"s{n}"), "-server-port", str(rpc),
            "-serf-lan-port", str(serf), "-serf-wan-port", str(wan), "-http-port", str(http_),
            "-dns-port", str(dns), "-grpc-port", str(grpc), "-log-level", "warn"]
            + (["-hcl", server_tls(pki, dc)] if mtls else []) + server_args.get(dc, []), tmp,
            term_wait=TERM_WAIT)
    g_ports = {dc: bl.free_ports(3, ips) for dc in ("dc1", "dc2")}  # server, serf lan, serf wan
    if wan_proxy:
        wan2 = g_ports["dc2"][2]
        echo_port = bl.free_ports(1, ips)[0]
        fed["echo"] = start_echo(echo_port)
        fed["proxy"] = bl.Proc(f"{tag}-wanproxy", [
            "/usr/bin/python3", os.path.join(HERE, "wanproxy.py"),
            f"127.0.0.2:{wan2}=127.0.0.1:{wan2}",
            f"127.0.0.2:{echo_port}=127.0.0.1:{echo_port}"], tmp, stdin=subprocess.PIPE,
            term_wait=TERM_WAIT)
        fed["procs"]["wanproxy"] = fed["proxy"]
        fed["echo_via"] = echo_port
        if fed["proxy"].proc.stdout.readline().strip() != "ready":
            fed["proxy"].check()
            raise RuntimeError(f"wanproxy did not start: {fed['proxy'].tail()}")
    for n, dc in ((1, "dc1"), (2, "dc2")):
        sp, lp, wp = g_ports[dc]
        args = [os.path.join(BIN, "meridian-gateway"), "-datacenter", dc, "-node", f"g{n}",
                "-bind", "127.0.0.1", "-data-dir", os.path.join(tmp, tag, f"g{n}"),
                "-server-port", str(sp), "-serf-lan-port", str(lp), "-serf-wan-port", str(wp),
                "-retry-join", f"127.0.0.1:{fed[dc]['serf']}", "-retry-interval", "1s",
                "-log-level", "warn"]
        if mtls:
            cert, key = pki[(dc, "gateway")]
            args += ["-ca-file", pki["ca"], "-cert-file", cert, "-key-file", key,
                     "-verify-incoming", "-verify-outgoing", "-verify-server-hostname"]
        if dc == "dc2":
            args += ["-retry-join-wan", f"127.0.0.1:{g_ports['dc1'][2]}"]
            if wan_proxy:
                args += ["-advertise-wan", "127.0.0.2"]
        fed["procs"][f"g{n}"] = bl.Proc(f"{tag}-g{n}", args, tmp, term_wait=TERM_WAIT)
    p1, p2 = fed["dc1"]["http"], fed["dc2"]["http"]
    bl.log(f"{tag}: dc1 server http {p1} dns {fed['dc1']['dns']}, dc2 server http {p2}; "
           f"gateway WAN ports {g_ports['dc1'][2]}, {g_ports['dc2'][2]}"
           + (f" (dc2's through wanproxy on 127.0.0.2:{g_ports['dc2'][2]})" if wan_proxy else ""))
    for dc in ("dc1", "dc2"):
        wait_for(f"a leader in {dc}",
                 lambda dc=dc: bl.get_json(fed[dc]["http"], "/v1/status/leader") not in ("", None))
    t0 = time.monotonic()
    wait_for("dc1 to list both datacenters",
             lambda: bl.get_json(p1, "/v1/catalog/datacenters") == ["dc1", "dc2"])
    bl.log(f"{tag}: /v1/catalog/datacenters on dc1 = [dc1, dc2] after "
           f"{time.monotonic() - t0:.1f}s")
    for dc in ("dc1", "dc2"):
        port = fed[dc]["http"]
        code, _, body = bl.http_call(port, "PUT", "/v1/kv/k", VALUES[dc])
        if code != 200 or body.strip() != b"true":
            raise RuntimeError(f"PUT /v1/kv/k in {dc}: {code} {body!r}")
        svc = json.dumps({"Name": "web", "Port": 8080, "Address": WEB_IPS[dc]})
        code, _, body = bl.http_call(port, "PUT", "/v1/agent/service/register", svc)
        if code != 200:
            raise RuntimeError(f"register web in {dc}: {code} {body!r}")
    wait_for("?dc=dc2 to reach dc2's key", lambda: bl.b64(VALUES["dc2"]).encode()
             in bl.http_call(p1, "GET", "/v1/kv/k?dc=dc2")[2])
    wait_for("dc1's DNS to answer for dc2's web", lambda: probe_dns(fed))
    return fed


def server_tls(pki, dc):
    cert, key = pki[(dc, "server")]
    return (f'tls {{\n defaults {{\n ca_file = "{pki["ca"]}"\n cert_file = "{cert}"\n'
            f' key_file = "{key}"\n verify_incoming = true\n verify_outgoing = true\n }}\n'
            f' internal_rpc {{\n verify_server_hostname = true\n }}\n}}\n')


def probe_dns(fed):
    for name, dc in (("web.service.consul", "dc1"), ("web.service.dc2.consul", "dc2")):
        d = Dns(fed["dc1"]["dns"], name, WEB_IPS[dc])
        try:
            d.get()
        except RuntimeError:
            return False
        finally:
            d.close()
    return True


def start_echo(port):
    """A TCP echo server on 127.0.0.1:port (threads), to time a round trip through the relay."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def echo(c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with c:
            while data := c.recv(4096):
                c.sendall(data)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def set_delay(fed, one_way_ms):
    p = fed["proxy"]
    p.proc.stdin.write(f"delay {one_way_ms}\n")
    p.proc.stdin.flush()
    if not p.proc.stdout.readline().startswith("delay"):
        p.check()
        raise RuntimeError("wanproxy did not acknowledge the delay")


def echo_rtt(fed, n=200):
    """Round trips of 64 bytes through the relay to the echo server, in ms."""
    c = socket.create_connection(("127.0.0.2", fed["echo_via"]), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            c.sendall(b"x" * 64)
            got = 0
            while got < 64:
                got += len(c.recv(64 - got))
            times.append((time.perf_counter() - t) * 1000)
    finally:
        c.close()
    times.sort()
    return {"n": n, "min_ms": round(times[0], 3), "p50_ms": round(bl.pct(times, 50), 3),
            "p99_ms": round(bl.pct(times, 99), 3)}


# --- measurements ----------------------------------------------------------------------------


def clients(fed):
    p, d = fed["dc1"]["http"], fed["dc1"]["dns"]
    return {
        "kv_local": KeepAlive(p, "/v1/kv/k", bl.b64(VALUES["dc1"])),
        "kv_cross": KeepAlive(p, "/v1/kv/k?dc=dc2", bl.b64(VALUES["dc2"])),
        "dns_local": Dns(d, "web.service.consul", WEB_IPS["dc1"]),
        "dns_cross": Dns(d, "web.service.dc2.consul", WEB_IPS["dc2"]),
    }


def summarize(ms):
    ms = sorted(ms)
    return {"n": len(ms), "min_ms": round(ms[0], 3), "p50_ms": round(bl.pct(ms, 50), 3),
            "p90_ms": round(bl.pct(ms, 90), 3), "p99_ms": round(bl.pct(ms, 99), 3),
            "max_ms": round(ms[-1], 3), "mean_ms": round(sum(ms) / len(ms), 3),
            "cdf": [[round(bl.pct(ms, q / 2), 3), q / 2] for q in range(1, 201)]}


def sequential(tag, fed):
    cs = clients(fed)
    samples = {k: [] for k in cs}
    try:
        for _ in range(WARMUP):
            for c in cs.values():
                c.get()
        t0 = last = time.monotonic()
        for i in range(SEQ_N):
            for k, c in cs.items():
                t = time.perf_counter()
                c.get()
                samples[k].append((time.perf_counter() - t) * 1000)
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                bl.log(f"  {tag}: {i + 1}/{SEQ_N} rounds ({last - t0:.0f}s)")
    finally:
        for c in cs.values():
            c.close()
    out = {k: summarize(v) for k, v in samples.items()}
    bl.log(f"  {tag}: p50 " + ", ".join(f"{k} {v['p50_ms']:.3f}" for k, v in out.items())
           + " ms; p99 " + ", ".join(f"{k} {v['p99_ms']:.2f}" for k, v in out.items()) + " ms")
    return out


def run_wrk(tag, fed, kind):
    path = "/v1/kv/k" if kind == "kv_local" else "/v1/kv/k?dc=dc2"
    dc = "dc1" if kind == "kv_local" else "dc2"
    procs = fed["procs"]
    cpu0 = {n: p.cpu_s() for n, p in procs.items()}
    r = bl.wrk_run(f"{tag} {kind}", fed["dc1"]["http"], bl.CHECK_LUA,
                   bl.check_env("GET", path, expect=bl.b64(VALUES[dc])), WRK_CONNS, WRK_DURATION)
    cpu = {n: p.cpu_s() - cpu0[n] for n, p in procs.items()}
    res = {"rps": round(r["rps"], 1), "requests": int(r["requests"]),
           "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000,
           "p99_ms": r["p99_us"] / 1000, "conns": WRK_CONNS,
           "cpu_ms_per_req": {n: round(c * 1000 / r["requests"], 4) for n, c in cpu.items()},
           "cpu_busy_pct": {n: round(c * 100 / r["seconds"], 1) for n, c in cpu.items()}}
    bl.log(f"  {tag} {kind}: wrk {res['rps']:.0f} req/s, p50 {res['p50_ms']:.2f} ms, p99 "
           f"{res['p99_ms']:.2f} ms; CPU % " + ", ".join(f"{n} {v}" for n, v in
                                                       res["cpu_busy_pct"].items()))
    return res


def measure(tag, fed, rtt_ms):
    bl.log(f"{tag}: load average {bl.loadavg()}; {SEQ_N} sequential rounds (kv local, "
           f"kv ?dc=dc2, dns local, dns dc2)")
    res = {"wan_rtt_nominal_ms": rtt_ms, "loadavg_before": bl.loadavg()}
    if "proxy" in fed:
        res["relay_echo"] = echo_rtt(fed)
        bl.log(f"  {tag}: TCP echo through wanproxy: min {res['relay_echo']['min_ms']} ms, "
               f"p50 {res['relay_echo']['p50_ms']} ms, p99 {res['relay_echo']['p99_ms']} ms")
    res["sequential"] = sequential(tag, fed)
    res["wrk"] = {k: run_wrk(tag, fed, k) for k in ("kv_local", "kv_cross")}
    s, w = res["sequential"], res["wrk"]
    link = res.get("relay_echo", {}).get("p50_ms", 0.0) if rtt_ms else 0.0
    for kind in ("kv", "dns"):
        loc, cro = s[f"{kind}_local"], s[f"{kind}_cross"]
        res[f"{kind}_added_p50_ms"] = round(cro["p50_ms"] - loc["p50_ms"], 3)
        res[f"{kind}_added_p99_ms"] = round(cro["p99_ms"] - loc["p99_ms"], 3)
    res["goal_budget_ms"] = rtt_ms + 1.0
    res["goal_met"] = res["kv_added_p50_ms"] <= res["goal_budget_ms"]
    res["measured_link_rtt_p50_ms"] = link
    res["added_beyond_link_p50_ms"] = round(res["kv_added_p50_ms"] - link, 3)
    res["throughput_ratio"] = round(w["kv_cross"]["rps"] / w["kv_local"]["rps"], 4)
    res["loadavg_after"] = bl.loadavg()
    return res


def check_ready(fed, tag):
    """The first request of a fresh federation can pay for connections; this keeps it out."""
    wait_for(f"{tag}: ?dc=dc2 answering", lambda: bl.http_call(
        fed["dc1"]["http"], "GET", "/v1/kv/k?dc=dc2")[0] == 200)


def check_binaries():
    for b in ("meridian", "meridian-gateway"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit(f"no {b} in {BIN} (build it, or set BENCH_BIN_DIR)")


def driver(measure_all):
    """The frame of a bench driver: signals stop it cleanly, BENCH_TMP and the binaries are
    checked, measure_all(tmp) returns the result, which goes to stdout as JSON; on failure
    the processes' last log lines go to stderr; every process is stopped whatever happens."""
    bl.exit_on_signals()
    tmp = os.environ.get("BENCH_TMP") or sys.exit("BENCH_TMP is not set (run.sh sets it)")
    check_binaries()
    with bl.stopping_all():
        result = measure_all(tmp)
    json.dump(result, sys.stdout, indent=2)
    print()


def measure_all(tmp):
    result = {"seq_n": SEQ_N, "warmup": WARMUP, "wrk": f"-t2 -c{WRK_CONNS} -d{WRK_DURATION}",
              "wan_rtt_ms": WAN_RTT_MS, "settings": {}}
    wan_tag = f"proxy-{WAN_RTT_MS:g}ms"
    for tag in ("direct", "direct-mtls"):
        if tag in SETTINGS:
            fed = start_federation(tmp, tag, wan_proxy=False, mtls=tag.endswith("mtls"))
            check_ready(fed, tag)
            result["settings"][tag] = measure(tag, fed, 0.0)
            bl.stop_all()
    proxied = [s for s in SETTINGS if s.startswith("proxy")]
    if proxied:
        fed = start_federation(tmp, "proxy", wan_proxy=True)
        set_delay(fed, 0)
        check_ready(fed, "proxy")
        if "proxy-0ms" in proxied:
            result["settings"]["proxy-0ms"] = measure("proxy-0ms", fed, 0.0)
        if "proxy-wan" in proxied:
            set_delay(fed, WAN_RTT_MS / 2)
            check_ready(fed, wan_tag)
            result["settings"][wan_tag] = measure(wan_tag, fed, WAN_RTT_MS)
    return result


if __name__ == "__main__":
    driver(measure_all)
