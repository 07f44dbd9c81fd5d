"""Runs alloc/testing/probe under a preloaded allocator and parses its output.

Shared by the variants_*_test.py drivers. Bazel runs them from the runfiles
root of the workspace, where the probe and the variants' shared objects are
at their package paths.
"""

import os
import subprocess

PROBE = "alloc/testing/probe"
VARIANTS = ["speed", "balanced", "lean"]


def variant_lib(variant):
    """The LD_PRELOAD object of a variant, as an absolute path."""
    return os.path.abspath("alloc/libhakmem_%s.so" % variant)


def clean_env(**extra):
    """The test's environment without HAKMEM_* or LD_PRELOAD, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") and k != "LD_PRELOAD"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, preload=None, env=None, timeout=60, prefix=()):
    """Runs the probe (optionally under a prefix command such as strace) with
    `preload` as LD_PRELOAD; returns the CompletedProcess (text mode)."""
    env = dict(env if env is not None else clean_env())
    if preload:
        env["LD_PRELOAD"] = preload
    proc = subprocess.run(list(prefix) + [os.path.abspath(PROBE)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError("probe %s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, args)), proc.returncode, proc.stdout, proc.stderr))
    return proc


def fields(stdout, mode):
    """The key=value fields of the probe's "PROBE <mode>" line, numbers as floats."""
    for line in stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "PROBE" and words[1] == mode:
            out = {}
            for w in words[2:]:
                k, _, v = w.partition("=")
                out[k] = float(v)
            return out
    raise AssertionError("no PROBE %s line in:\n%s" % (mode, stdout))


def probe(mode, *args, variant=None, preload=None, **env):
    """Runs `probe mode args...` under a variant (or another preload) with
    extra HAKMEM_* settings; returns its fields."""
    lib = variant_lib(variant) if variant else preload
    return fields(run((mode,) + args, preload=lib, env=clean_env(**env)).stdout, mode)
