#!/usr/bin/python3
"""bench/acl driver: requests per second with ACLs on vs off (issue #17: goal >= 0.9x).

On 127.0.0.1, two identical pairs of agents (one durable server -bootstrap-expect 1 and one
client agent joined to it): one pair with ACLs off, one with `acl { enabled = true,
default_policy = "deny" }`. The ACL side gets a policy as an application would have one
(`key_prefix "app/" write`, `service_prefix "" read`, `node_prefix "" read`) and a token
linked to it: the requests run with that token, not the management token (management skips
rule matching). Both sides get the same data: key app/k, 100 services on one node.

Workloads (wrk -t2 -cCONNS -dDURATION, every reply checked), each run ROUNDS times per side,
alternating off, on, off, on ... so drift in the machine's load hits both sides alike:
  kv_get        GET /v1/kv/app/k at the server
  kv_put        PUT /v1/kv/app/w/<n> at the server (raft + fsync per write)
  health        GET /v1/health/service/svc-7?passing at the server
  services      GET /v1/catalog/services at the server (the list ACL-filtered per service)
  kv_get_client GET /v1/kv/app/k at the client agent (forwarded; the client resolves the
                token through the server and caches it for token_ttl)
The figure per side is the median of its rounds; the ratio is on / off.
Writes JSON on stdout; progress on stderr.
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import benchlib as bl  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = os.environ.get("WRK_DURATION", "5s")
CONNS = int(os.environ.get("WRK_CONNS", "32"))
SERVICES = 100
MGMT = "7d4c0a52-3b1e-4f8e-9d6a-2c5b8e1f4a90"
VALUE = "x" * 128
RULES = ('key_prefix "app/" { policy = "write" }\n'
         'service_prefix "" { policy = "read" }\n'
         'node_prefix "" { policy = "read" }\n')


def call(port, method, path, body=None, token=""):
    headers = {"X-Consul-Token": token} if token else {}
    code, _, out = bl.http_call(port, method, path, body=body, headers=headers)
    if code != 200:
        raise RuntimeError(f"{method} {path}: {code} {out[:300]!r}")
    return json.loads(out) if out else None


def leader_ready(port, token=""):
    def cond():
        code, _, body = bl.http_call(port, "GET", "/v1/status/leader")
        return code == 200 and body not in (b'""', b"")
    bl.wait_for(f"a leader on :{port}", cond)
    # a write that must commit: the server accepts writes
    bl.wait_for(f"a KV write on :{port}",
                lambda: bl.http_call(port, "PUT", "/v1/kv/app/ready", body=b"1",
                                     headers={"X-Consul-Token": token} if token else {})[0]
                == 200)


def start_side(tmp, acl):
    tag = "on" if acl else "off"
    server_hcl = client_hcl = None
    if acl:
        server_hcl = (f'acl {{\n  enabled = true\n  default_policy = "deny"\n'
                      f'  tokens {{\n    initial_management = "{MGMT}"\n  }}\n}}\n')
        client_hcl = (f'acl {{\n  enabled = true\n  default_policy = "deny"\n'
                      f'  tokens {{\n    agent = "{MGMT}"\n  }}\n}}\n')
    server = bl.Agent(f"{tag}-server", tmp, True, config_hcl=server_hcl)
    client = bl.Agent(f"{tag}-client", tmp, False, join=server.serf, config_hcl=client_hcl)
    mgmt = MGMT if acl else ""
    leader_ready(server.http, mgmt)
    bl.wait_for(f"{tag}: the client agent in the catalog",
                lambda: any(n["Node"] == client.name
                            for n in call(server.http, "GET", "/v1/catalog/nodes", token=mgmt)))
    call(server.http, "PUT", "/v1/kv/app/k", body=VALUE.encode(), token=mgmt)
    for i in range(SERVICES):
        call(server.http, "PUT", "/v1/catalog/register", token=mgmt, body=json.dumps({
            "Node": "bench-node", "Address": "10.0.0.1",
            "Service": {"ID": f"svc-{i}", "Service": f"svc-{i}", "Port": 8000 + i},
            "Check": {"CheckID": f"svc-{i}-ok", "Name": "ok", "Status": "passing",
                      "ServiceID": f"svc-{i}"}}).encode())
    token = ""
    if acl:
        pol = call(server.http, "PUT", "/v1/acl/policy", token=mgmt,
                   body=json.dumps({"Name": "app", "Rules": RULES}).encode())
        tok = call(server.http, "PUT", "/v1/acl/token", token=mgmt,
                   body=json.dumps({"Description": "bench app",
                                    "Policies": [{"ID": pol["ID"]}]}).encode())
        token = tok["SecretID"]
        # the token works, and only as far as its policy says
        call(server.http, "GET", "/v1/kv/app/k", token=token)
        code, _, _ = bl.http_call(server.http, "GET", "/v1/kv/other",
                                  headers={"X-Consul-Token": token})
        if code != 403:
            raise RuntimeError(f"the app token read /v1/kv/other: {code}, want 403")
    bl.wait_for(f"{tag}: client agent answers KV", lambda: bl.http_call(
        client.http, "GET", "/v1/kv/app/k",
        headers={"X-Consul-Token": token} if token else {})[0] == 200)
    return {"server": server, "client": client, "token": token}


WORKLOADS = [
    # name, on the client?, method, path, expected substring in the body, body
    ("kv_get", False, "GET", "/v1/kv/app/k", '"Key":"app/k"', ""),
    ("kv_put", False, "PUT", "/v1/kv/app/w/{n}", "true", VALUE),
    ("health", False, "GET", "/v1/health/service/svc-7?passing", '"svc-7"', ""),
    ("services", False, "GET", "/v1/catalog/services", '"svc-99"', ""),
    ("kv_get_client", True, "GET", "/v1/kv/app/k", '"Key":"app/k"', ""),
]


def main():
    bl.exit_on_signals()
    tmp = tempfile.mkdtemp(prefix="bench-acl-")
    out = {"rounds": ROUNDS, "duration": DURATION, "conns": CONNS, "services": SERVICES,
           "rules": RULES, "loadavg_start": bl.loadavg(), "workloads": {}}
    with bl.stopping_all():
        bl.log("starting two server + client pairs (ACLs off, ACLs on)")
        sides = {"off": start_side(tmp, False), "on": start_side(tmp, True)}
        for name, on_client, method, path, expect, body in WORKLOADS:
            bl.log(f"{name}: {method} {path}, {ROUNDS} rounds per side")
            runs = {"off": [], "on": []}
            for r in range(ROUNDS):
                for tag in ("off", "on"):
                    s = sides[tag]
                    a = s["client"] if on_client else s["server"]
                    runs[tag].append(bl.wrk(f"{name} {tag} #{r + 1}", a.http, method, path,
                                            expect=expect, body=body, token=s["token"],
                                            conns=CONNS, duration=DURATION,
                                            procs=(s["server"], s["client"])))
            w = {tag: {"rps_median": bl.median([x["rps"] for x in rs]),
                       "p50_ms_median": bl.median([x["p50_ms"] for x in rs]),
                       "p99_ms_median": bl.median([x["p99_ms"] for x in rs]),
                       "runs": rs} for tag, rs in runs.items()}
            w["ratio"] = round(w["on"]["rps_median"] / w["off"]["rps_median"], 3)
            bl.log(f"{name}: off {w['off']['rps_median']:,.0f} req/s, on "
                   f"{w['on']['rps_median']:,.0f} req/s: {w['ratio']:.2f}x")
            out["workloads"][name] = w
    out["loadavg_end"] = bl.loadavg()
    json.dump(out, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
