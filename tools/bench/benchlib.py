"""Parsing and arithmetic of the hakmem benchmark harness.

Pure functions only (no processes, no files), so tools/bench/test_harness.py
can check them on known inputs. hakbench.py runs the programs; report.py and
charts.py turn what this module computes into tables and pictures.
"""

import math
import re

# The syscalls DESIGN.md's budget counts per operation, and the full set the
# strace pass traces (brk and mremap are reported but not budgeted: glibc grows
# its main arena with brk, and mremap only shows up in realloc of big blocks).
BUDGET_SYSCALLS = ("mmap", "munmap", "madvise", "mprotect")
TRACED_SYSCALLS = BUDGET_SYSCALLS + ("brk", "mremap")

_INT_RE = re.compile(r"^[+-]?\d+$")

# Environment variables that change an allocator's behaviour: hakmem's
# options, glibc's malloc tunables (MALLOC_ARENA_MAX, MALLOC_CHECK_, ... and
# GLIBC_TUNABLES), jemalloc's MALLOC_CONF / JE_MALLOC_CONF, mimalloc's and
# tcmalloc's options, and LD_PRELOAD, which picks the allocator itself. A run
# gets none of them from the caller, only what the harness sets on purpose.
ALLOCATOR_ENV_NAMES = ("GLIBC_TUNABLES", "LD_PRELOAD")
ALLOCATOR_ENV_PREFIXES = ("HAKMEM_", "MALLOC_", "JE_MALLOC_", "_RJEM_MALLOC_", "MIMALLOC_",
                          "TCMALLOC_")


def is_allocator_var(name):
    return name in ALLOCATOR_ENV_NAMES or name.startswith(ALLOCATOR_ENV_PREFIXES)


def without_allocator_vars(environ):
    """A copy of the environment mapping without the allocator variables."""
    return {k: v for k, v in environ.items() if not is_allocator_var(k)}


def parse_value(text):
    """'12' -> 12, '1.5e+08' -> 1.5e8, anything else stays a string."""
    if _INT_RE.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def parse_kv_line(line):
    """'TAG k=v k=v' -> ('TAG', {k: v}); None for lines without a key=value.

    Tokens without '=' after the tag make the line invalid (returns None):
    a program's result line never has them, so such a line is someone else's
    output that happened to start with the tag.
    """
    tokens = line.split()
    if len(tokens) < 2:
        return None
    fields = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            return None
        fields[key] = parse_value(value)
    return tokens[0], fields


def parse_output(text):
    """A workload's stdout -> {'result': dict or None, 'steps': [dict], 'results': n}.

    Every program prints exactly one RESULT line; `results` says how many were
    seen so the caller can reject output with zero or several.
    """
    result, steps, count = None, [], 0
    for line in text.splitlines():
        parsed = parse_kv_line(line)
        if parsed is None:
            continue
        tag, fields = parsed
        if tag == "RESULT":
            result, count = fields, count + 1
        elif tag == "STEP":
            steps.append(fields)
    return {"result": result, "steps": steps, "results": count}


def parse_strace_summary(text):
    """`strace -c` table -> {syscall: calls}. The 'total' row is dropped.

    Rows look like '% time seconds usecs/call calls [errors] syscall', the
    errors column being blank when there were none, so calls is always the
    fourth field and the name the last.
    """
    counts = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) not in (5, 6) or not _INT_RE.match(fields[3]):
            continue
        try:
            float(fields[0])
        except ValueError:
            continue
        name = fields[-1]
        if name != "total":
            counts[name] = counts.get(name, 0) + int(fields[3])
    return counts


def budget_calls(counts):
    """The syscalls DESIGN.md's budget counts, summed."""
    return sum(counts.get(name, 0) for name in BUDGET_SYSCALLS)


def per_op(calls, ops):
    return calls / ops if ops else None


def steady_per_op(short_counts, short_ops, long_counts, long_ops):
    """Budgeted syscalls per op between two runs of the same stream.

    The long run replays the short one and continues, so the difference cancels
    start-up and shutdown and leaves the steady state. Returns (per_op, ops)
    where ops is the number of operations the difference covers; per_op is
    None when that is not positive.
    """
    ops = long_ops - short_ops
    if ops <= 0:
        return None, ops
    calls = budget_calls(long_counts) - budget_calls(short_counts)
    return max(calls, 0) / ops, ops


def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def summarize(values):
    """{'median', 'min', 'max', 'n'} of the numbers given (None when empty)."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


def ratio(value, reference):
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def ranges_overlap(a, b):
    """Whether two runs' [min, max] spreads ({'min', 'max'} summaries) share
    a value: then the medians' order may be chance, and a ratio between them
    is a tie."""
    if None in (a.get("min"), a.get("max"), b.get("min"), b.get("max")):
        return False
    return a["min"] <= b["max"] and b["min"] <= a["max"]


def best_peer(values, peers, higher_is_better):
    """(name, value) of the best peer with a value, or (None, None)."""
    candidates = [(name, values[name]) for name in peers if values.get(name) is not None]
    if not candidates:
        return None, None
    pick = max if higher_is_better else min
    return pick(candidates, key=lambda item: item[1])


def slowdown(by_ws, small, large):
    """How many times slower ws=large runs than ws=small (ops/s ratio)."""
    return ratio(by_ws.get(small), by_ws.get(large))


def fmt_num(value, digits=3):
    """Compact human number: 3 significant digits, no exponent for normal sizes."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(magnitude))))
    return f"{value:.{decimals}f}"


def fmt_ratio(value):
    return "–" if value is None else f"{value:.2f}×"
