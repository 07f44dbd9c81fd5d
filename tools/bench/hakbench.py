#!/usr/bin/env python3
"""hakmem's head-to-head benchmark harness.

Runs every workload of bench/ against every allocator (hakmem's variants that
were built, glibc, and Debian's mimalloc, jemalloc and tcmalloc through
LD_PRELOAD, every one the same way), interleaved round-robin over N
repetitions with the allocator order rotated each time, then counts syscalls
the same way for every allocator in a separate strace pass, and writes
CSV + JSON + a Markdown table (made from the JSON) + gnuplot charts under
bench/results/<stamp>/ (bench/results/latest points at the newest);
--publish also writes bench/RESULTS.json and bench/RESULTS.md made from it.

Honest figures: no run sees the caller's allocator variables (HAKMEM_*,
MALLOC_*, MIMALLOC_*, TCMALLOC_*, JE_MALLOC_*, GLIBC_TUNABLES, LD_PRELOAD),
only the LD_PRELOAD the harness sets, which each run records; a ratio is
blank where either side had a failed run and marked "(tie)" where the two
[min-max] ranges overlap; any failed run makes the harness exit 1.

  tools/bench/hakbench.py            quick mode (a few minutes on 2 cores)
  tools/bench/hakbench.py --full     everything: fixed sizes, ws sweep, soak,
                                     latency, prodcons, realloc, large
  tools/bench/hakbench.py --help     all options

Usually started by tools/bench.sh, which builds the binaries first.
Python 3 standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import charts  # noqa: E402
import report  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEBIAN_LIBDIR = "/usr/lib/x86_64-linux-gnu"

# Peers in the order tables list them. lib None = no preload (glibc's malloc).
PEERS = [
    ("glibc", None, "libc6"),
    ("mimalloc", DEBIAN_LIBDIR + "/libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", DEBIAN_LIBDIR + "/libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", DEBIAN_LIBDIR + "/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
]
# hakmem's variants: //alloc:lib<name>.so, included when built.
HAKMEM_VARIANTS = ["hakmem", "hakmem_speed", "hakmem_lean"]
# hakmem's default build with options set, measured only when named in
# --allocators (what an option costs, in the same interleaved run as the
# rest): name, the variant it runs, its options.
HAKMEM_CONFIGURED = [
    ("hakmem_prof", "hakmem", {"HAKMEM_PROF_SAMPLE": "524288"}),     # the heap profiler at its usual rate
    ("hakmem_counting", "hakmem", {"HAKMEM_THREAD_STATS": "1"}),     # per-thread byte counters
]
REFERENCE = "mimalloc"  # the ratio column every table carries


class Allocator:
    def __init__(self, name, lib, hakmem, package=None, options=None):
        self.name, self.lib, self.hakmem, self.package = name, lib, hakmem, package
        self.options = dict(options or {})  # HAKMEM_* settings of a configured hakmem

    def as_dict(self):
        d = {"name": self.name, "lib": self.lib, "hakmem": self.hakmem, "version": self.version()}
        if self.options:
            d["options"] = self.options
        return d

    def run_env(self):
        """What this allocator puts in a run's environment, the one way every
        allocator (hakmem's variants and the peers alike) gets there: its
        library in LD_PRELOAD (and a configured hakmem's options); nothing for
        glibc, which is already there."""
        env = {"LD_PRELOAD": self.lib} if self.lib else {}
        env.update(self.options)
        return env

    def version(self):
        if self.package:
            try:
                out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", self.package],
                                     capture_output=True, text=True, timeout=10)
                return out.stdout.strip() or None
            except (OSError, subprocess.SubprocessError):
                return None
        if self.lib and os.path.exists(self.lib):
            stamp = datetime.datetime.fromtimestamp(os.path.getmtime(self.lib))
            return "built " + stamp.strftime("%Y-%m-%d %H:%M")
        return None


class Case:
    """One workload invocation. `group` decides which table and chart it feeds:
    headline (throughput table, ratio chart), sweep (ws line chart), soak,
    latency."""

    def __init__(self, name, binary, args, group="headline", threads=1, timeout=60.0,
                 reps=None, strace="whole", x=None, steady_args=None):
        self.name = name
        self.binary = binary
        self.args = [str(a) for a in args]
        self.group = group
        self.threads = threads    # > 1: not pinned to one CPU
        self.timeout = timeout    # seconds per run (x3 under strace)
        self.reps = reps          # None: the profile's reps; 0: strace pass only
        self.strace = strace      # "whole", "steady" (needs steady_args) or None
        self.x = x                # sweep position (ws)
        self.steady_args = steady_args  # (short args, long args) replaying one stream

    def rep_count(self, default):
        return default if self.reps is None else self.reps

    def as_dict(self):
        return {"name": self.name, "binary": self.binary, "args": self.args, "group": self.group,
                "threads": self.threads, "x": self.x, "strace": self.strace}


# ---- what each mode runs -------------------------------------------------------

def random_mixed(ws, iterations, lo=16, hi=1024, group="headline", name=None, strace="whole"):
    if name is None:
        name = f"fixed {lo} B" if lo == hi else f"random_mixed ws={ws}"
    return Case(name, "random_mixed", [iterations, ws, 1, lo, hi], group=group, x=ws, strace=strace)


def larson(threads, seconds):
    return Case(f"larson {threads}T", "larson", [threads, seconds, 8, 128, 1024, 100, 1],
                threads=threads, timeout=seconds + 60)


def soak(seconds, step_iterations, ws):
    return Case(f"soak ws={ws}", "soak", [seconds, step_iterations, ws], group="soak", reps=1,
                strace=None, timeout=seconds + 120)


def steady_syscalls(ws, step_iterations, steps):
    """Strace-only case: soak's stream replayed for K and 2K steps (no time
    limit); the difference of the two counts is the steady state, start-up and
    shutdown cancel. K * step_iterations operations resolve 1 / that."""
    args = ["1e9", step_iterations, ws, 1, 16, 1024]
    return Case(f"random_mixed ws={ws} steady", "soak", args, group="syscalls", reps=0, strace="steady",
                timeout=120, steady_args=(args + [steps], args + [2 * steps]))


def plan(profile):
    """(cases, default reps) of a profile. Case names are unique: results are
    keyed by them."""
    cases, reps = _plan(profile)
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), f"duplicate case names in {profile}"
    return cases, reps


def _plan(profile):
    if profile == "smoke":  # the harness's own end-to-end test: seconds, not minutes
        return [
            random_mixed(400, 200000),
            random_mixed(64, 100000, 64, 64),
            larson(2, 0.1),
            Case("prodcons 1x2T", "prodcons", [1, 20000], threads=2),
            Case("realloc", "realloc_heavy", [50000]),
            Case("large 64K-8M", "large", [200, 4, 1, 65536, 8388608, 0]),
            Case("large 5M-25M", "large", [40, 4, 1, 5 << 20, 25 << 20, 0]),
            Case("realloc 1M-16M", "realloc_large", [1, 1 << 20, 16 << 20]),
            Case("idle 64M", "idle", [64, 1024, 1, 300, 50], strace=None),
            random_mixed(64, 50000, group="sweep", name="sweep ws=64", strace=None),
            random_mixed(1024, 50000, group="sweep", name="sweep ws=1024", strace=None),
            soak(0.3, 50000, 256),
            steady_syscalls(256, 50000, 4),
            Case("latency ws=400", "latency", [50000, 400], group="latency", strace=None),
        ], 2
    if profile == "quick":
        iterations = 20_000_000  # DESIGN.md's standard points
        return [
            random_mixed(400, iterations),
            random_mixed(8192, iterations),
            random_mixed(400, iterations, 64, 64),
            random_mixed(400, iterations, 4096, 4096),
            larson(1, 0.5),
            larson(2, 0.5),
            larson(4, 0.5),
            Case("service 2C/4H", "service", ["--seconds", "1"], threads=7),
            # 50 steps of 2M = 1e8 operations: resolves DESIGN.md's 1e-8 target.
            steady_syscalls(8192, 2_000_000, 50),
        ], 5
    if profile == "full":
        iterations = 20_000_000
        cases = [random_mixed(400, iterations), random_mixed(8192, iterations)]
        cases += [random_mixed(400, iterations, s, s) for s in (16, 64, 256, 1024, 2048, 4096, 8192)]
        cases += [larson(t, 3) for t in (1, 2, 4)]
        cases += [
            Case("prodcons 1x2T", "prodcons", [1, 4000000], threads=2),
            Case("prodcons 2x2T", "prodcons", [2, 2000000], threads=4),
            Case("realloc", "realloc_heavy", [5000000]),
            Case("large 64K-8M", "large", [20000], timeout=180),
            Case("large 5M-25M", "large", [4000, 16, 1, 5 << 20, 25 << 20], timeout=180),
            Case("realloc 1M-256M", "realloc_large", [4]),
            # A 512 MB burst freed, then 3 s without an allocator call:
            # above_live_end_kb is what each allocator keeps (bench/idle.c).
            Case("idle 512M", "idle", [512, 4096, 1, 3000, 50], strace=None, timeout=120),
            Case("service 2C/4H", "service", ["--seconds", "3"], threads=7),
        ]
        # Memory that follows the work across threads, at 2, 8 and 16
        # threads: larson with hand-offs in 8 B - 4 KiB, producers whose
        # blocks (8 B - 32 KiB) consumers free, and rounds of threads that
        # come and go (bench/churn.c; its minflt is the figure to watch).
        for t in (2, 8, 16):
            cases += [
                Case(f"larson 8-4096 {t}T", "larson", [t, 3, 8, 4096, 1024, 100, 1], threads=t, timeout=63),
                Case(f"xfree 8-32K {t}T", "prodcons", [t // 2, 4_000_000 // t, 8, 32768], threads=t),
                Case(f"churn {t}T", "churn", [t, 400 // t, 20000], threads=t, timeout=120),
            ]
        cases += [random_mixed(ws, 10_000_000, group="sweep", name=f"sweep ws={ws}", strace=None)
                  for ws in (64 << i for i in range(11))]
        cases += [Case("latency ws=8192", "latency", [5000000, 8192], group="latency", strace=None)]
        cases += [soak(30, 2_000_000, 8192), steady_syscalls(8192, 2_000_000, 50)]
        return cases, 5
    raise ValueError(f"unknown profile {profile!r}")


# ---- allocators ------------------------------------------------------------------

def discover_allocators(lib_dir, wanted):
    found, missing = [], []
    for name in HAKMEM_VARIANTS:
        lib = os.path.join(lib_dir, f"lib{name}.so")
        if os.path.exists(lib):
            found.append(Allocator(name, os.path.abspath(lib), True))
        else:
            missing.append(name)
    for name, lib, package in PEERS:
        if lib is None or os.path.exists(lib):
            found.append(Allocator(name, lib, False, package))
        else:
            missing.append(name)
    names = [w.strip() for w in wanted.split(",") if w.strip()] if wanted else []
    for name, variant, options in HAKMEM_CONFIGURED:
        lib = os.path.join(lib_dir, f"lib{variant}.so")
        if name in names and os.path.exists(lib):
            found.append(Allocator(name, os.path.abspath(lib), True, options=options))
    if wanted:
        unknown = [n for n in names if n not in {a.name for a in found}]
        if unknown:
            sys.exit(f"hakbench: allocator(s) not available: {', '.join(unknown)} "
                     f"(available: {', '.join(a.name for a in found)})")
        found = [a for a in found if a.name in names]
    return found, missing


# ---- running one program ---------------------------------------------------------

def strace_command(run_env, out_file, seccomp):
    cmd = ["strace", "-f", "-c", "-o", out_file, "-e", "trace=" + ",".join(benchlib.TRACED_SYSCALLS)]
    if seccomp:
        cmd.append("--seccomp-bpf")  # stop only on traced syscalls: futex-heavy runs stay fast
    for key, value in sorted(run_env.items()):
        cmd += ["-E", f"{key}={value}"]  # the tracee's only, never strace's own
    return cmd


def strace_supports_seccomp():
    try:
        probe = subprocess.run(["strace", "-f", "-c", "-o", os.devnull, "--seccomp-bpf", "-e",
                                "trace=mmap", "true"], capture_output=True, timeout=30)
        return probe.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_program(case, alloc, bin_dir, args=None, strace_seccomp=None, pin_cpu=None, timeout_scale=1.0,
                fixed_layout=False):
    """Runs the case once. Returns a run record; with strace_seccomp not None the
    run is traced and the record carries the syscall counts. fixed_layout runs
    it without address-space randomization (setarch -R), so two runs map
    memory at the same places."""
    binary = os.path.join(bin_dir, case.binary)
    cmd = [binary] + (args if args is not None else case.args)
    # Nothing from the caller that changes an allocator (a HAKMEM_* option,
    # MALLOC_CONF, an LD_PRELOAD of its own, ...) reaches a run: only what
    # the allocator's run_env() sets, recorded with the run.
    env = benchlib.without_allocator_vars(os.environ)
    run_env = alloc.run_env()
    timeout = case.timeout * timeout_scale
    strace_out = None
    if strace_seccomp is not None:
        fd, strace_out = tempfile.mkstemp(prefix="hakbench-strace-")
        os.close(fd)
        cmd = strace_command(run_env, strace_out, strace_seccomp) + cmd
        timeout *= 3
    else:
        env.update(run_env)
    if fixed_layout:
        cmd = ["setarch", platform.machine(), "-R"] + cmd  # inherited by strace's tracee

    def pin():
        if pin_cpu is not None and case.threads == 1:
            os.sched_setaffinity(0, {pin_cpu})  # inherited through exec (and by strace's tracee)

    record = {"case": case.name, "alloc": alloc.name, "cmd": cmd, "env": run_env, "status": "ok"}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=pin, start_new_session=True)
    except OSError as e:
        record.update(status=f"error:{e.strerror}", wall_s=0.0, stdout="", stderr=str(e))
        return record
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The whole session: under strace the tracee would survive its tracer.
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        record["status"] = "timeout"
    record["wall_s"] = time.monotonic() - start
    record["stdout"], record["stderr"] = stdout, stderr

    parsed = benchlib.parse_output(stdout)
    if record["status"] == "ok":
        if proc.returncode < 0:
            try:
                record["status"] = "crash:" + signal.Signals(-proc.returncode).name
            except ValueError:
                record["status"] = f"crash:signal{-proc.returncode}"
        elif proc.returncode != 0:
            record["status"] = f"exit:{proc.returncode}"
        elif "cannot be preloaded" in stderr:
            # ld.so ignores a bad LD_PRELOAD and runs glibc's malloc instead:
            # a silently wrong measurement unless caught here.
            record["status"] = "preload-failed"
        elif parsed["results"] != 1:
            record["status"] = f"results:{parsed['results']}"
    record["result"] = parsed["result"] or {}
    record["steps"] = parsed["steps"]
    if strace_out:
        try:
            with open(strace_out) as f:
                record["syscalls"] = benchlib.parse_strace_summary(f.read())
        finally:
            os.unlink(strace_out)
    return record


# ---- the session -------------------------------------------------------------------

class Progress:
    """One stderr line per run with an ETA from the average run so far."""

    def __init__(self, total, label):
        self.total, self.done, self.label, self.start = total, 0, label, time.monotonic()

    def report(self, text):
        self.done += 1
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        width = len(str(self.total))
        print(f"[{self.label} {self.done:{width}}/{self.total}  eta {eta:5.0f}s] {text}",
              file=sys.stderr, flush=True)


def describe(record, field):
    r = record.get("result") or {}
    if record["status"] != "ok":
        return record["status"].upper()
    parts = []
    if field in r:
        parts.append(f"{r[field] / 1e6:8.2f} M ops/{'cpu-' if 'cpu' in field else ''}s")
    if "peak_rss_kb" in r:
        parts.append(f"rss {r['peak_rss_kb'] / 1024:7.1f} MB")
    return "  ".join(parts)


def schedule(cases, allocators, reps):
    """The timed runs' order, interleaved: every repetition visits every
    (case, allocator) pair once, with the allocator order rotated per
    repetition so no allocator always runs first (or right after a heavy
    neighbour). Returns [(rep, case, allocator)]."""
    jobs = []
    for rep in range(reps):
        shift = rep % len(allocators)
        order = allocators[shift:] + allocators[:shift]
        for case in cases:
            if rep < case.rep_count(reps):
                jobs += [(rep, case, alloc) for alloc in order]
    return jobs


def measure(cases, allocators, reps, bin_dir, pin_cpu, timeout_scale, log_dir, field):
    """The timed runs, in schedule()'s order."""
    jobs = schedule(cases, allocators, reps)
    progress = Progress(len(jobs), "run")
    hung = set()  # a (case, allocator) that timed out once is not retried
    runs = []
    for rep, case, alloc in jobs:
        if (case.name, alloc.name) in hung:
            record = {"case": case.name, "alloc": alloc.name, "status": "skipped-after-timeout",
                      "env": alloc.run_env(), "result": {}, "steps": [], "wall_s": 0.0}
        else:
            record = run_program(case, alloc, bin_dir, pin_cpu=pin_cpu, timeout_scale=timeout_scale)
            if record["status"] == "timeout":
                hung.add((case.name, alloc.name))
        record["rep"] = rep
        keep_log(record, log_dir)
        progress.report(f"rep {rep + 1}/{case.rep_count(reps)}  {case.name:<22} {alloc.name:<14} "
                        f"{describe(record, field)}  ({record['wall_s']:.1f} s)")
        runs.append(record)
    return runs


def count_syscalls(cases, allocators, bin_dir, seccomp, pin_cpu, timeout_scale, log_dir):
    """The strace pass: per (case, allocator), budgeted syscalls per op of a
    whole run, or for 'steady' cases the difference of two run lengths."""
    jobs = [(c, a) for c in cases if c.strace for a in allocators]
    progress = Progress(len(jobs), "strace")
    out = {}
    for case, alloc in jobs:
        entry = {}
        if case.strace == "steady":
            # Both lengths with one address-space layout: an allocator whose
            # start-up mmap count depends on where the kernel places its
            # mappings (a hint that misses, an alignment trim) would
            # otherwise differ by a call between the two runs, which is
            # start-up, not steady state.
            short, long_ = (run_program(case, alloc, bin_dir, args=[str(x) for x in args],
                                        strace_seccomp=seccomp, pin_cpu=pin_cpu,
                                        timeout_scale=timeout_scale, fixed_layout=True)
                            for args in case.steady_args)
            for rec in (short, long_):
                keep_log(rec, log_dir, "strace")
            entry["status"] = short["status"] if short["status"] != "ok" else long_["status"]
            entry["env"] = short["env"]
            if entry["status"] == "ok":
                per_op, ops = benchlib.steady_per_op(short["syscalls"], short["result"]["ops"],
                                                     long_["syscalls"], long_["result"]["ops"])
                entry.update(counts=long_["syscalls"], ops=long_["result"]["ops"],
                             steady_per_op=per_op, steady_ops=ops,
                             steady_calls=benchlib.budget_calls(long_["syscalls"])
                             - benchlib.budget_calls(short["syscalls"]))
            wall = short["wall_s"] + long_["wall_s"]
        else:
            rec = run_program(case, alloc, bin_dir, strace_seccomp=seccomp, pin_cpu=pin_cpu,
                              timeout_scale=timeout_scale)
            keep_log(rec, log_dir, "strace")
            entry["status"] = rec["status"]
            entry["env"] = rec["env"]
            if rec["status"] == "ok":
                entry.update(counts=rec["syscalls"], ops=rec["result"].get("ops"))
            wall = rec["wall_s"]
        if entry.get("counts") is not None and entry.get("ops"):
            entry["per_op"] = benchlib.per_op(benchlib.budget_calls(entry["counts"]), entry["ops"])
            entry["all_per_op"] = benchlib.per_op(sum(entry["counts"].values()), entry["ops"])
        out.setdefault(case.name, {})[alloc.name] = entry
        shown = entry.get("steady_per_op", entry.get("per_op"))
        progress.report(f"{case.name:<22} {alloc.name:<14} "
                        + (f"{shown:.2e} syscalls/op" if shown is not None else entry["status"].upper())
                        + f"  ({wall:.1f} s)")
    return out


def keep_log(record, log_dir, kind="run"):
    """Failed runs keep their stdout/stderr for a post-mortem; successful ones
    drop them (the parsed result carries everything)."""
    if record["status"] not in ("ok", "skipped-after-timeout") and log_dir:
        os.makedirs(log_dir, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{kind}-{record['case']}-{record['alloc']}-{record.get('rep', 0)}")
        with open(os.path.join(log_dir, safe + ".log"), "w") as f:
            f.write(f"cmd: {' '.join(record.get('cmd', []))}\nstatus: {record['status']}\n"
                    f"--- stdout\n{record.get('stdout', '')}\n--- stderr\n{record.get('stderr', '')}\n")
    record.pop("stdout", None)
    record.pop("stderr", None)


def summarize_runs(cases, allocators, runs):
    """summary[case][alloc] = {'status', 'runs', 'failures', 'metrics': {field: stats},
    'steps': the STEP series of the first good run}."""
    summary = {}
    for case in cases:
        for alloc in allocators:
            mine = [r for r in runs if r["case"] == case.name and r["alloc"] == alloc.name]
            if not mine:  # strace-only case
                continue
            good = [r for r in mine if r["status"] == "ok"]
            bad = [r["status"] for r in mine if r["status"] != "ok"]
            fields = sorted({k for r in good for k, v in r["result"].items()
                             if isinstance(v, (int, float))})
            summary.setdefault(case.name, {})[alloc.name] = {
                "status": "ok" if not bad else bad[0],
                "runs": len(mine),
                "failures": len(bad),
                "metrics": {k: benchlib.summarize([r["result"].get(k) for r in good]) for k in fields},
                "steps": good[0]["steps"] if good else [],
            }
    return summary


def snapshot(allocators, cases, bin_dir, out_dir):
    """Copies hakmem's libraries and the workload binaries next to the results
    and runs the copies: a rebuild during a long run (bazel-bin is shared with
    whoever builds next) must not change what is measured half-way, and the
    results keep the exact binaries they describe. Returns the new bin_dir."""
    for alloc in allocators:
        if alloc.hakmem:
            os.makedirs(os.path.join(out_dir, "lib"), exist_ok=True)
            copy = os.path.join(out_dir, "lib", os.path.basename(alloc.lib))
            shutil.copy2(os.path.realpath(alloc.lib), copy)
            alloc.lib = copy
    copy_dir = os.path.join(out_dir, "bin")
    os.makedirs(copy_dir, exist_ok=True)
    for binary in sorted({c.binary for c in cases}):
        shutil.copy2(os.path.realpath(os.path.join(bin_dir, binary)), os.path.join(copy_dir, binary))
    return copy_dir


def load_average():
    """1-minute load average: other work on the machine skews every number."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def machine_info():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = None
    try:
        rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
            "glibc": glibc, "python": platform.python_version(), "git": rev,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="profile", action="store_const", const="quick",
                      help="headline cases, short runs, 5 reps (default)")
    mode.add_argument("--full", dest="profile", action="store_const", const="full",
                      help="every workload, 5 reps")
    mode.add_argument("--profile", choices=["quick", "full", "smoke"],
                      help="smoke: seconds-long run of every workload (the harness's own test)")
    ap.add_argument("--reps", type=int, help="repetitions (default: the profile's)")
    ap.add_argument("--metric", choices=sorted(report.THROUGHPUTS), default="wall",
                    help="throughput per wall-clock second (default) or per CPU second of the "
                         "process (robust to other load on the machine)")
    ap.add_argument("--allocators", help="comma list, e.g. hakmem,mimalloc (default: all available)")
    ap.add_argument("--subject", help="comma list of allocators that get ratio columns "
                                      "(default: the hakmem variants)")
    ap.add_argument("--only", help="regex: run only cases whose name matches")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "bazel-bin", "bench"),
                    help="where the bench binaries are (default: bazel-bin/bench)")
    ap.add_argument("--lib-dir", default=os.path.join(REPO, "bazel-bin", "alloc"),
                    help="where libhakmem*.so are (default: bazel-bin/alloc)")
    ap.add_argument("--out", help="output directory (default: bench/results/<timestamp>)")
    ap.add_argument("--no-strace", action="store_true", help="skip the syscall-counting pass")
    ap.add_argument("--no-charts", action="store_true", help="skip gnuplot")
    ap.add_argument("--no-pin", action="store_true", help="do not pin single-thread runs to one CPU")
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every run's timeout")
    ap.add_argument("--publish", action="store_true",
                    help="also write bench/RESULTS.md and bench/charts/ (the committed report)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    ap.add_argument("--variant-targets", action="store_true",
                    help="print the Bazel labels of the hakmem variants this harness measures and exit "
                         "(tools/bench.sh builds those that //alloc defines)")
    opts = ap.parse_args(argv)
    profile = opts.profile or "quick"
    if opts.variant_targets:
        print("\n".join(f"//alloc:lib{name}.so" for name in HAKMEM_VARIANTS))
        return 0

    cases, reps = plan(profile)
    reps = opts.reps or reps
    if opts.only:
        cases = [c for c in cases if re.search(opts.only, c.name)]
    allocators, missing = discover_allocators(opts.lib_dir, opts.allocators)
    if not cases or not allocators:
        sys.exit("hakbench: nothing to run (check --only / --allocators)")
    if not any(a.hakmem for a in allocators):
        print(f"hakbench: no hakmem library in {opts.lib_dir} (build //alloc:libhakmem.so); "
              "measuring the peers only", file=sys.stderr)
    subjects = ([s.strip() for s in opts.subject.split(",")] if opts.subject
                else [a.name for a in allocators if a.hakmem])
    missing_bins = sorted({c.binary for c in cases if not os.access(os.path.join(opts.bin_dir, c.binary), os.X_OK)})
    if missing_bins:
        sys.exit(f"hakbench: missing binaries in {opts.bin_dir}: {', '.join(missing_bins)} "
                 "(bazel build --config=opt //bench:all)")

    if opts.dry_run:
        for c in cases:
            print(f"{c.name:<24} {c.binary} {' '.join(c.args)}  reps={c.rep_count(reps)} strace={c.strace}")
        print("allocators: " + ", ".join(f"{a.name}={a.lib or '(none)'}" for a in allocators))
        return 0

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.abspath(opts.out or os.path.join(REPO, "bench", "results", stamp))
    os.makedirs(out_dir, exist_ok=True)
    log_dir = os.path.join(out_dir, "logs")
    bin_dir = snapshot(allocators, cases, opts.bin_dir, out_dir)
    pin_cpu = None if opts.no_pin else max(os.sched_getaffinity(0))
    print(f"hakbench: {profile} mode, {len(cases)} cases x {len(allocators)} allocators "
          f"({', '.join(a.name for a in allocators)}), {reps} reps -> {out_dir}", file=sys.stderr)

    started = time.monotonic()
    load_before = load_average()
    if load_before is not None and load_before > 0.5 * os.cpu_count() and opts.metric == "wall":
        print(f"hakbench: the machine is busy (load average {load_before:.1f} on {os.cpu_count()} CPUs): "
              "wall-clock throughput will be noisy; --metric cpu ranks by CPU time instead",
              file=sys.stderr)
    runs = measure(cases, allocators, reps, bin_dir, pin_cpu, opts.timeout_scale, log_dir,
                   report.THROUGHPUTS[opts.metric].field)
    syscalls = {}
    if not opts.no_strace:
        if shutil.which("strace"):
            syscalls = count_syscalls(cases, allocators, bin_dir, strace_supports_seccomp(),
                                      pin_cpu, opts.timeout_scale, log_dir)
        else:
            print("hakbench: strace not found, skipping syscall counts (bash tools/setup.sh)",
                  file=sys.stderr)

    data = {
        "meta": dict(machine_info(), profile=profile, reps=reps, pinned_cpu=pin_cpu,
                     load_before=load_before, load_after=load_average(), metric=opts.metric,
                     duration_s=round(time.monotonic() - started, 1), missing=missing,
                     subjects=subjects, reference=REFERENCE,
                     # The caller's allocator variables, none of which reached a run.
                     env_cleared=sorted(k for k in os.environ if benchlib.is_allocator_var(k))),
        "allocators": [a.as_dict() for a in allocators],
        "cases": [c.as_dict() for c in cases],
        "runs": runs,
        "summary": summarize_runs(cases, allocators, runs),
        "syscalls": syscalls,
    }
    chart_paths = [] if opts.no_charts else charts.write_all(data, os.path.join(out_dir, "charts"))
    data["charts"] = report.chart_links(chart_paths)
    table = report.write_all(data, out_dir)
    if opts.out is None:
        latest = os.path.join(REPO, "bench", "results", "latest")
        if os.path.islink(latest) or not os.path.exists(latest):
            if os.path.islink(latest):
                os.unlink(latest)
            os.symlink(stamp, latest)
    if opts.publish:
        table = report.publish(data, chart_paths, os.path.join(REPO, "bench"))

    print(f"hakbench: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    # stdout gets the report itself, then where everything is.
    with open(table) as f:
        print(f.read())
    print(f"table: {table}")
    for path in chart_paths:
        print(f"chart: {path}")
    print(f"data:  {os.path.join(out_dir, 'results.json')} (+ runs.csv, summary.csv, syscalls.csv)")
    failed = failed_runs(data)
    if failed:
        print(f"hakbench: {len(failed)} run(s) failed, so the figures are incomplete (their ratios are "
              f"blank): {', '.join(failed[:8])}{' ...' if len(failed) > 8 else ''}; logs in {log_dir}",
              file=sys.stderr)
        return 1
    return 0


def failed_runs(data):
    """'case / allocator: status' of every timed or strace run that did not
    succeed. Any one makes the harness exit 1."""
    out = [f"{r['case']} / {r['alloc']}: {r['status']}" for r in data["runs"] if r["status"] != "ok"]
    out += [f"{case} / {alloc} (strace): {e['status']}" for case, per in data["syscalls"].items()
            for alloc, e in per.items() if e.get("status", "ok") != "ok"]
    return out


if __name__ == "__main__":
    sys.exit(main())
