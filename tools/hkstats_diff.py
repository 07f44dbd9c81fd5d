#!/usr/bin/env python3
"""Diff two hakmem statistics reports.

    hkstats_diff.py BEFORE AFTER [--pid N] [--all] [--json]

Each file holds reports in either form hakmem writes (alloc/core/stats.c):
the readable one (HAKMEM_STATS=1, hk_stats_print, malloc_stats) or JSON lines
(HAKMEM_STATS=json, hk_stats_print_json). A file may hold several reports
(HAKMEM_STATS_FILE appends one per process and exit): the last one is used,
or the last one of process N with --pid.

Prints every field that changed (all of them with --all) with both values,
the difference and the relative change, then the size classes whose figures
changed. --json prints the same as one JSON object instead.
Python 3 standard library only.
"""
import argparse
import json
import re
import sys

TEXT_HEADER = re.compile(r"^hakmem: statistics \((?P<version>[^,]+), variant (?P<variant>[^,)]+)(?:, pid (?P<pid>\d+))?\)")
TEXT_FIELD = re.compile(r"^hakmem:\s+(?P<name>[a-z_]+) (?P<value>\d+)(?: \(.*\))?$")
TEXT_CLASS = re.compile(r"^hakmem:\s+class\s+(?P<cls>\d+)\s+(?P<size>\d+)\s+(?P<in_use>\d+)\s+\d+\s+(?P<free>\d+)\s+(?P<spans>\d+)$")
CLASS_FIELDS = ("blocks_in_use", "blocks_free", "spans")


class ReportError(ValueError):
    pass


def parse_reports(text, source="report"):
    """Every report in text, in order: dicts with "fields" (name -> int),
    "classes" (block size -> {blocks_in_use, blocks_free, spans}) and the
    identifying "version", "variant" and "pid" (None when unknown)."""
    reports = []
    current = None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ReportError("%s:%d: bad JSON report: %s" % (source, n, e))
            if "hakmem" not in obj:
                continue
            classes = {}
            for c in obj.get("classes", []):
                classes[int(c["block_size"])] = {k: int(c[k]) for k in CLASS_FIELDS}
            fields = {k: int(v) for k, v in obj.items() if isinstance(v, int) and k != "pid"}
            reports.append({"version": obj["hakmem"], "variant": obj.get("variant"), "pid": obj.get("pid"),
                            "fields": fields, "classes": classes})
            current = None
            continue
        m = TEXT_HEADER.match(line)
        if m:
            current = {"version": m.group("version"), "variant": m.group("variant"),
                       "pid": int(m.group("pid")) if m.group("pid") else None, "fields": {}, "classes": {}}
            reports.append(current)
            continue
        if current is None:
            continue  # other output around the report
        m = TEXT_CLASS.match(line)
        if m:
            current["classes"][int(m.group("size"))] = {
                "blocks_in_use": int(m.group("in_use")), "blocks_free": int(m.group("free")),
                "spans": int(m.group("spans"))}
            continue
        m = TEXT_FIELD.match(line)
        if m:
            current["fields"][m.group("name")] = int(m.group("value"))
    return reports


def pick(reports, pid, source):
    if pid is not None:
        reports = [r for r in reports if r["pid"] == pid]
    if not reports:
        raise ReportError("%s: no hakmem statistics report%s" % (source, "" if pid is None else " of pid %d" % pid))
    return reports[-1]


def human(v):
    sign = "-" if v < 0 else ""
    v = abs(v)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return "%s%.1f %s" % (sign, v, unit) if unit != "B" else "%s%d B" % (sign, v)
        v /= 1024.0


def relative(before, after):
    if before == after:
        return "="
    if before == 0:
        return "new"
    return "%+.1f%%" % (100.0 * (after - before) / before)


def diff(before, after, show_all=False):
    """The differences as plain data: fields and classes, in report order."""
    names = list(before["fields"]) + [k for k in after["fields"] if k not in before["fields"]]
    fields = []
    for name in names:
        b, a = before["fields"].get(name, 0), after["fields"].get(name, 0)
        if show_all or a != b:
            fields.append({"name": name, "before": b, "after": a, "delta": a - b})
    classes = []
    zero = {k: 0 for k in CLASS_FIELDS}
    for size in sorted(set(before["classes"]) | set(after["classes"])):
        b, a = before["classes"].get(size, zero), after["classes"].get(size, zero)
        if show_all or a != b:
            row = {"block_size": size}
            for k in CLASS_FIELDS:
                row[k] = {"before": b[k], "after": a[k], "delta": a[k] - b[k]}
            classes.append(row)
    return {"fields": fields, "classes": classes}


def format_text(d, before, after):
    out = ["hakmem statistics: %s (%s, pid %s) -> %s (%s, pid %s)" % (
        before["version"], before["variant"], before["pid"], after["version"], after["variant"], after["pid"])]
    if not d["fields"] and not d["classes"]:
        out.append("no differences")
        return "\n".join(out) + "\n"
    width = max([len(f["name"]) for f in d["fields"]] + [5])
    out.append("%-*s %16s %16s %16s %8s" % (width, "field", "before", "after", "delta", "change"))
    for f in d["fields"]:
        line = "%-*s %16d %16d %+16d %8s" % (width, f["name"], f["before"], f["after"], f["delta"],
                                           relative(f["before"], f["after"]))
        if f["name"].startswith("bytes_") or f["name"] == "large_bytes":
            line += "  (%s)" % human(f["delta"])
        out.append(line)
    if d["classes"]:
        out.append("")
        out.append("%10s %22s %22s %16s" % ("block size", "blocks in use", "blocks free", "spans"))
        for c in d["classes"]:
            cells = ["%10d" % c["block_size"]]
            for k, w in (("blocks_in_use", 22), ("blocks_free", 22), ("spans", 16)):
                v = c[k]
                cells.append(("%d->%d (%+d)" % (v["before"], v["after"], v["delta"])).rjust(w))
            out.append(" ".join(cells))
    return "\n".join(out) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--pid", type=int, help="use the last report of this process in each file")
    ap.add_argument("--all", action="store_true", help="show unchanged fields and classes too")
    ap.add_argument("--json", action="store_true", help="print the diff as JSON")
    args = ap.parse_args(argv)
    try:
        picked = []
        for path in (args.before, args.after):
            with open(path) as f:
                picked.append(pick(parse_reports(f.read(), path), args.pid, path))
    except (OSError, ReportError) as e:
        sys.stderr.write("hkstats_diff: %s\n" % e)
        return 2
    d = diff(picked[0], picked[1], args.all)
    if args.json:
        json.dump(d, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(d, picked[0], picked[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
