#!/usr/bin/env python3
"""Tables of the hakmem benchmark harness: CSV, JSON and Markdown.

Input is the `data` dict hakbench.py assembles (meta, allocators, cases, runs,
summary, syscalls, charts), which is written to a JSON file first; the
Markdown report is always made from that file, so the raw results committed
beside bench/RESULTS.md (bench/RESULTS.json) are exactly what it shows. Every
number shown is a median over repetitions with its spread; every ratio is
computed from medians by benchlib, left blank when either side had a failed
run, and marked a tie when the two sides' spreads overlap.

  tools/bench/report.py [RAW.json [OUT.md]]   rebuild a report from its raw
                                             results (default: bench/RESULTS.json
                                             -> bench/RESULTS.md)
"""

import csv
import json
import os
import shutil
import sys

import benchlib


class Metric:
    def __init__(self, field, title, unit, scale, higher_is_better):
        self.field, self.title, self.unit = field, title, unit
        self.scale, self.higher_is_better = scale, higher_is_better


THROUGHPUTS = {  # --metric: which clock divides the operations
    "wall": Metric("ops_per_s", "Throughput", "M ops/s", 1e-6, True),
    "cpu": Metric("ops_per_cpu_s", "Throughput per CPU second", "M ops per CPU-s", 1e-6, True),
}
PEAK_RSS = Metric("peak_rss_kb", "Peak RSS", "MB", 1 / 1024, False)
LATENCY_FIELDS = [f"{kind}_{p}_ns" for kind in ("malloc", "free") for p in ("p50", "p99", "p999", "max")]
SOAK_FIELDS = [  # (field, header, scale)
    ("ops_per_s", "M ops/s", 1e-6),
    ("peak_rss_kb", "peak RSS MB", 1 / 1024),
    ("rss_drift_pct", "RSS drift %", 1),
    ("tput_drift_pct", "ops/s drift %", 1),
    ("cv_pct", "ops/s CV %", 1),
    ("rss_after_free_kb", "RSS after free MB", 1 / 1024),
]


# ---- helpers over the data dict --------------------------------------------------

def throughput(data):
    """The throughput metric this report ranks by (meta.metric, default wall)."""
    return THROUGHPUTS[data["meta"].get("metric", "wall")]


def names(data):
    return [a["name"] for a in data["allocators"]]


def cases_in(data, group):
    return [c for c in data["cases"] if c["group"] == group]


def peers_of(data, subject):
    """Who a subject is compared with: every allocator that is not hakmem and
    not the subject itself."""
    return [a["name"] for a in data["allocators"] if not a["hakmem"] and a["name"] != subject]


def medians(data, case, field):
    """{allocator: median of field} for one case (None where no good run)."""
    out = {}
    for alloc, s in data["summary"].get(case, {}).items():
        out[alloc] = s["metrics"].get(field, {}).get("median")
    return out


def cell(summary, field, scale, with_spread=True):
    """'median [min–max]' in display units, or the failure it ran into."""
    if summary is None:
        return "–"
    stats = summary["metrics"].get(field)
    if not stats or stats["median"] is None:
        return summary["status"].upper() if summary["failures"] else "–"
    text = benchlib.fmt_num(stats["median"] * scale)
    if with_spread and stats["n"] > 1:
        text += f" [{benchlib.fmt_num(stats['min'] * scale)}–{benchlib.fmt_num(stats['max'] * scale)}]"
    if summary["failures"]:
        text += f" ⚠{summary['failures']}/{summary['runs']} {summary['status']}"
    return text


def clean(data, case, alloc):
    """Whether every run of alloc in case succeeded (and there was one)."""
    s = data["summary"].get(case, {}).get(alloc)
    return bool(s) and not s["failures"] and s["runs"] > 0


def compare(data, case, field, subject, other):
    """(ratio of medians, tie) of subject over other; (None, False) when
    either had a failed run: a figure from part of the runs is not shown."""
    if other is None or not clean(data, case, subject) or not clean(data, case, other):
        return None, False
    a = data["summary"][case][subject]["metrics"].get(field) or {}
    b = data["summary"][case][other]["metrics"].get(field) or {}
    value = benchlib.ratio(a.get("median"), b.get("median"))
    return value, value is not None and benchlib.ranges_overlap(a, b)


def ratio_text(value, tie, peer=None):
    """'1.10×', '1.02× (tie)', '1.10× (tcmalloc)', '1.02× (tie, tcmalloc)' or '–'."""
    if value is None:
        return benchlib.fmt_ratio(None)
    notes = (["tie"] if tie else []) + ([peer] if peer else [])
    return benchlib.fmt_ratio(value) + (f" ({', '.join(notes)})" if notes else "")


def ratio_cells(data, case, metric, subject):
    """The subject's ratio to the reference and to the best peer. The best
    peer is chosen among the peers whose runs all succeeded."""
    values = medians(data, case, metric.field)
    vs_ref = compare(data, case, metric.field, subject, data["meta"]["reference"])
    peers = [p for p in peers_of(data, subject) if clean(data, case, p)]
    best, _ = benchlib.best_peer(values, peers, metric.higher_is_better)
    vs_best = compare(data, case, metric.field, subject, best)
    return [ratio_text(*vs_ref), ratio_text(*vs_best, peer=best)]


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- Markdown ----------------------------------------------------------------------

def metric_table(data, metric):
    subjects = [s for s in data["meta"]["subjects"] if s in names(data)]
    ref = data["meta"]["reference"]
    header = ["workload"] + names(data)
    for s in subjects:
        header += [f"{s} ÷ {ref}", f"{s} ÷ best peer"]
    rows = []
    for case in cases_in(data, "headline"):
        summ = data["summary"].get(case["name"], {})
        row = [case["name"]] + [cell(summ.get(a), metric.field, metric.scale) for a in names(data)]
        for s in subjects:
            row += ratio_cells(data, case["name"], metric, s)
        rows.append(row)
    better = "higher" if metric.higher_is_better else "lower"
    return f"### {metric.title} ({metric.unit}, {better} is better)\n\n" + md_table(header, rows)


def syscall_cell(entry):
    """Budgeted syscalls per op of one strace entry: the steady-state figure
    when there is one, else the whole run's. A steady 0 is shown with the
    resolution the two runs had."""
    if not entry:
        return "–"
    if entry.get("status", "ok") != "ok":
        return entry["status"].upper()
    value = entry.get("steady_per_op", entry.get("per_op"))
    if value is None:
        return "–"
    if value == 0 and entry.get("steady_ops"):
        return f"0 (< {1 / entry['steady_ops']:.0e})"
    return f"{value:.1e}"


def syscall_table(data):
    if not data["syscalls"]:
        return ""
    header = ["workload"] + names(data)
    rows = []
    for case in data["cases"]:
        entries = data["syscalls"].get(case["name"])
        if entries:
            rows.append([case["name"]]
                        + [syscall_cell(entries.get(a)) for a in names(data)])
    return ("### Syscalls per operation (lower is better)\n\n"
            "(mmap + munmap + madvise + mprotect) / ops, counted by `strace -f -c` in a separate "
            "pass, the same way for every allocator. Whole runs include start-up (loading the "
            "program and the allocator); *steady* rows are the difference between two runs of "
            "the same stream of K and 2K soak steps, both without address-space randomization "
            "(`setarch -R`, so both lay out memory alike), which cancels start-up and shutdown "
            "(DESIGN.md's target: under 1e-8).\n\n"
            + md_table(header, rows))


def sweep_table(data):
    cases = sorted(cases_in(data, "sweep"), key=lambda c: c["x"])
    if not cases:
        return ""
    header = ["ws"] + names(data)
    field = throughput(data).field
    rows = [[str(c["x"])] + [cell(data["summary"][c["name"]].get(a), field, 1e-6, False)
                             for a in names(data)] for c in cases]
    by_ws = {a: {c["x"]: medians(data, c["name"], field).get(a) for c in cases} for a in names(data)}
    if all(any(c["x"] == w for c in cases) for w in (256, 8192)):
        rows.append(["**slow-down 256 → 8192**"]
                    + [benchlib.fmt_ratio(benchlib.slowdown(by_ws[a], 256, 8192)) for a in names(data)])
    return f"### random_mixed working-set sweep ({throughput(data).unit}, median)\n\n" + md_table(header, rows)


def soak_table(data):
    out = []
    for case in cases_in(data, "soak"):
        header = ["allocator"] + [h for _, h, _ in SOAK_FIELDS]
        rows = [[a] + [cell(data["summary"][case["name"]].get(a), f, scale, False) for f, _, scale in SOAK_FIELDS]
                for a in names(data)]
        out.append(f"### Soak: {case['name']} ({' '.join(case['args'][:1])} s)\n\n" + md_table(header, rows))
    return "\n\n".join(out)


def latency_table(data):
    out = []
    for case in cases_in(data, "latency"):
        header = ["allocator"] + [f.replace("_ns", "").replace("p999", "p99.9").replace("_", " ")
                                  for f in LATENCY_FIELDS]
        rows = [[a] + [cell(data["summary"][case["name"]].get(a), f, 1, False) for f in LATENCY_FIELDS]
                for a in names(data)]
        res = [data["summary"][case["name"]][a]["metrics"].get("resolution_ns", {}).get("median")
               for a in names(data)]
        res = [r for r in res if r]
        note = (f" The cycle counter advances in steps of {res[0]:.0f} ns on this machine, which "
                "bounds how finely p50 is resolved." if res and res[0] > 2 else "")
        out.append(f"### Latency per operation: {case['name']} (ns, median of runs, lower is better)\n\n"
                   "Cycle-counter window around each single malloc or free (plus the RNG draw and slot "
                   f"load, the same for every allocator).{note}\n\n" + md_table(header, rows))
    return "\n\n".join(out)


def failures_section(data):
    """One row per (workload, allocator) that failed at least once."""
    failed = {}
    for r in data["runs"]:
        key = (r["case"], r["alloc"])
        total, statuses = failed.get(key, (0, []))
        failed[key] = (total + 1, statuses + ([r["status"]] if r["status"] != "ok" else []))
    rows = []
    for (case, alloc), (total, statuses) in failed.items():
        strace = data["syscalls"].get(case, {}).get(alloc, {}).get("status", "ok")
        if statuses or strace != "ok":
            kinds = sorted(set(statuses))
            rows.append([case, alloc, f"{len(statuses)}/{total}", ", ".join(kinds) or "–",
                         strace if strace != "ok" else "–"])
    if not rows:
        return ""
    return ("### Failed runs\n\nLogs of each failed run are in `logs/` next to `results.md`.\n\n"
            + md_table(["workload", "allocator", "timed runs failed", "how", "strace run"], rows))


def markdown(data, chart_links):
    """The report. chart_links: the charts' paths relative to the report."""
    m = data["meta"]
    allocs = "\n".join(f"- **{a['name']}**: `{a['lib'] or '(no preload: glibc malloc)'}`"
                       + (f" ({a['version']})" if a.get("version") else "") for a in data["allocators"])
    subjects = m["subjects"]
    ratio_note = (f"Ratio columns divide {', '.join(subjects)}'s median by {m['reference']}'s and by "
                  "the best peer's (glibc, mimalloc, jemalloc, tcmalloc; named in brackets); for "
                  "throughput above 1.00× is better, for RSS below. *tie*: the two allocators' "
                  "[min–max] ranges overlap, so their order may be chance. A ratio is blank (–) "
                  "where either side had a failed run (see Failed runs)."
                  if subjects else "No hakmem library was found, so there are no ratio columns "
                                   "(build //alloc:libhakmem.so, or pick one with --subject).")
    clock = ("Throughput is operations per wall-clock second of the timed part."
             if m.get("metric", "wall") == "wall" else
             "Throughput is operations per CPU second of the process (all threads, user + system) "
             "in the timed part (--metric cpu): time spent preempted by other work does not count, "
             "so single-thread results stay comparable on a busy machine; for multithreaded "
             "workloads it measures work per CPU, not speed.")
    parts = [
        "# hakmem benchmark results",
        f"{m['date']} · {m['profile']} mode · {m['reps']} repetitions, interleaved round-robin · "
        f"hakmem {m.get('git') or '?'}\n\n"
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}, {m['glibc']}. "
        + (f"Single-thread runs pinned to CPU {m['pinned_cpu']}. " if m.get("pinned_cpu") is not None else "")
        + f"Run time {m['duration_s']:.0f} s; 1-minute load average {benchlib.fmt_num(m.get('load_before'))} "
        f"before, {benchlib.fmt_num(m.get('load_after'))} after (other work on the machine widens the "
        "spreads).",
        "Allocators (chosen with LD_PRELOAD; the benchmark binaries are the same for all):\n" + allocs
        + "\n\nEvery run's environment is the caller's without the variables that change an allocator "
        "(`HAKMEM_*`, `MALLOC_*`, `JE_MALLOC_*`, `MIMALLOC_*`, `TCMALLOC_*`, `GLIBC_TUNABLES`, "
        "`LD_PRELOAD`), plus the allocator's LD_PRELOAD; what each run got is in the raw results"
        + (f" (cleared from the caller: {', '.join(f'`{k}`' for k in m['env_cleared'])})"
           if m.get("env_cleared") else "") + ".",
        f"Cells: median [min–max] over repetitions. {clock} {ratio_note} "
        "Workload definitions: `bench/*.c`, `workloads/` and ../shared/DESIGN.md.",
        metric_table(data, throughput(data)),
        metric_table(data, PEAK_RSS),
        syscall_table(data),
        sweep_table(data),
        soak_table(data),
        latency_table(data),
        failures_section(data),
    ]
    if chart_links:
        parts.append("### Charts\n\n" + "\n".join(f"![{os.path.basename(link)}]({link})" for link in chart_links))
    return "\n\n".join(p for p in parts if p) + "\n"


# ---- files ---------------------------------------------------------------------------

def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def chart_links(chart_paths):
    """The charts as the report links them: charts/<name>, both in a results
    directory and in bench/ (publish copies them there)."""
    return ["charts/" + os.path.basename(p) for p in chart_paths if p]


def write_raw(data, path):
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def build(raw_path, md_path):
    """Writes the Markdown report of a raw results file; returns md_path."""
    with open(raw_path) as f:
        data = json.load(f)
    with open(md_path, "w") as f:
        f.write(markdown(data, data.get("charts", [])))
    return md_path


def write_all(data, out_dir):
    """runs.csv (one row per run), summary.csv (one row per case, allocator and
    field), syscalls.csv, results.json (everything) and results.md, made from
    results.json. Returns the Markdown path."""
    fields = sorted({k for r in data["runs"] for k in r.get("result", {})})
    write_csv(os.path.join(out_dir, "runs.csv"),
              ["rep", "case", "allocator", "status", "wall_s", "env"] + fields,
              [[r.get("rep"), r["case"], r["alloc"], r["status"], round(r.get("wall_s", 0), 3),
                " ".join(f"{k}={v}" for k, v in sorted(r.get("env", {}).items()))]
               + [r.get("result", {}).get(k, "") for k in fields] for r in data["runs"]])
    rows = []
    for case, per in data["summary"].items():
        for alloc, s in per.items():
            for field, st in s["metrics"].items():
                rows.append([case, alloc, field, st["median"], st["min"], st["max"], st["n"], s["failures"]])
    write_csv(os.path.join(out_dir, "summary.csv"),
              ["case", "allocator", "field", "median", "min", "max", "n", "failures"], rows)
    rows = []
    for case, per in data["syscalls"].items():
        for alloc, e in per.items():
            counts = e.get("counts") or {}
            rows.append([case, alloc, e.get("status"), e.get("ops"), e.get("per_op"), e.get("all_per_op"),
                         e.get("steady_per_op"), e.get("steady_ops")]
                        + [counts.get(n, 0) for n in benchlib.TRACED_SYSCALLS])
    write_csv(os.path.join(out_dir, "syscalls.csv"),
              ["case", "allocator", "status", "ops", "budget_per_op", "all_per_op", "steady_per_op",
               "steady_ops"] + list(benchlib.TRACED_SYSCALLS), rows)
    raw = os.path.join(out_dir, "results.json")
    write_raw(data, raw)
    return build(raw, os.path.join(out_dir, "results.md"))


def publish(data, chart_paths, bench_dir):
    """The committed report: bench/RESULTS.json (the raw results), and
    bench/RESULTS.md made from it, with its charts in bench/charts/."""
    chart_dir = os.path.join(bench_dir, "charts")
    os.makedirs(chart_dir, exist_ok=True)
    for path in chart_paths:
        shutil.copy2(path, os.path.join(chart_dir, os.path.basename(path)))
    raw = os.path.join(bench_dir, "RESULTS.json")
    write_raw(dict(data, charts=chart_links(chart_paths)), raw)
    return build(raw, os.path.join(bench_dir, "RESULTS.md"))


def main(argv):
    bench_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
    raw = argv[0] if argv else os.path.join(bench_dir, "RESULTS.json")
    md = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(raw), "RESULTS.md")
    print(build(raw, md))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
