#!/usr/bin/python3
"""bench/federation beyond.py: what #16's federation features cost, in one run.

Two datacenters as fed.py starts them (a server and a gateway each, on loopback), dc2's
gateway behind wanproxy.py at WAN_RTT_MS round trip, dc2's server replicating `rep/` from dc1
(`replication { source_datacenter = "dc1" prefixes = ["rep/"] }`). Service `web` in both,
`far` only in dc2. From dc1's server:
  - sequential latency, SEQ_N rounds (in a shuffled order each round) of: GET /v1/health/service/web (local),
    /v1/health/service/web?dc=any (a local hit), /v1/health/service/far?dc=any (nearest:
    dc2), DNS web.service.consul and far.service.any.consul;
  - replication lag at RATE writes/s for REP_SECONDS: WRITERS threads PUT rep/<n> to dc1, paced;
    every 100 ms the newest acknowledged key is watched in dc2 (GET ?raw every 5 ms) and its
    lag is the time from dc1's acknowledgement to its first appearance in dc2.
Then dc2's tree under the prefix is compared with dc1's (it must become equal).
Writes JSON to stdout, progress to stderr. Run by `MODE=beyond bench/federation/run.sh`.
"""

import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as bl  # noqa: E402
import fed  # noqa: E402
from fed import Dns, KeepAlive, start_federation  # noqa: E402

RATE = int(os.environ.get("RATE", "1000"))
REP_SECONDS = float(os.environ.get("REP_SECONDS", "10"))
WRITERS = int(os.environ.get("WRITERS", "8"))
FAR_IP = "10.9.9.9"


def register(port, name, ip):
    body = json.dumps({"Name": name, "Port": 80, "Address": ip})
    code, _, text = bl.http_call(port, "PUT", "/v1/agent/service/register", body)
    if code != 200:
        raise RuntimeError(f"register {name}: {code} {text!r}")


def lookups(f):
    p1, d1 = f["dc1"]["http"], f["dc1"]["dns"]
    kinds = {
        "http_local": KeepAlive(p1, "/v1/health/service/web", fed.WEB_IPS["dc1"]),
        "http_any_local_hit": KeepAlive(p1, "/v1/health/service/web?dc=any", fed.WEB_IPS["dc1"]),
        "http_any_nearest": KeepAlive(p1, "/v1/health/service/far?dc=any", FAR_IP),
        "dns_local": Dns(d1, "web.service.consul", fed.WEB_IPS["dc1"]),
        "dns_any_nearest": Dns(d1, "far.service.any.consul", FAR_IP),
    }
    samples = {k: [] for k in kinds}
    try:
        for _ in range(fed.WARMUP):
            for c in kinds.values():
                c.get()
        order = list(kinds.items())
        for i in range(fed.SEQ_N):
            # A lookup that follows a 50 ms wait finds every process idle and pays for waking
            # it: shuffled, each kind comes first equally often.
            random.shuffle(order)
            for k, c in order:
                t = time.perf_counter()
                c.get()
                samples[k].append((time.perf_counter() - t) * 1000)
            if (i + 1) % 500 == 0:
                bl.log(f"  lookups: {i + 1}/{fed.SEQ_N} rounds")
    finally:
        for c in kinds.values():
            c.close()
    out = {k: fed.summarize(v) for k, v in samples.items()}
    bl.log("  p50 " + ", ".join(f"{k} {v['p50_ms']:.3f}" for k, v in out.items()) + " ms")
    return out


def replication_lag(f, tag):
    import http.client
    p1, p2 = f["dc1"]["http"], f["dc2"]["http"]
    newest = {"n": -1, "t": 0.0}
    lock = threading.Lock()
    stop = time.monotonic() + REP_SECONDS
    errors = []
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def writer(w):
        c = http.client.HTTPConnection("127.0.0.1", p1, timeout=10)
        period = WRITERS / RATE
        nxt = time.monotonic()
        while time.monotonic() < stop:
            with counter_lock:
                n = next(counter)
            c.request("PUT", f"/v1/kv/rep/{tag}/{n:08d}", body=str(n))
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
                continue
            with lock:
                if n > newest["n"]:
                    newest["n"], newest["t"] = n, time.monotonic()
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
        c.close()

    lags = []

    def watch(n, acked):
        c = http.client.HTTPConnection("127.0.0.1", p2, timeout=10)
        deadline = acked + 30
        while time.monotonic() < deadline:
            c.request("GET", f"/v1/kv/rep/{tag}/{n:08d}?raw")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                lags.append((time.monotonic() - acked) * 1000)
                break
            time.sleep(0.005)
        c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    watchers = []
    while time.monotonic() < stop:
        time.sleep(0.1)
        with lock:
            n, acked = newest["n"], newest["t"]
        if n >= 0:
            w = threading.Thread(target=watch, args=(n, acked))
            w.start()
            watchers.append(w)
    for t in threads:
        t.join()
    written = next(counter)
    elapsed = time.monotonic() - t0
    for w in watchers:
        w.join()
    lags.sort()
    res = {"target_rate": RATE, "writes": written, "achieved_rate": round(written / elapsed, 1),
           "write_errors": len(errors), "samples": len(lags), "watched": len(watchers),
           **({"lag_p50_ms": round(bl.pct(lags, 50), 1), "lag_p99_ms": round(bl.pct(lags, 99), 1),
               "lag_max_ms": round(max(lags), 1)} if lags else {})}
    bl.log(f"  replication: {res}")
    # The trees compared at the end: dc2 holds exactly the keys and values dc1 has.
    tree = lambda port: {e["Key"]: e["Value"] for e in json.loads(
        bl.http_call(port, "GET", f"/v1/kv/rep/{tag}/?recurse")[2] or b"[]")}
    t_end = time.monotonic()
    fed.wait_for("dc2's tree to equal dc1's", lambda: tree(p2) == tree(p1), deadline=60)
    res["trees_equal_after_s"] = round(time.monotonic() - t_end, 2)
    res["keys"] = len(tree(p1))
    return res


def measure_all(tmp):
    rep = 'replication {\n  source_datacenter = "dc1"\n  prefixes = ["rep/"]\n}'
    result = {"seq_n": fed.SEQ_N, "wan_rtt_ms": fed.WAN_RTT_MS, "rate": RATE,
              "rep_seconds": REP_SECONDS, "writers": WRITERS, "settings": {}}
    f = start_federation(tmp, "beyond", wan_proxy=True, server_args={"dc2": ["-hcl", rep]})
    register(f["dc2"]["http"], "far", FAR_IP)
    for rtt in (0.0, fed.WAN_RTT_MS):
        fed.set_delay(f, rtt / 2)
        fed.wait_for("far via ?dc=any", lambda: FAR_IP.encode() in bl.http_call(
            f["dc1"]["http"], "GET", "/v1/health/service/far?dc=any")[2])
        tag = f"proxy-{rtt:g}ms"
        bl.log(f"{tag}: load average {bl.loadavg()}")
        result["settings"][tag] = {
            "wan_rtt_nominal_ms": rtt, "relay_echo": fed.echo_rtt(f),
            "lookups": lookups(f), "replication": replication_lag(f, tag),
            "loadavg": bl.loadavg()}
    return result


if __name__ == "__main__":
    fed.driver(measure_all)
