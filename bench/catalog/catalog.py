#!/usr/bin/python3
"""bench/catalog driver: one Meridian server, client agents, services, health reads, watchers.

On 127.0.0.1:
  1. one durable server (-server -bootstrap-expect 1 -data-dir) and CLIENTS client agents
     joined to it;
  2. SERVICES services x CLIENTS instances: every client agent registers one instance of every
     service through its own PUT /v1/agent/service/register (REG_CONC requests in flight per
     agent); timed until every registration is acknowledged and the server's catalog lists
     all of them;
  3. GET /v1/health/service/<random service>?passing with wrk (-t2 -c32, WRK_DURATION), once
     against the server and once against a client agent (which forwards it to the server),
     every reply checked for CLIENTS passing instances;
  4. WATCHERS concurrent blocking queries GET /v1/health/service/svc-0?passing&index=N&wait=60s
     on ONE client agent (raw asyncio sockets, one connection each). Once all are parked, a
     new instance of svc-0 is registered through another client agent; measured: the time
     from sending that registration until each watcher has its full reply, and the watched
     agent's (and the server's) RSS before the watchers, while parked, and after.
Writes a JSON document on stdout; progress goes to stderr.
"""

import asyncio
import json
import os
import sys
import tempfile
import time

import aiohttp

try:
    import uvloop
except ImportError:  # plain asyncio works too, just slower on the client side
    uvloop = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import benchlib as bl  # noqa: E402

CLIENTS = int(os.environ.get("CLIENTS", "5"))
SERVICES = int(os.environ.get("SERVICES", "1000"))
WATCHERS = int(os.environ.get("WATCHERS", "10000"))
REG_CONC = int(os.environ.get("REG_CONC", "8"))
WRK_DURATION = os.environ.get("WRK_DURATION", "10s")
WATCH_ON = os.environ.get("WATCH_ON", "client")  # client: client agent c0; server: the server
DEADLINE = 120.0


def get_json(agent, path):
    """(lower-cased headers, decoded body) of GET path on agent; fails on a non-200 reply."""
    code, headers, body = bl.http_call(agent.http, "GET", path)
    if code != 200:
        raise OSError(f"{agent.name} GET {path}: {code} {body[:200]!r}")
    return headers, json.loads(body) if body else None


# --- registration --------------------------------------------------------------------------


async def register_all(clients):
    """Every client registers one instance of every service, REG_CONC in flight per agent."""
    done = 0
    errors = []
    total = SERVICES * len(clients)
    t0 = time.monotonic()

    async def one_agent(session, agent):
        nonlocal done
        queue = list(range(SERVICES))

        async def worker():
            nonlocal done
            while queue:
                i = queue.pop()
                body = {"Name": f"svc-{i}", "ID": f"svc-{i}-{agent.name}", "Port": 10000 + i,
                        "Tags": ["bench", f"v{i % 3}"], "Meta": {"owner": agent.name}}
                url = f"http://127.0.0.1:{agent.http}/v1/agent/service/register"
                async with session.put(url, json=body) as r:
                    if r.status != 200:
                        errors.append(f"{agent.name} svc-{i}: {r.status} {await r.text()}")
                done += 1

        await asyncio.gather(*(worker() for _ in range(REG_CONC)))

    async def progress():
        while done < total:
            await asyncio.sleep(2)
            bl.log(f"  registered {done}/{total} ({time.monotonic() - t0:.1f}s)")

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        p = asyncio.create_task(progress())
        await asyncio.gather(*(one_agent(session, a) for a in clients))
        p.cancel()
    if errors:
        raise RuntimeError(f"{len(errors)} registrations failed, e.g. {errors[0]}")
    return time.monotonic() - t0


def catalog_instances(server, clients):
    n = 0
    for c in clients:
        _, node = get_json(server, f"/v1/catalog/node/{c.name}")
        n += len(node["Services"]) if node else 0
    return n


# --- wrk -----------------------------------------------------------------------------------


def run_wrk(label, port, conns=32):
    bl.log(f"{label}: wrk -t2 -c{conns} -d{WRK_DURATION} /v1/health/service/<random>?passing")
    r = bl.wrk_run(label, port, os.path.join(HERE, "health.lua"),
                   {"SERVICES": str(SERVICES), "INSTANCES": str(CLIENTS)}, conns, WRK_DURATION)
    bl.log(f"  {r['rps']:.0f} req/s, p50 {r['p50_us'] / 1000:.2f} ms, "
           f"p99 {r['p99_us'] / 1000:.2f} ms")
    return {"rps": r["rps"], "p50_us": int(r["p50_us"]), "p99_us": int(r["p99_us"]),
            "requests": int(r["requests"]), "conns": conns}


# --- watchers ------------------------------------------------------------------------------


class Watcher(asyncio.Protocol):
    def __init__(self, request, sent):
        self.request = request
        self.sent = sent
        self.buf = bytearray()
        self.header_end = -1
        self.length = None
        self.done_at = None
        self.status = None
        self.index = None
        self.error = None
        self.transport = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)
        self.sent.append(1)

    def data_received(self, data):
        if self.done_at is not None:
            return
        self.buf += data
        if self.header_end < 0:
            self.header_end = self.buf.find(b"\r\n\r\n")
            if self.header_end < 0:
                return
            head = bytes(self.buf[:self.header_end]).decode("latin-1").split("\r\n")
            self.status = int(head[0].split()[1])
            for h in head[1:]:
                k, _, v = h.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    self.length = int(v)
                elif k == "x-consul-index":
                    self.index = int(v)
            if self.length is None:
                self.error = "no content-length"
        if self.length is not None and len(self.buf) - self.header_end - 4 >= self.length:
            self.done_at = time.monotonic()
            self.transport.close()

    def connection_lost(self, exc):
        if self.done_at is None and self.error is None:
            self.error = f"closed early: {exc}"
        if not self.closed.done():
            self.closed.set_result(None)


async def watch(agent, changer, server_pid):
    loop = asyncio.get_running_loop()
    headers, rows = get_json(agent, "/v1/health/service/svc-0?passing")
    index = int(headers["x-consul-index"])
    bl.log(f"watchers: svc-0 has {len(rows)} passing instances at index {index}")
    request = (f"GET /v1/health/service/svc-0?passing&index={index}&wait=60s HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{agent.http}\r\n\r\n").encode()
    rss_before = bl.rss_kib(agent.proc.pid)
    srv_before = bl.rss_kib(server_pid)
    sent = []
    watchers = []
    t0 = time.monotonic()
    sem = asyncio.Semaphore(256)  # connections being opened at once

    async def open_one():
        async with sem:
            for attempt in range(5):
                try:
                    _, w = await loop.create_connection(
                        lambda: Watcher(request, sent), "127.0.0.1", agent.http)
                    watchers.append(w)
                    return
                except OSError as e:
                    if attempt == 4:
                        raise RuntimeError(f"connect failed: {e}") from e
                    await asyncio.sleep(0.1)

    opener = asyncio.gather(*(open_one() for _ in range(WATCHERS)))
    while not opener.done():
        await asyncio.sleep(1)
        bl.log(f"  {len(sent)}/{WATCHERS} watchers connected and sent "
               f"({time.monotonic() - t0:.1f}s)")
    await opener
    # Let the agent read every request and park it (forwarded to the server) before changing.
    settle_end = time.monotonic() + 5
    while time.monotonic() < settle_end:
        await asyncio.sleep(0.5)
    early = sum(1 for w in watchers if w.done_at is not None or w.error)
    rss_parked = bl.rss_kib(agent.proc.pid)
    srv_parked = bl.rss_kib(server_pid)
    bl.log(f"watchers: {len(watchers)} parked ({early} returned early); agent RSS "
           f"{rss_before / 1024:.1f} -> {rss_parked / 1024:.1f} MiB")

    # The change: a new instance of svc-0, registered through another client agent.
    body = json.dumps({"Name": "svc-0", "ID": "svc-0-extra", "Port": 9999})
    t_change = time.monotonic()
    code, _, out = await loop.run_in_executor(
        None, lambda: bl.http_call(changer.http, "PUT", "/v1/agent/service/register", body))
    t_ack = time.monotonic()
    if code != 200:
        raise RuntimeError(f"change failed: {code} {out!r}")
    bl.log(f"change registered through {changer.name} in {(t_ack - t_change) * 1000:.0f} ms")
    end = time.monotonic() + 70
    last_log = 0.0
    while time.monotonic() < end:
        n = sum(1 for w in watchers if w.done_at is not None or w.error)
        if n == len(watchers):
            break
        if time.monotonic() - last_log >= 0.5:
            bl.log(f"  {n}/{len(watchers)} watchers returned ({time.monotonic() - t_change:.2f}s)")
            last_log = time.monotonic()
        await asyncio.sleep(0.01)
    rss_after = bl.rss_kib(agent.proc.pid)
    srv_after = bl.rss_kib(server_pid)
    for w in watchers:
        if w.transport:
            w.transport.abort()

    returned = sorted(w.done_at - t_change for w in watchers if w.done_at is not None)
    bad = [w for w in watchers if w.done_at is None or w.status != 200
           or (w.index or 0) <= index]
    errors = {}
    for w in bad:
        why = w.error or (f"status {w.status}" if w.status != 200 else
                          "index did not move" if w.done_at else "no reply")
        errors[why] = errors.get(why, 0) + 1

    def pct(p):
        return round(returned[min(len(returned) - 1, int(p / 100 * len(returned)))], 3) \
            if returned else None

    res = {
        "watchers": WATCHERS,
        "index": index,
        "returned_early": early,
        "returned": len(returned),
        "errors": errors,
        "change_ack_s": round(t_ack - t_change, 3),
        "first_s": round(returned[0], 3) if returned else None,
        "p50_s": pct(50),
        "p99_s": pct(99),
        "last_s": round(returned[-1], 3) if returned else None,
        "within_1s": sum(1 for t in returned if t <= 1.0),
        "agent_rss_kib": {"before": rss_before, "parked": rss_parked, "after": rss_after},
        "server_rss_kib": {"before": srv_before, "parked": srv_parked, "after": srv_after},
        "cdf": [[round(returned[min(len(returned) - 1, int(q / 200 * len(returned)))], 4),
                 q / 2] for q in range(0, 201)] if returned else [],
        "client": "uvloop" if uvloop else "asyncio",
    }
    bl.log(f"watchers: first {res['first_s']}s, p50 {res['p50_s']}s, p99 {res['p99_s']}s, last "
           f"{res['last_s']}s after the change; {res['within_1s']}/{WATCHERS} within 1 s; "
           f"errors {errors or 'none'}")
    return res


# --- main ----------------------------------------------------------------------------------


def main():
    result = {"clients": CLIENTS, "services": SERVICES, "instances": SERVICES * CLIENTS}
    with tempfile.TemporaryDirectory(prefix="meridian-bench-catalog.",
                                     ignore_cleanup_errors=True) as tmp, bl.stopping_all():
        server = bl.Agent("srv", tmp, server=True)
        bl.log(f"server srv: http {server.http}, serf {server.serf}")
        bl.wait_for("a leader", lambda: get_json(server, "/v1/status/leader")[1] not in ("", None),
                    deadline=DEADLINE)
        clients = [bl.Agent(f"c{j}", tmp, server=False, join=server.serf) for j in range(CLIENTS)]
        agents = [server] + clients
        bl.log(f"{CLIENTS} client agents: http {', '.join(str(c.http) for c in clients)}")
        bl.wait_for(f"{CLIENTS + 1} nodes in the catalog",
                    lambda: len(get_json(server, "/v1/catalog/nodes")[1]) == CLIENTS + 1,
                    deadline=DEADLINE)

        bl.log(f"registering {SERVICES} services x {CLIENTS} instances through the client agents")
        t_api = asyncio.run(register_all(clients))
        t0 = time.monotonic() - t_api
        bl.wait_for("every instance in the catalog",
                    lambda: catalog_instances(server, clients) == SERVICES * CLIENTS,
                    deadline=DEADLINE, poll=0.2)
        t_cat = time.monotonic() - t0
        bl.log(f"registered {SERVICES * CLIENTS} instances: acknowledged after {t_api:.1f}s, "
               f"all in the catalog after {t_cat:.1f}s")
        result["register"] = {"acked_s": round(t_api, 2), "in_catalog_s": round(t_cat, 2),
                              "per_s": round(SERVICES * CLIENTS / t_cat, 1),
                              "concurrency_per_agent": REG_CONC}

        result["health_server"] = run_wrk("health reads at the server", server.http)
        result["health_client"] = run_wrk("health reads at a client agent", clients[0].http)

        if uvloop:
            uvloop.install()
        watched = clients[0] if WATCH_ON == "client" else server
        # The write that wakes the watchers goes through another agent (the server when
        # there is only one client agent: CLIENTS=1 measures registrations on one agent).
        writer = clients[1] if len(clients) > 1 else server
        result["watch"] = asyncio.run(watch(watched, writer, server.proc.pid))
        result["watch"]["agent"] = WATCH_ON
        result["rss_kib_end"] = {a.name: bl.rss_kib(a.proc.pid) for a in agents}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
