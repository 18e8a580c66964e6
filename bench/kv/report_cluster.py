#!/usr/bin/python3
"""Report of `bench/kv/run.sh cluster`: results-cluster.json, kv-cluster.png, markdown.

Usage: report_cluster.py TMP HERE CMDLINE COMMIT LOADAVG BUSY ETCD_VERSION DURATION THREADS
                         MERIDIAN_PEAK_RSS_KIB ETCD_PEAK_RSS_KIB
TMP holds wrk.tsv (system, workload, conns, rps, p50_us, p99_us per line) and
failover-<label>.json (failover.py's output per run).
"""

import datetime
import json
import os
import subprocess
import sys

(tmp, here, cmdline, commit, loadavg, busy, etcd_ver, duration, threads, m_rss,
 e_rss) = sys.argv[1:12]

rows = {}
for line in open(os.path.join(tmp, "wrk.tsv")):
    system, workload, conns, rps, p50, p99 = line.rstrip("\n").split("\t")
    rows[(system, workload, int(conns))] = {
        "rps": float(rps), "p50_us": int(p50), "p99_us": int(p99)}
conns_list = sorted({k[2] for k in rows})

# (label, Meridian workload, etcd workload)
PAIRS = [
    ("writes (KV PUT vs etcd put)", "writes", "writes"),
    ("reads: Meridian default vs etcd linearizable", "reads-default", "reads-linearizable"),
    ("reads: Meridian ?consistent vs etcd linearizable", "reads-consistent",
     "reads-linearizable"),
]

comparisons = []
for c in conns_list:
    for label, mw, ew in PAIRS:
        m, e = rows[("meridian", mw, c)], rows[("etcd", ew, c)]
        comparisons.append({
            "label": label, "conns": c, "meridian_workload": mw, "etcd_workload": ew,
            "meridian": m, "etcd": e, "ratio_rps": round(m["rps"] / e["rps"], 2),
            "goal_met": m["rps"] >= 3 * e["rps"]})

failovers = {}
for label in ("meridian-default", "meridian-m1", "etcd"):
    p = os.path.join(tmp, f"failover-{label}.json")
    if os.path.exists(p):
        failovers[label] = json.load(open(p))

doc = {
    "command": cmdline,
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "machine": {"nproc": os.cpu_count(), "kernel": os.uname().release,
                "loadavg_before": loadavg, "cpu_busy_pct_before": int(busy)},
    "meridian_commit": commit,
    "etcd_version": etcd_ver,
    "wrk": {"threads": int(threads), "connections": conns_list, "duration": duration},
    "comparisons": comparisons,
    "peak_rss_kib_max_member": {"meridian": int(m_rss), "etcd": int(e_rss)},
    "failover": failovers,
}
with open(os.path.join(here, "results-cluster.json"), "w") as f:
    json.dump(doc, f, indent=2)


def ms(us):
    return f"{us / 1000:.2f}"


# --- plot: req/s per workload and conns; failover timeline -----------------------------------
dat = os.path.join(tmp, "plot.dat")
with open(dat, "w") as f:
    for cmp in comparisons:
        short = {"writes": "writes", "reads-default": "default read",
                 "reads-consistent": "consistent read"}[cmp["meridian_workload"]]
        f.write(f'"{short}\\nc={cmp["conns"]} ({cmp["ratio_rps"]}x)" {cmp["meridian"]["rps"]} '
                f'{cmp["etcd"]["rps"]}\n')
tl = os.path.join(tmp, "timeline.dat")
series = [k for k in ("meridian-default", "meridian-m1", "etcd") if k in failovers]
with open(tl, "w") as f:
    for k in series:
        f.write(f"# {k}\n")
        for b, ok, _bad in failovers[k]["timeline"]:
            if -2 <= b <= 25:
                f.write(f"{b} {ok * 10}\n")
        f.write("\n\n")
titles = {"meridian-default": "Meridian (raft_multiplier 5, default)",
          "meridian-m1": "Meridian (raft_multiplier 1)", "etcd": "etcd (defaults)"}
colors = {"meridian-default": "#7fb3e0", "meridian-m1": "#2b7bba", "etcd": "#e0803a"}
plots = ", ".join(
    f'"{tl}" index {i} using 1:2 with steps lw 2 lc rgb "{colors[k]}" title "{titles[k]}"'
    for i, k in enumerate(series))
# FAILOVER=0 runs have no failover timeline: leave that panel empty.
failover_plot = f"""set style data lines
set title "acknowledged writes/s, SIGKILL of the leader at t=0"
set xlabel "seconds since the kill"
set xrange [-2:*]
set key top right
plot {plots}""" if series else ""
gp = f"""
set terminal pngcairo size 1300,450 font "sans,10" noenhanced
set output "{os.path.join(here, 'kv-cluster.png')}"
set multiplot layout 1,2 title "3 Meridian servers vs 3-member etcd {etcd_ver} on one host, {os.cpu_count()} CPUs (load {loadavg.split()[0]} at start)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set yrange [0:*]
set xtics font ",8"
set bmargin 4
set title "req/s at the leader (wrk -t{threads}, {duration} per point)"
plot "{dat}" using 2:xtic(1) title "Meridian" lc rgb "#2b7bba", "" using 3 title "etcd" lc rgb "#e0803a"
{failover_plot}
unset multiplot
"""
subprocess.run(["gnuplot"], input=gp.encode(), check=True)

# --- markdown ------------------------------------------------------------------------------
out = []
out.append(f"Command: `{cmdline}` at commit {commit}; etcd {etcd_ver}; "
           f"{os.cpu_count()} CPUs, Linux {os.uname().release}; load average at start "
           f"{loadavg} (CPUs {busy}% busy); {doc['date']}.\n")
out.append("| conns | workload | Meridian req/s | etcd req/s | Meridian/etcd | "
           "Meridian p50 / p99 (ms) | etcd p50 / p99 (ms) |")
out.append("|---:|---|---:|---:|---:|---:|---:|")
for cmp in comparisons:
    m, e = cmp["meridian"], cmp["etcd"]
    out.append(f"| {cmp['conns']} | {cmp['label']} | {m['rps']:,.0f} | {e['rps']:,.0f} | "
               f"**{cmp['ratio_rps']}×** | {ms(m['p50_us'])} / {ms(m['p99_us'])} | "
               f"{ms(e['p50_us'])} / {ms(e['p99_us'])} |")
out.append(f"| | peak RSS (largest member) | {int(m_rss) / 1024:.0f} MiB | "
           f"{int(e_rss) / 1024:.0f} MiB | {int(m_rss) / int(e_rss):.2f}× | | |")
out.append("")
if failovers:
    out.append("| failover (SIGKILL leader under writes) | first write acked again | "
               "all survivors acked | no ack at all for | writes/s before → after | "
               "failed writes after the kill |")
    out.append("|---|---:|---:|---:|---:|---|")
    for k in series:
        f = failovers[k]
        fail = ", ".join(f"{c}: {n}" for c, n in sorted(f["failed"].items())) or "none"
        out.append(f"| {titles[k]} | {f['recovery_s']} s | {f['all_members_s']} s | "
                   f"{f['gap_s']} s | {f['before_wps']:.0f} → {f['after_wps']:.0f} | {fail} |")
    out.append("")
goal = [c for c in comparisons if not c["goal_met"]]
out.append("Throughput goal (≥ 3× etcd): " + (
    "met on every row." if not goal else
    "not met on " + "; ".join(f"{c['label']} c={c['conns']} ({c['ratio_rps']}×)"
                              for c in goal) + "."))
if "etcd" in failovers:
    for k in ("meridian-default", "meridian-m1"):
        if k in failovers and failovers[k]["recovery_s"] is not None \
                and failovers["etcd"]["recovery_s"] is not None:
            ok = failovers[k]["recovery_s"] <= failovers["etcd"]["recovery_s"]
            out.append(f"Failover goal (no slower than etcd), {titles[k]}: "
                       f"{'met' if ok else 'not met'} ({failovers[k]['recovery_s']} s vs "
                       f"{failovers['etcd']['recovery_s']} s).")
print("\n".join(out))
