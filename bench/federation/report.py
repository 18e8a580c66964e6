#!/usr/bin/python3
"""bench/federation report: the PNG (gnuplot) and the markdown table from a results file.

    report.py RESULTS.json OUT.png

Left panel: CDFs of the sequential `GET /v1/kv/k` latencies, local and ?dc=dc2, per setting
(log x). Right panel: wrk req/s, local and ?dc=dc2, per setting (log y, values on the bars).
Prints the table and the goal lines for BENCHMARKS.md on stdout.
"""

import json
import os
import subprocess
import sys
import tempfile


def bars(data, first, second, key):
    """gnuplot lines for two clustered bars per row of `data` (label, value, value), with
    the values written on the bars."""
    return f"""set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key {key}
plot "{data}" using 2:xtic(1) title "{first}" lc rgb "#2b7bba", \\
     "" using 3 title "{second}" lc rgb "#e6550d", \\
     "" using ($0 - 0.15):2:2 with labels offset 0,0.7 notitle, \\
     "" using ($0 + 0.15):3:3 with labels offset 0,0.7 notitle"""


def plot(r, png):
    names = list(r["settings"])
    m = r["machine"]
    shim = ""
    with tempfile.TemporaryDirectory() as d:
        lines = []
        for i, name in enumerate(names):
            for kind, label, dt in (("kv_local", "local", 2), ("kv_cross", "?dc=dc2", 1)):
                path = os.path.join(d, f"{i}-{kind}.dat")
                with open(path, "w") as f:
                    for ms, q in r["settings"][name]["sequential"][kind]["cdf"]:
                        print(ms, q, file=f)
                lines.append(f'"{path}" using 1:2 with lines lw 2 dt {dt} lc {i + 1} '
                             f'title "{label}, {name}"')
        rps = os.path.join(d, "rps.dat")
        with open(rps, "w") as f:
            for name in names:
                w = r["settings"][name]["wrk"]
                print(f'"{name}" {w["kv_local"]["rps"]:.0f} {w["kv_cross"]["rps"]:.0f}', file=f)
        gp = f"""
set terminal pngcairo size 1200,450 font "sans,10"
set output "{png}"
set multiplot layout 1,2 title "Meridian: GET /v1/kv/k local vs ?dc=dc2 through the gateways{shim} \\
({m['nproc']} CPUs, load {m['loadavg_before'].split()[0]} at start)"
set title "sequential latency, one keep-alive connection (CDF)"
set logscale x
set xlabel "ms (log scale)"
set ylabel "% of requests"
set grid
set key bottom right
set yrange [0:100]
plot {", ".join(lines)}
unset logscale x
set title "throughput, wrk {r['wrk']}"
set xlabel ""
set ylabel "req/s (log scale)"
set logscale y
set yrange [10:*]
{bars(rps, "local", "?dc=dc2", "top right")}
unset multiplot
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)


def table(r):
    m = r["machine"]
    print(f"Command: `{r['command']}` at commit {r['meridian_commit']}; {m['nproc']} CPUs, Linux "
          f"{m['kernel']}; load average at start {m['loadavg_before']}."
          + "\n")
    print("| setting | request | sequential p50 / p90 / p99 (ms) | added p50 / p99 (ms) | "
          f"wrk {r['wrk']}: req/s | p50 / p99 under load (ms) | cross/local req/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rows = (("kv_local", "`GET /v1/kv/k`"), ("kv_cross", "`GET /v1/kv/k?dc=dc2`"),
            ("dns_local", "DNS `web.service.consul`"), ("dns_cross", "DNS `web.service.dc2.consul`"))
    for name, s in r["settings"].items():
        q, w = s["sequential"], s["wrk"]
        for kind, label in rows:
            x = q[kind]
            seq = f"{x['p50_ms']:.3f} / {x['p90_ms']:.3f} / {x['p99_ms']:.2f}"
            fam = kind.split("_")[0]
            added = (f"**{s[fam + '_added_p50_ms']:.3f}** / {s[fam + '_added_p99_ms']:.2f}"
                     if kind.endswith("cross") else "")
            tput = lat = ratio = ""
            if kind in w:
                tput = f"{w[kind]['rps']:,.0f}"
                lat = f"{w[kind]['p50_ms']:.2f} / {w[kind]['p99_ms']:.2f}"
                ratio = f"**{s['throughput_ratio']:.3f}×**" if kind == "kv_cross" else ""
            print(f"| {name} (load {s['loadavg_before'].split()[0]}) | {label} | {seq} | {added} | "
                  f"{tput} | {lat} | {ratio} |")
    print()
    for name, s in r["settings"].items():
        echo = s.get("relay_echo")
        link = (f"; TCP echo through the relay: min {echo['min_ms']} / p50 {echo['p50_ms']} / "
                f"p99 {echo['p99_ms']} ms" if echo else "")
        cpu = s["wrk"]["kv_cross"]["cpu_ms_per_req"]
        beyond = s.get("added_beyond_link_p50_ms")
        measured = (f" (against the link's measured RTT, echo p50 {s['measured_link_rtt_p50_ms']} "
                    f"ms: {beyond:.3f} ms beyond it, **{'met' if beyond <= 1.0 else 'not met'}**)"
                    if echo and s["wan_rtt_nominal_ms"] else "")
        print(f"- {name}: added p50 {s['kv_added_p50_ms']:.3f} ms against a budget of "
              f"{s['goal_budget_ms']:g} ms (1 WAN RTT of {s['wan_rtt_nominal_ms']:g} ms + 1 ms): "
              f"**{'met' if s['goal_met'] else 'not met'}**{measured}; min ?dc=dc2 latency "
              f"{s['sequential']['kv_cross']['min_ms']:.3f} ms{link}; CPU ms per ?dc=dc2 request "
              f"under wrk: " + ", ".join(f"{n} {v:.3f}" for n, v in cpu.items()) + ".")


def main():
    r = json.load(open(sys.argv[1]))
    plot(r, sys.argv[2])
    table(r)


if __name__ == "__main__":
    main()
