#!/usr/bin/python3
"""bench/federation copies: the memory cost of a gateway's copy of a remote catalog (#16).

On loopback, no root, Python 3 stdlib only. Two datacenters of one server and one gateway
each (fed.start_federation). Service instances are registered in dc2 through
PUT /v1/catalog/register (INSTANCES_PER_NODE per node, each with one passing check), up to
each level of LEVELS in turn; at each level the script waits until dc1's gateway holds a
copy of dc2's catalog at least as new as the last registration (its index, from dc1's
/v1/operator/federation), lets it settle, and reads:
  - the dc1 gateway's VmRSS (/proc/<pid>/status): growth per remote instance over level 0;
  - the copy's size in bytes: bytes per remote instance over level 0;
  - for scale, dc2's server's VmRSS growth per instance (the live catalog's own cost).
After the last level, dc2's server is killed and a stale read of dc2 from dc1
(GET /v1/health/service/bench?dc=dc2&stale) is answered from the copy: the time of that
first answer (dc1's server fetches and decodes the copy) and of the next one (cached), and
dc1 server's RSS growth per instance for holding the decoded copy.
Binaries from BENCH_BIN_DIR (default target/release). Progress on stderr; a table on
stdout, and the same as JSON with --json.
"""

import concurrent.futures
import http.client
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import benchlib as bl  # noqa: E402
import fed  # noqa: E402  (the federation helpers of bench/federation)

LEVELS = [int(x) for x in os.environ.get("LEVELS", "0,1000,5000,10000").split(",")]
INSTANCES_PER_NODE = int(os.environ.get("INSTANCES_PER_NODE", "10"))
REG_CONC = int(os.environ.get("REG_CONC", "16"))
SETTLE_S = float(os.environ.get("SETTLE_S", "3"))


def rss_kib(pid):
    kib = bl.rss_kib(pid)
    if not kib:
        raise RuntimeError(f"no VmRSS for {pid}")
    return kib


def register_one(port, i):
    node = f"node-{i // INSTANCES_PER_NODE}"
    n = i // INSTANCES_PER_NODE
    body = json.dumps({
        "Node": node,
        "Address": f"10.3.{n // 250 % 250}.{n % 250 + 1}",
        "Service": {"ID": f"bench-{i}", "Service": "bench", "Port": 8000 + i % 1000,
                    "Tags": ["copy-bench", f"shard-{i % 16}"], "Meta": {"i": str(i)}},
        "Check": {"CheckID": f"service:bench-{i}", "Name": "bench check",
                  "ServiceID": f"bench-{i}", "Status": "passing"},
    })
    code, _, text = bl.http_call(port, "PUT", "/v1/catalog/register", body)
    if code != 200:
        raise RuntimeError(f"register bench-{i}: {code} {text[:200]!r}")


def register_range(port, start, end):
    t0 = time.monotonic()
    done = 0
    with concurrent.futures.ThreadPoolExecutor(REG_CONC) as pool:
        for _ in pool.map(lambda i: register_one(port, i), range(start, end)):
            done += 1
            if done % 1000 == 0:
                bl.log(f"  registered {start + done}/{end} in dc2 ({time.monotonic() - t0:.1f}s)")
    return time.monotonic() - t0


def catalog_index(port):
    """dc2's catalog index now (X-Consul-Index of a catalog read)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/v1/catalog/nodes")
        r = c.getresponse()
        r.read()
        return int(r.getheader("X-Consul-Index"))
    finally:
        c.close()


def copy_of(port, dc="dc2"):
    view = bl.get_json(port, "/v1/operator/federation")
    for d in view["Datacenters"]:
        if d["Name"] == dc:
            return d.get("Copy") or {}
    return {}


def timed_stale_read(port, want):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        t0 = time.monotonic()
        c.request("GET", "/v1/health/service/bench?dc=dc2&stale")
        r = c.getresponse()
        body = r.read()
        took = time.monotonic() - t0
        if r.status != 200 or r.getheader("X-Meridian-Copy") != "dc2":
            raise RuntimeError(f"stale read of cut-off dc2: {r.status} "
                               f"copy={r.getheader('X-Meridian-Copy')} {body[:200]!r}")
        got = len(json.loads(body))
        if got != want:
            raise RuntimeError(f"stale read from the copy: {got} instances, want {want}")
        return took
    finally:
        c.close()


def main():
    bl.exit_on_signals()
    as_json = "--json" in sys.argv[1:]
    fed.check_binaries()
    tmp = os.environ.get("BENCH_TMP") or tempfile.mkdtemp(prefix="copies-bench-")
    levels = sorted(set([0] + LEVELS))
    rows = []
    result = {"bin": fed.BIN, "instances_per_node": INSTANCES_PER_NODE, "levels": rows}
    with bl.stopping_all():
        f = fed.start_federation(tmp, "copies", wan_proxy=False)
        p1, p2 = f["dc1"]["http"], f["dc2"]["http"]
        g1 = f["procs"]["g1"].proc.pid
        s1 = f["procs"]["s1"].proc.pid
        s2 = f["procs"]["s2"].proc.pid
        have = 0
        for level in levels:
            reg_s = register_range(p2, have, level) if level > have else 0.0
            have = level
            index = catalog_index(p2)
            t0 = time.monotonic()
            fed.wait_for(f"dc1's gateway copy of dc2 at index >= {index}",
                         lambda: copy_of(p1).get("Index", 0) >= index, deadline=300)
            lag = time.monotonic() - t0
            time.sleep(SETTLE_S)  # let transient buffers go before reading RSS (bench only)
            copy = copy_of(p1)
            row = {"instances": level, "register_s": round(reg_s, 1),
                   "copy_caught_up_s": round(lag, 2), "copy_index": copy["Index"],
                   "copy_bytes": copy["Bytes"], "gateway_rss_kib": rss_kib(g1),
                   "dc2_server_rss_kib": rss_kib(s2)}
            rows.append(row)
            bl.log(f"level {level}: copy index {copy['Index']}, {copy['Bytes']} bytes, "
                   f"gateway RSS {row['gateway_rss_kib']} KiB (copy caught up {lag:.2f}s "
                   f"after the last registration)")
        base = rows[0]
        for row in rows[1:]:
            n = row["instances"] - base["instances"]
            row["gateway_rss_per_instance_b"] = round(
                (row["gateway_rss_kib"] - base["gateway_rss_kib"]) * 1024 / n)
            row["copy_bytes_per_instance"] = round((row["copy_bytes"] - base["copy_bytes"]) / n)
            row["dc2_server_rss_per_instance_b"] = round(
                (row["dc2_server_rss_kib"] - base["dc2_server_rss_kib"]) * 1024 / n)
        # dc2 cut off: dc1's server answers from the copy (fetch + decode once, then cached).
        s1_before = rss_kib(s1)
        f["procs"]["s2"].stop()
        bl.log("dc2's server stopped; reading dc2 stale from dc1")
        first = timed_stale_read(p1, have)
        second = timed_stale_read(p1, have)
        time.sleep(SETTLE_S)
        s1_after = rss_kib(s1)
        result["cut_off"] = {
            "instances": have, "first_answer_s": round(first, 3),
            "cached_answer_s": round(second, 3),
            "server_rss_growth_kib": s1_after - s1_before,
            "server_rss_per_instance_b": round((s1_after - s1_before) * 1024 / have) if have else None,
        }
        bl.log(f"cut off: first answer from the copy {first:.3f}s, next {second:.3f}s, "
               f"dc1 server RSS +{s1_after - s1_before} KiB")
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"binaries: {fed.BIN}")
    print(f"{'instances':>9} {'copy bytes':>11} {'B/inst':>7} {'gw RSS KiB':>11} "
          f"{'RSS B/inst':>10} {'caught up s':>11} {'dc2 server RSS B/inst':>21}")
    for r in rows:
        print(f"{r['instances']:>9} {r['copy_bytes']:>11} {r.get('copy_bytes_per_instance', '-'):>7} "
              f"{r['gateway_rss_kib']:>11} {r.get('gateway_rss_per_instance_b', '-'):>10} "
              f"{r['copy_caught_up_s']:>11} {r.get('dc2_server_rss_per_instance_b', '-'):>21}")
    c = result["cut_off"]
    print(f"dc2 cut off with {c['instances']} instances: first stale read from the copy "
          f"{c['first_answer_s']}s, cached {c['cached_answer_s']}s; dc1 server RSS "
          f"+{c['server_rss_growth_kib']} KiB ({c['server_rss_per_instance_b']} B/instance)")


if __name__ == "__main__":
    main()
