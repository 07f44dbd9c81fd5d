#!/usr/bin/env python3
"""One real program under glibc and under each hakmem variant, compared.

    matrix.py PROGRAM VARIANT=LIB.so [VARIANT=LIB.so ...]

PROGRAM names a workload, e2e/workloads/PROGRAM.sh. Its input is generated
once, deterministically, by e2e/inputs.py (run without hakmem); then the
workload script runs once plainly (glibc's malloc) and once per variant with
that variant's shared object in LD_PRELOAD, each time in a fresh directory.
The script and every process it starts inherit the preload, so the whole
process tree runs on hakmem. A variant's run fails when

  - it exits with another status than glibc's run, or is killed by a signal
    (a misuse report aborts: HAKMEM_ON_ERROR is left at its default, abort);
  - its stdout differs from glibc's run (the workloads print only what must
    not depend on the allocator: results, checksums, no times or pids);
  - its peak RSS (the largest process of the tree, as /usr/bin/time -f %M
    reports it) exceeds 2 x glibc's + 32 MiB: generous, since allocators
    trade memory for speed differently, but a leak or a heap kept per
    thread crosses it;
  - hakmem did not serve it: no statistics report (HAKMEM_STATS=json,
    written at exit into one file per process through HAKMEM_STATS_FILE),
    a report of another variant than the one preloaded, or fewer than three
    reports that show memory mapped and blocks handed out (/usr/bin/time
    and the workload's shell always write one: a third comes from a program
    the workload started);
  - hakmem wrote anything to stderr (with HAKMEM_STATS_FILE set it has
    nothing to say unless something is wrong: a misuse or a bad option);
  - it runs past the time limit (a hang).

The glibc run must itself exit 0, or the workload is broken on this
machine and the test fails saying so. Every failure names the program and
the variant, and shows the stdout diff and the tail of the program's stderr.
All variants run even after one fails; the exit status is 1 if any failed.
"""

import difflib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inputs  # noqa: E402

RSS_FACTOR = 2
RSS_SLACK_KB = 32 * 1024
TIME_LIMIT_S = 150
# /usr/bin/time and the workload's bash always report; a third report comes
# from a process the workload started, so the program itself ran on hakmem.
MIN_SERVED = 3
STDERR_TAIL_LINES = 30
DIFF_LINES = 40


def clean_env(run_dir):
    """The test's environment without anything that changes the allocator,
    pinned where programs' output could depend on it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HAKMEM_", "MALLOC_", "GLIBC_TUNABLES")) and k != "LD_PRELOAD"}
    env.update({
        "LC_ALL": "C",
        "TZ": "UTC",
        "HOME": os.path.join(run_dir, "home"),
        "TMPDIR": os.path.join(run_dir, "tmp"),
        "PATH": "/usr/bin:/bin",
    })
    return env


def run_once(label, program, input_dir, run_dir, lib, stats_dir):
    """Runs the workload; returns a dict with its status, output, peak RSS
    (KiB), CPU seconds and wall seconds."""
    os.makedirs(os.path.join(run_dir, "home"))
    os.makedirs(os.path.join(run_dir, "tmp"))
    work = os.path.join(run_dir, "work")
    os.makedirs(work)
    env = clean_env(run_dir)
    if lib:
        os.makedirs(stats_dir)
        env["LD_PRELOAD"] = lib
        env["HAKMEM_STATS"] = "json"
        env["HAKMEM_STATS_FILE"] = os.path.join(stats_dir, "%p.json")
    script = os.path.join(HERE, "workloads", program + ".sh")
    out_path = os.path.join(run_dir, "stdout")
    err_path = os.path.join(run_dir, "stderr")
    time_path = os.path.join(run_dir, "time")
    # The peak RSS comes from /usr/bin/time, not from this process's own
    # wait4: a child's peak starts at its parent's when it execs, and this
    # Python's would be a floor under every figure.
    argv = ["/usr/bin/time", "-f", "%M %U %S", "-o", time_path, "/bin/bash", script, input_dir, HERE]
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
        timed_out = []

        def kill():
            timed_out.append(True)
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(TIME_LIMIT_S, kill)
        timer.start()
        proc.wait()
        timer.cancel()
    with open(out_path, "rb") as f:
        stdout = f.read().decode("utf-8", "replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode("utf-8", "replace")
    status = proc.returncode
    peak_kb, cpu_s = 0, 0.0
    if os.path.exists(time_path):
        with open(time_path) as f:
            lines = f.read().splitlines()
        # "Command terminated by signal N" precedes the figures when the
        # workload's shell was killed; time itself then exits 128 + N.
        for line in lines:
            if line.startswith("Command terminated by signal "):
                status = -int(line.split()[-1])
        if lines and len(lines[-1].split()) == 3:
            rss, user, sys_ = lines[-1].split()
            peak_kb, cpu_s = int(rss), float(user) + float(sys_)
    return {
        "label": label,
        "status": status,
        "timed_out": bool(timed_out),
        "stdout": stdout,
        "stderr": stderr,
        "peak_kb": peak_kb,
        "cpu_s": cpu_s,
        "wall_s": time.monotonic() - start,
    }


def describe_status(status):
    return "killed by signal %d" % -status if status < 0 else "exit status %d" % status


def tail(text, n=STDERR_TAIL_LINES):
    lines = text.splitlines()
    return "\n".join(("    " + line) for line in lines[-n:]) or "    (empty)"


def read_reports(stats_dir):
    """Every statistics report the run's processes wrote, parsed."""
    reports = []
    for path in sorted(glob.glob(os.path.join(stats_dir, "*.json"))):
        with open(path) as f:
            for line in f:
                if line.strip():
                    reports.append(json.loads(line))
    return reports


def check_variant(program, variant, ref, got, stats_dir):
    """The reasons this variant's run fails, empty when it passes."""
    problems = []
    if got["timed_out"]:
        problems.append("timed out after %d s (a hang?)" % TIME_LIMIT_S)
    if got["status"] != ref["status"]:
        problems.append("%s, glibc's run %s" % (describe_status(got["status"]),
                                                 describe_status(ref["status"])))
    if got["stdout"] != ref["stdout"]:
        diff = list(difflib.unified_diff(ref["stdout"].splitlines(), got["stdout"].splitlines(),
                                         "glibc", variant, lineterm="", n=1))
        shown = "\n".join("    " + line for line in diff[:DIFF_LINES])
        more = "\n    ... %d more diff lines" % (len(diff) - DIFF_LINES) if len(diff) > DIFF_LINES else ""
        problems.append("stdout differs from glibc's run:\n%s%s" % (shown, more))
    bound = RSS_FACTOR * ref["peak_kb"] + RSS_SLACK_KB
    if got["peak_kb"] > bound:
        problems.append("peak RSS %d KiB exceeds the bound %d x glibc's %d KiB + %d KiB = %d KiB"
                        % (got["peak_kb"], RSS_FACTOR, ref["peak_kb"], RSS_SLACK_KB, bound))
    hakmem_lines = [line for line in got["stderr"].splitlines() if line.startswith("hakmem")]
    if hakmem_lines:
        problems.append("hakmem wrote to stderr:\n%s" % tail("\n".join(hakmem_lines), 10))
    reports = read_reports(stats_dir)
    served = [r for r in reports if r["syscalls_mmap"] > 0 and r["thread_refills"] > 0]
    got["reports"], got["served"] = len(reports), len(served)
    if not reports:
        problems.append("no hakmem statistics report: no process of the run had hakmem loaded")
        return problems
    others = sorted({r.get("variant") for r in reports} - {variant}, key=str)
    if others:
        problems.append("reports from variant(s) %s, not %s: the wrong library was loaded"
                        % (", ".join(map(str, others)), variant))
    if len(served) < MIN_SERVED:
        problems.append("%d statistics reports, %d with memory mapped and blocks handed out (want %d:"
                        " /usr/bin/time's, the workload shell's and the program's)"
                        % (len(reports), len(served), MIN_SERVED))
    return problems


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    program = argv[1]
    libs = []
    for arg in argv[2:]:
        variant, sep, lib = arg.partition("=")
        if not sep:
            print("matrix.py: expected VARIANT=LIB.so, got %r" % arg, file=sys.stderr)
            return 2
        libs.append((variant, os.path.abspath(lib)))
    missing = inputs.missing_tools(program)
    if missing:
        print("FAIL %s: not installed: %s (tools/setup.sh installs them)" % (program, ", ".join(missing)))
        return 1

    top = os.path.join(os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="e2e-"), program)
    shutil.rmtree(top, ignore_errors=True)
    input_dir = os.path.join(top, "input")
    os.makedirs(input_dir)
    start = time.monotonic()
    inputs.generate(program, input_dir)
    print("%s: input generated in %.1f s (%s)" % (program, time.monotonic() - start, input_dir))

    ref = run_once("glibc", program, input_dir, os.path.join(top, "glibc"), None, None)
    rows = [ref]
    if ref["timed_out"] or ref["status"] != 0:
        print("FAIL %s [glibc]: the plain run itself failed (%s%s): the workload is broken on this"
              " machine, nothing to compare\n  stderr tail:\n%s\n  stdout tail:\n%s"
              % (program, describe_status(ref["status"]), ", timed out" if ref["timed_out"] else "",
                 tail(ref["stderr"]), tail(ref["stdout"])))
        return 1

    failed = []
    for variant, lib in libs:
        stats_dir = os.path.join(top, variant + "-stats")
        got = run_once(variant, program, input_dir, os.path.join(top, variant), lib, stats_dir)
        rows.append(got)
        problems = check_variant(program, variant, ref, got, stats_dir)
        if problems:
            failed.append(variant)
            print("FAIL %s [%s]:" % (program, variant))
            for p in problems:
                print("  - " + p)
            print("  %s's stderr (last %d lines):\n%s" % (program, STDERR_TAIL_LINES, tail(got["stderr"])))

    print("\n%-9s %-16s %10s %8s %8s %9s" % ("run", "status", "peak KiB", "cpu s", "wall s", "reports"))
    for r in rows:
        reports = "-" if r["label"] == "glibc" else "%d/%d" % (r["served"], r["reports"])
        print("%-9s %-16s %10d %8.2f %8.2f %9s" % (r["label"], describe_status(r["status"]),
                                                   r["peak_kb"], r["cpu_s"], r["wall_s"], reports))
    print("(reports: processes whose hakmem mapped memory and handed out blocks / processes that"
          " reported; RSS bound %d x glibc + %d MiB)" % (RSS_FACTOR, RSS_SLACK_KB // 1024))
    print("%d lines of stdout compared" % len(ref["stdout"].splitlines()))
    if failed:
        print("FAIL %s under %s" % (program, ", ".join(failed)))
        return 1
    print("PASS %s under %s: same output as glibc" % (program, ", ".join(v for v, _ in libs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
