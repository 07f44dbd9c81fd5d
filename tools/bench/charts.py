"""Charts of the hakmem benchmark harness, drawn by gnuplot as SVG.

Each chart is a tab-separated .dat file plus the .gp script that plots it,
both kept next to the .svg so a chart can be restyled and redrawn by hand
(`gnuplot ratios.gp`) without rerunning anything. Missing values (a run that
crashed) are written as '?', which gnuplot skips.
"""

import os
import shutil
import subprocess
import sys

import report

TERMINAL = 'set terminal svg size {w},{h} dynamic noenhanced font "sans,11" background rgb "white"'

# One colour per allocator in every chart; hakmem's variants in warm tones.
COLORS = {
    "hakmem": "#d62728", "hakmem_speed": "#ff7f0e", "hakmem_lean": "#e377c2",
    "glibc": "#7f7f7f", "mimalloc": "#1f77b4", "jemalloc": "#2ca02c", "tcmalloc": "#9467bd",
}
EXTRA_COLORS = ["#8c564b", "#17becf", "#bcbd22"]


def _color(name, allocs):
    if name in COLORS:
        return COLORS[name]
    unknown = [a for a in allocs if a not in COLORS]
    return EXTRA_COLORS[unknown.index(name) % len(EXTRA_COLORS)]


def _columns(dat, allocs, using, style=""):
    """One plot clause per allocator column (column 2 onwards) of a .dat file."""
    return ", \\\n  ".join(
        f"'{dat}' using {using.format(col=i + 2)} title '{a}' {style} lc rgb '{_color(a, allocs)}'"
        for i, a in enumerate(allocs))


def _fmt(value):
    return "?" if value is None else f"{value:.6g}"


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _table(path, header, rows):
    _write(path, "\t".join(header) + "\n" + "".join("\t".join(row) + "\n" for row in rows))


def _plot(out_dir, name, size, script):
    """Writes name.gp (size: (width, height) in pixels) and runs it; returns
    the SVG path or None on failure."""
    gp = os.path.join(out_dir, name + ".gp")
    svg = name + ".svg"
    # Every .dat starts with a header row; without columnheaders a histogram
    # would give it a (blank) slot of its own.
    _write(gp, TERMINAL.format(w=size[0], h=size[1]) + f"\nset output '{svg}'\n"
           + "set datafile columnheaders\n" + script)
    proc = subprocess.run(["gnuplot", name + ".gp"], cwd=out_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"charts: gnuplot failed on {gp}:\n{proc.stderr}", file=sys.stderr)
        return None
    return os.path.join(out_dir, svg)


def ratio_chart(data, out_dir):
    """Clustered bars: every allocator's throughput ÷ mimalloc's, per workload."""
    ref = data["meta"]["reference"]
    cases = report.cases_in(data, "headline")
    allocs = report.names(data)
    if not cases or ref not in allocs:
        return None
    rows = []
    for case in cases:
        field = report.throughput(data).field
        rows.append([case["name"]] + [_fmt(report.compare(data, case["name"], field, a, ref)[0])
                                      for a in allocs])
    _table(os.path.join(out_dir, "ratios.dat"), ["workload"] + allocs, rows)
    width = max(900, 110 * len(cases))
    return _plot(out_dir, "ratios", (width, 480), f"""set datafile separator "\\t"
set datafile missing "?"
set title "{report.throughput(data).title} relative to {ref} (medians; above 1 = better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "ops/s ÷ {ref}"
set yrange [0:*]
set grid ytics
set xtics rotate by -30 scale 0
set xrange [-0.6:{len(cases) - 0.4}]
set key outside right top
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb "black"
plot {_columns('ratios.dat', allocs, '{col}:xtic(1)')}
""")


def sweep_chart(data, out_dir):
    cases = sorted(report.cases_in(data, "sweep"), key=lambda c: c["x"])
    allocs = report.names(data)
    if len(cases) < 2:
        return None
    rows = []
    for case in cases:
        values = report.medians(data, case["name"], report.throughput(data).field)
        rows.append([str(case["x"])] + [_fmt(values.get(a) and values[a] / 1e6) for a in allocs])
    _table(os.path.join(out_dir, "sweep.dat"), ["ws"] + allocs, rows)
    return _plot(out_dir, "sweep", (900, 520), f"""set datafile separator "\\t"
set datafile missing "?"
set title "random_mixed: {report.throughput(data).title.lower()} vs working set (median)"
set logscale x 2
set format x "%.0f"
set xlabel "ws (slots; about ws/2 blocks live)"
set ylabel "{report.throughput(data).unit}"
set yrange [0:*]
set grid
set key outside right top
plot {_columns('sweep.dat', allocs, '1:{col}', 'with linespoints lw 2 pt 7')}
""")


def soak_charts(data, out_dir):
    """RSS and ops/s over time, one line per allocator (first good run)."""
    out = []
    for case in report.cases_in(data, "soak"):
        series = []
        for a in report.names(data):
            steps = data["summary"][case["name"]].get(a, {}).get("steps") or []
            if steps:
                name = f"soak_{a}.dat"
                _table(os.path.join(out_dir, name), ["t_s", "rss_mb", "mops"],
                       [[_fmt(s.get("t_s")), _fmt(s.get("rss_kb", 0) / 1024), _fmt(s.get("ops_per_s", 0) / 1e6)]
                        for s in steps])
                series.append((a, name))
        if not series:
            continue
        for column, what, ylabel in ((2, "rss", "RSS (MB)"), (3, "ops", "M ops/s per step")):
            names = [a for a, _ in series]
            plots = ", ".join(f"'{f}' using 1:{column} title '{a}' with lines lw 2 lc rgb '{_color(a, names)}'"
                              for a, f in series)
            path = _plot(out_dir, f"soak_{what}", (900, 480), f"""set datafile separator "\\t"
set datafile missing "?"
set title "{case['name']}: {ylabel} over time"
set xlabel "time (s)"
set ylabel "{ylabel}"
set yrange [0:*]
set grid
set key outside right top
plot {plots}
""")
            if path:
                out.append(path)
    return out


def latency_chart(data, out_dir):
    """Two panels (malloc, free): bars per allocator at p50, p99, p99.9, max; log scale."""
    cases = report.cases_in(data, "latency")
    if not cases:
        return None
    case = cases[0]["name"]
    allocs = report.names(data)
    for kind in ("malloc", "free"):
        rows = []
        for p, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max")):
            values = report.medians(data, case, f"{kind}_{p}_ns")
            # A 0 ns bucket (below the counter's step) cannot sit on a log axis.
            rows.append([label] + [_fmt(values.get(a) if values.get(a) else None) for a in allocs])
        _table(os.path.join(out_dir, f"latency_{kind}.dat"), ["percentile"] + allocs, rows)
    panel = """set title "{kind}"
plot {plots}
"""
    return _plot(out_dir, "latency", (1100, 480), f"""set datafile separator "\\t"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y 10
set xrange [-0.6:3.6]
set ylabel "ns per operation"
set grid ytics
set key inside left top
set multiplot layout 1,2 title "{case}: per-operation latency (median of runs)"
{"".join(panel.format(kind=k, plots=_columns(f"latency_{k}.dat", allocs, "{col}:xtic(1)"))
         for k in ("malloc", "free"))}unset multiplot
""")


def write_all(data, out_dir):
    """Draws every chart the data has material for; returns the SVG paths."""
    if not shutil.which("gnuplot"):
        print("charts: gnuplot not found, no charts (bash tools/setup.sh installs gnuplot-nox)",
              file=sys.stderr)
        return []
    os.makedirs(out_dir, exist_ok=True)
    paths = [ratio_chart(data, out_dir), sweep_chart(data, out_dir)]
    paths += soak_charts(data, out_dir)
    paths.append(latency_chart(data, out_dir))
    return [p for p in paths if p]
