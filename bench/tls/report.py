#!/usr/bin/python3
"""bench/tls report: the PNG (gnuplot) and the markdown table from a results file.

    report.py RESULTS.json OUT.png

Left: CDFs of the sequential latencies (new mTLS connection per request on Meridian and on
openssl s_server, one reused mTLS connection, plaintext). Right: `openssl s_time -new`
handshakes/s per server. Prints the table and the summary lines for BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys
import tempfile

SERIES = (
    ("meridian_new_conn", "Meridian: new mTLS connection per request"),
    ("openssl_new_conn", "openssl s_server: new mTLS connection per request"),
    ("meridian_reused", "Meridian: one reused mTLS connection"),
    ("meridian_plaintext", "Meridian: one reused plaintext connection"),
)


def plot(r, png):
    m = r["machine"]
    with tempfile.TemporaryDirectory() as d:
        lines = []
        for i, (key, label) in enumerate(SERIES):
            path = os.path.join(d, f"{key}.dat")
            with open(path, "w") as f:
                for ms, q in r["sequential"][key]["cdf"]:
                    print(ms, q, file=f)
            lines.append(f'"{path}" using 1:2 with lines lw 2 lc {i + 1} title "{label}"')
        bars = os.path.join(d, "bars.dat")
        with open(bars, "w") as f:
            for name, key in (("Meridian (rustls)", "meridian"), ("openssl s_server", "openssl")):
                print(f'"{name}" {r["s_time"][key]["handshakes_per_s"]}', file=f)
        gp = f"""
set terminal pngcairo size 1200,450 font "sans,10" noenhanced
set output "{png}"
set multiplot layout 1,2 title "mutual TLS: handshake vs reused connection \\
({m['nproc']} CPUs, load {m['loadavg_before'].split()[0]} at start)"
set title "sequential GET latency (CDF)"
set logscale x
set xlabel "ms (log scale)"
set ylabel "% of requests"
set grid
set key bottom right
set yrange [0:100]
plot {", ".join(lines)}
unset logscale x
set title "openssl s_time -new: full handshakes per second"
set xlabel ""
set ylabel "handshakes/s"
set yrange [0:*]
set style fill solid 0.85 border -1
set boxwidth 0.6
unset key
plot "{bars}" using 0:2:xtic(1) with boxes lc 1, "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,1
unset multiplot
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)


def table(r):
    m = r["machine"]
    print(f"Command: `{r['command']}` at commit {r['meridian_commit']}; {m['nproc']} CPUs, "
          f"Linux {m['kernel']}; load average at start {m['loadavg_before']}; peer "
          f"{r['openssl']}.\n")
    print("| request | sequential p50 / p90 / p99 (ms) |")
    print("|---|---:|")
    for key, label in SERIES:
        s = r["sequential"][key]
        print(f"| {label} | {s['p50_ms']:.3f} / {s['p90_ms']:.3f} / {s['p99_ms']:.3f} |")
    print()
    print("| `openssl s_time -new` | handshakes/s | server CPU ms per handshake |")
    print("|---|---:|---:|")
    for key, label in (("meridian", "Meridian (rustls + ring)"), ("openssl", "openssl s_server")):
        t = r["s_time"][key]
        print(f"| {label} | {t['handshakes_per_s']:,.0f} | {t['server_cpu_ms_per_handshake']} |")
    print()
    print(f"- A new mTLS connection costs **{r['handshake_cost_p50_ms']} ms** p50 over a reused "
          f"one; on a reused connection TLS adds {r['tls_cost_reused_p50_ms']} ms p50 over "
          f"plaintext.")
    print(f"- Handshakes/s: Meridian/openssl = **{r['handshakes_ratio_vs_openssl']}×**.")


def main():
    r = json.load(open(sys.argv[1]))
    plot(r, sys.argv[2])
    table(r)


if __name__ == "__main__":
    main()
