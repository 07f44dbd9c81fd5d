"""Inputs of the real-program matrix (matrix.py), generated without hakmem.

Every generator draws from random.Random(seed) with a fixed seed, so the
same bytes come out on every machine and every run; file times are pinned
too, since tar and git record them.
"""

import os
import random

# What each workload runs (absolute paths: the runs get PATH=/usr/bin:/bin).
TOOLS = {
    "python3": ["/usr/bin/python3.11", "/usr/lib/python3.11/test/test_threading.py"],
    "perl": ["/usr/bin/perl"],
    "ruby": ["/usr/bin/ruby"],
    "git": ["/usr/bin/git"],
    "gcc": ["/usr/bin/gcc", "/usr/bin/md5sum"],
    "gxx": ["/usr/bin/g++", "/usr/bin/md5sum"],
    "sqlite3": ["/usr/bin/sqlite3"],
    "sort": ["/usr/bin/sort", "/usr/bin/md5sum"],
    "tar_xz": ["/usr/bin/tar", "/usr/bin/xz", "/usr/bin/ls", "/usr/bin/diff"],
}

# 2001-09-09 01:46:40 UTC: every generated file's modification time.
MTIME = 1000000000

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho"
         " sigma tau upsilon phi chi psi omega malloc free span segment arena heap thread").split()


def missing_tools(program):
    if program not in TOOLS:
        return ["(unknown program %r; known: %s)" % (program, ", ".join(sorted(TOOLS)))]
    return [t for t in TOOLS[program] if not os.path.exists(t)]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.utime(path, (MTIME, MTIME))


def _prose(rng, lines):
    out = []
    for _ in range(lines):
        n = rng.randint(3, 14)
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)) + " %d" % rng.randint(0, 99999))
    return "\n".join(out) + "\n"


def _tree(root, rng, dirs, files_per_dir, lines):
    """A source-like tree: dirs x files_per_dir text files, a few binary."""
    for d in range(dirs):
        for f in range(files_per_dir):
            name = os.path.join(root, "dir%02d" % d, "file%03d.txt" % f)
            _write(name, _prose(rng, rng.randint(lines // 4, lines)))
        blob = os.path.join(root, "dir%02d" % d, "data.bin")
        with open(blob, "wb") as f:
            f.write(rng.randbytes(rng.randint(1000, 40000)))
        os.utime(blob, (MTIME, MTIME))
    for d in range(dirs):
        os.utime(os.path.join(root, "dir%02d" % d), (MTIME, MTIME))


def gen_git(out):
    # 300 text files and 10 binary ones in 10 directories.
    _tree(os.path.join(out, "src"), random.Random(20), dirs=10, files_per_dir=30, lines=120)


def gen_tar_xz(out):
    # About 8 MB: text compresses well, the random blobs do not.
    _tree(os.path.join(out, "tree"), random.Random(80), dirs=12, files_per_dir=40, lines=500)


def gen_sort(out):
    # 600,000 lines: a hex key, a number and a word, in random order.
    rng = random.Random(70)
    with open(os.path.join(out, "lines.txt"), "w") as f:
        for i in range(600000):
            f.write("%08x %d %s\n" % (rng.getrandbits(32), rng.randint(-10**6, 10**6), rng.choice(WORDS)))


def gen_c_program(out):
    """A C program of 16 modules, each with list, tree, hash and string
    routines of its own parameters, and a main that runs them all and
    prints checksums. gcc -O2 gets real work (inlining, loops, switch
    tables); the program, run under the same preload, allocates too."""
    rng = random.Random(50)
    modules = 16
    header = ["#include <stddef.h>", "#include <stdint.h>"]
    for m in range(modules):
        header.append("uint64_t mod%02d_run(uint64_t seed);" % m)
    _write(os.path.join(out, "prog.h"), "\n".join(header) + "\n")
    for m in range(modules):
        k = [rng.randint(3, 97) for _ in range(8)]
        cases = "\n".join("      case %d: h = h * %d + %d; break;" % (c, rng.randint(3, 999), rng.randint(0, 9999))
                          for c in range(12))
        src = """#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "prog.h"

struct node {{ struct node* left; struct node* right; uint64_t key; char* name; }};

static struct node* insert(struct node* t, uint64_t key, const char* name) {{
  if (t == NULL) {{
    t = calloc(1, sizeof *t);
    t->key = key;
    t->name = strdup(name);
    return t;
  }}
  if (key < t->key) t->left = insert(t->left, key, name);
  else t->right = insert(t->right, key, name);
  return t;
}}

static uint64_t walk(const struct node* t, uint64_t h) {{
  if (t == NULL) return h;
  h = walk(t->left, h);
  for (const char* p = t->name; *p; p++) h = h * 131 + (unsigned char)*p;
  return walk(t->right, h ^ t->key);
}}

static void drop(struct node* t) {{
  if (t == NULL) return;
  drop(t->left);
  drop(t->right);
  free(t->name);
  free(t);
}}

static uint64_t mix(uint64_t h, int c) {{
  switch (c % 12) {{
{cases}
  }}
  return h ^ (h >> {k0});
}}

uint64_t mod{m:02d}_run(uint64_t seed) {{
  struct node* t = NULL;
  uint64_t x = seed * {k1} + {k2};
  char buf[64];
  for (int i = 0; i < 3000; i++) {{
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    snprintf(buf, sizeof buf, "m{m}-%d-%llx", i % {k3}, (unsigned long long)(x >> 40));
    t = insert(t, x >> 20, buf);
  }}
  uint64_t h = walk(t, {k4});
  drop(t);
  size_t n = {k5} * 100;
  uint64_t* v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = mix(h + i, (int)i);
  for (size_t step = 1; step < n; step *= 2)
    for (size_t i = 0; i + step < n; i += 2 * step) v[i] ^= v[i + step] * {k6};
  h ^= v[0];
  v = realloc(v, n * 3 * sizeof *v);
  memset(v + n, {k7}, 2 * n * sizeof *v);
  h += v[n + 1];
  free(v);
  return h;
}}
""".format(m=m, cases=cases, k0=k[0] % 31 + 1, k1=k[1], k2=k[2], k3=k[3], k4=k[4], k5=k[5], k6=k[6],
           k7=k[7])
        _write(os.path.join(out, "mod%02d.c" % m), src)
    calls = "\n".join('  h = mod%02d_run(h);\n  printf("mod%02d %%016llx\\n", (unsigned long long)h);' % (m, m)
                      for m in range(modules))
    _write(os.path.join(out, "main.c"), """#include <stdio.h>
#include "prog.h"

int main(void) {
  uint64_t h = 12345;
%s
  return 0;
}
""" % calls)


CXX_PROGRAM = r"""#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

// Containers of strings and shared pointers built on four threads, handed
// back to the main thread and freed there (operator new/delete, remote
// frees), then checksummed.
static uint64_t digest(const std::map<std::string, std::vector<uint32_t>>& m) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& kv : m) {
    for (unsigned char c : kv.first) h = (h ^ c) * 1099511628211ull;
    for (uint32_t v : kv.second) h = (h ^ v) * 1099511628211ull;
  }
  return h;
}

int main() {
  std::vector<std::map<std::string, std::vector<uint32_t>>> results(4);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; t++) {
    threads.emplace_back([t, &results] {
      uint32_t x = 7 + t;
      std::unordered_map<uint32_t, std::shared_ptr<std::string>> live;
      for (uint32_t i = 0; i < 60000; i++) {
        x = x * 1664525u + 1013904223u;
        std::string key = "k" + std::to_string(x % 5000);
        results[t][key].push_back(i);
        live[x % 2048] = std::make_shared<std::string>(key + std::string(x % 300, 'x'));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (unsigned t = 0; t < 4; t++)
    std::printf("thread %u: %zu keys, digest %016llx\n", t, results[t].size(),
                (unsigned long long)digest(results[t]));
  results.clear();
  return 0;
}
"""


def gen_gcc(out):
    gen_c_program(os.path.join(out, "prog"))


def gen_gxx(out):
    _write(os.path.join(out, "threads.cc"), CXX_PROGRAM)


GENERATORS = {"git": gen_git, "tar_xz": gen_tar_xz, "sort": gen_sort, "gcc": gen_gcc, "gxx": gen_gxx}


def generate(program, out):
    """Writes program's input into the (empty) directory out; programs
    whose workload makes its own input get nothing."""
    gen = GENERATORS.get(program)
    if gen is not None:
        gen(out)
