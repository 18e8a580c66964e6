#!/usr/bin/python3
"""bench/federation beyond report: the PNG (gnuplot) and the markdown table of beyond.py.

    beyond_report.py RESULTS.json OUT.png

Left panel: CDFs of the sequential lookups (local, `?dc=any` answered locally, `?dc=any`
answered by the nearest other datacenter; HTTP and DNS) per setting (log x). Right panel:
KV replication lag p50 / p99 per setting. Prints the table for BENCHMARKS.md on stdout.
"""

import json
import os
import subprocess
import sys
import tempfile

from report import bars

KINDS = (
    ("http_local", "`GET /v1/health/service/web`"),
    ("http_any_local_hit", "`GET /v1/health/service/web?dc=any` (local has it)"),
    ("http_any_nearest", "`GET /v1/health/service/far?dc=any` (only dc2 has it)"),
    ("dns_local", "DNS `web.service.consul`"),
    ("dns_any_nearest", "DNS `far.service.any.consul` (only dc2 has it)"),
)


def plot(r, png):
    m = r["machine"]
    with tempfile.TemporaryDirectory() as d:
        lines = []
        for i, (name, s) in enumerate(r["settings"].items()):
            for j, (kind, _) in enumerate(KINDS):
                path = os.path.join(d, f"{i}-{kind}.dat")
                with open(path, "w") as f:
                    for ms, q in s["lookups"][kind]["cdf"]:
                        print(ms, q, file=f)
                lines.append(f'"{path}" using 1:2 with lines lw 2 dt {i + 1} lc {j + 1} '
                             f'title "{kind}, {name}"')
        lag = os.path.join(d, "lag.dat")
        with open(lag, "w") as f:
            for name, s in r["settings"].items():
                rep = s["replication"]
                print(f'"{name}" {rep.get("lag_p50_ms", 0)} {rep.get("lag_p99_ms", 0)}', file=f)
        gp = f"""
set terminal pngcairo size 1300,480 font "sans,10" noenhanced
set output "{png}"
set multiplot layout 1,2 title "Meridian #16: ?dc=any lookups and KV replication dc1 -> dc2 \\
({m['nproc']} CPUs, load {m['loadavg_before'].split()[0]} at start)"
set title "sequential lookups from dc1's server (CDF)"
set logscale x
set xlabel "ms (log scale)"
set ylabel "% of lookups"
set grid
set key bottom right font ",8"
set yrange [0:100]
plot {", ".join(lines)}
unset logscale x
set title "replication lag at {r['rate']} writes/s for {r['rep_seconds']:g} s"
set xlabel ""
set ylabel "ms from dc1's ack to visible in dc2"
set yrange [0:*]
{bars(lag, "p50", "p99", "top left")}
unset multiplot
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)


def table(r):
    m = r["machine"]
    print(f"Command: `{r['command']}` at commit {r['meridian_commit']}; {m['nproc']} CPUs, Linux "
          f"{m['kernel']}; load average at start {m['loadavg_before']}.\n")
    print("| setting | lookup from dc1's server | p50 / p99 (ms) | p50 added over the local "
          "lookup of the same kind (ms) |")
    print("|---|---|---:|---:|")
    for name, s in r["settings"].items():
        lk = s["lookups"]
        for kind, label in KINDS:
            base = lk["dns_local" if kind.startswith("dns") else "http_local"]["p50_ms"]
            x = lk[kind]
            added = "" if kind.endswith("_local") else f"{x['p50_ms'] - base:+.3f}"
            print(f"| {name} | {label} | {x['p50_ms']:.3f} / {x['p99_ms']:.3f} | {added} |")
    print()
    print("| setting | relay round trip p50 (ms) | writes/s asked → done | lag p50 / p99 / max "
          "(ms) | samples | dc2's tree equal to dc1's after the last write |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in r["settings"].items():
        rep = s["replication"]
        lag = (f"{rep['lag_p50_ms']} / {rep['lag_p99_ms']} / {rep['lag_max_ms']}"
               if "lag_p50_ms" in rep else "no sample")
        print(f"| {name} | {s['relay_echo']['p50_ms']:.2f} | {rep['target_rate']} → "
              f"{rep['achieved_rate']} | {lag} | {rep['samples']}/{rep['watched']} | "
              f"{rep['trees_equal_after_s']} s ({rep['keys']} keys) |")


def main():
    r = json.load(open(sys.argv[1]))
    plot(r, sys.argv[2])
    table(r)


if __name__ == "__main__":
    main()
