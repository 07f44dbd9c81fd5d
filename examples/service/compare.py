#!/usr/bin/env python3
"""Runs the example service against each allocator and prints a table.

    bazel run --config=opt //examples/service:compare -- [--seconds S] [--reps N]
        [--clients N] [--handlers N] [--peers mimalloc,jemalloc,tcmalloc] [--json FILE]

The Bazel target passes the glibc build of service.c as glibc=BINARY and
each hakmem variant as NAME=preload:LIBRARY: every allocator, hakmem's and
the peers' (mimalloc, jemalloc, tcmalloc, from Debian), is preloaded into
that same binary, so none gets a PLT or TLS advantage from being linked in.
A NAME=BINARY argument measures another build as it is. Runs are
interleaved, every allocator once per repetition, the order rotated each
repetition (drifting machine load and warm-up hit all alike); each figure is
the median over the repetitions. The environment that changes allocators
(HAKMEM_*, MALLOC_*, MIMALLOC_*, TCMALLOC_*, JE_MALLOC_*, GLIBC_TUNABLES) is
cleared for every run.

Every run must prove which allocator served it: the service reports
hakmem=1 when malloc is hakmem's, and a hakmem build must say 1, glibc and
the peers 0; a mismatch fails the comparison (exit 1).
Python 3 standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

PEERS = {
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
}


def parse_result(text):
    """The key=value fields of the RESULT line, numbers as floats."""
    for line in text.splitlines():
        if line.startswith("RESULT "):
            out = {}
            for item in line.split()[1:]:
                k, _, v = item.partition("=")
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
            return out
    raise ValueError("no RESULT line in:\n" + text)


def run_one(config, args):
    cmd = [config["binary"], "--seconds", str(args.seconds), "--clients", str(args.clients),
           "--handlers", str(args.handlers), "--label", config["name"]]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HAKMEM_", "MALLOC_", "MIMALLOC_", "TCMALLOC_", "JE_MALLOC_", "LD_PRELOAD"))
           and k != "GLIBC_TUNABLES"}
    if config.get("preload"):
        env["LD_PRELOAD"] = config["preload"]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=args.seconds * 10 + 30)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (config["name"], p.returncode, p.stdout, p.stderr))
    r = parse_result(p.stdout)
    if int(r["hakmem"]) != (1 if config["hakmem"] else 0):
        raise RuntimeError("%s: the service reports hakmem=%d, expected %d: the wrong allocator served it"
                           % (config["name"], int(r["hakmem"]), 1 if config["hakmem"] else 0))
    return r


def ratio(a, b):
    return "%.2fx" % (a / b) if b else "-"


def table(rows, reference_names):
    """Markdown: one row per allocator, medians, ratios against the references."""
    by_name = {r["name"]: r for r in rows}
    refs = [n for n in reference_names if n in by_name]
    head = ["allocator", "requests/s"] + ["vs %s" % n for n in refs] + \
           ["p50 us", "p99 us", "p99.9 us", "peak RSS MB"] + ["RSS vs %s" % n for n in refs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], "%.0f" % r["req_per_s"]]
        cells += [ratio(r["req_per_s"], by_name[n]["req_per_s"]) for n in refs]
        cells += ["%.1f" % r["p50_us"], "%.1f" % r["p99_us"], "%.1f" % r["p999_us"],
                  "%.1f" % (r["peak_rss_kb"] / 1024.0)]
        cells += [ratio(r["peak_rss_kb"], by_name[n]["peak_rss_kb"]) for n in refs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="+", metavar="NAME=BINARY", help="service builds (from the Bazel target)")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each run (default 3)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions, interleaved (default 3)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--handlers", type=int, default=4)
    ap.add_argument("--peers", default="mimalloc,jemalloc,tcmalloc",
                    help="comma-separated peers to preload into the glibc build (%s); missing ones are skipped"
                    % ", ".join(sorted(PEERS)))
    ap.add_argument("--json", metavar="FILE", help="also write every run and the medians as JSON")
    args = ap.parse_args(argv)

    configs = []
    glibc = None
    preloads = []
    for spec in args.builds:
        name, sep, binary = spec.partition("=")
        if not sep:
            ap.error("expected NAME=BINARY or NAME=preload:LIBRARY, got %r" % spec)
        if binary.startswith("preload:"):
            preloads.append((name, os.path.abspath(binary[len("preload:"):])))
            continue
        configs.append({"name": name, "binary": os.path.abspath(binary), "hakmem": name.startswith("hakmem")})
        if name == "glibc":
            glibc = configs[-1]
    for name, lib in preloads:
        if glibc is None:
            ap.error("preloaded allocators run in the glibc build, which was not given")
        configs.append({"name": name, "binary": glibc["binary"], "hakmem": True, "preload": lib})
    for peer in [p for p in args.peers.split(",") if p]:
        if peer not in PEERS:
            ap.error("unknown peer %r" % peer)
        if glibc is None:
            ap.error("peers are preloaded into the glibc build, which was not given")
        if os.path.exists(PEERS[peer]):
            configs.append({"name": peer, "binary": glibc["binary"], "hakmem": False, "preload": PEERS[peer]})
        else:
            sys.stderr.write("compare: %s not installed (%s), skipped\n" % (peer, PEERS[peer]))

    runs = {c["name"]: [] for c in configs}
    try:
        for rep in range(args.reps):
            shift = rep % len(configs)
            for c in configs[shift:] + configs[:shift]:
                sys.stderr.write("\rcompare: repetition %d/%d, %-20s" % (rep + 1, args.reps, c["name"]))
                sys.stderr.flush()
                runs[c["name"]].append(run_one(c, args))
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        sys.stderr.write("\ncompare: %s\n" % e)
        return 1
    sys.stderr.write("\n")

    rows = []
    for c in configs:
        rs = runs[c["name"]]
        row = {"name": c["name"]}
        for k in ("req_per_s", "p50_us", "p99_us", "p999_us", "peak_rss_kb", "rss_kb", "requests"):
            row[k] = statistics.median(r[k] for r in rs)
        rows.append(row)
    print("example service: %d clients, %d handlers, 1 writer; %.1f s per run, median of %d interleaved runs; "
          "%d CPUs" % (args.clients, args.handlers, args.seconds, args.reps, os.cpu_count() or 0))
    print()
    print(table(rows, ["glibc", "mimalloc", "jemalloc", "tcmalloc"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": rows, "seconds": args.seconds, "reps": args.reps,
                       "clients": args.clients, "handlers": args.handlers}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
