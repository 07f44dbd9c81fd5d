/* Replay driver: a main() that feeds files to LLVMFuzzerTestOneInput, so a
 * fuzz target links without libFuzzer (gcc, default config) and its corpus
 * runs as an ordinary test. Arguments are files or directories (a directory's
 * regular files run in name order, so a failure reproduces the same way).
 *
 * Each input is copied into a buffer of exactly its size: under ASan a target
 * that reads past its input fails here as it would under libFuzzer. The name
 * of each input is printed before it runs, so the test log of a crash ends
 * with the culprit. Exits 1 when no input was found at all: an empty corpus
 * must not pass silently.
 *
 * --fork (first argument): each input runs in its own child process and the
 * driver reports every input that crashed instead of stopping at the first;
 * used for the crashing inputs of open bugs (fuzz/crashes/), where each
 * input is its own bug. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
/* Optional in a target, as with libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

static unsigned long replayed;
static int fork_each;
static unsigned long crashed;

static int run_file(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t* buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (buf == NULL) {
    fprintf(stderr, "replay: out of memory reading %s\n", path);
    return -1;
  }
  uint8_t* exact = malloc(n ? n : 1);
  if (exact == NULL) return -1;
  if (n) memcpy(exact, buf, n);
  free(buf);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
  replayed++;
  if (!fork_each) {
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    LLVMFuzzerTestOneInput(exact, n);
    _exit(0);
  }
  free(exact);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) {
    fprintf(stderr, "replay: cannot run %s in a child process\n", path);
    return -1;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    fprintf(stderr, "replay: %s: ok\n", path);
    return 0;
  }
  crashed++;
  if (WIFSIGNALED(status)) fprintf(stderr, "replay: %s: CRASHED (signal %d)\n", path, WTERMSIG(status));
  else fprintf(stderr, "replay: %s: FAILED (exit %d)\n", path, WEXITSTATUS(status));
  return -1;
}

static int cmp_names(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

static int run_dir(const char* dir) {
  DIR* d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "replay: cannot open directory %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char** names = NULL;
  size_t count = 0, cap = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (count == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof(*names));
      if (names == NULL) return -1;
    }
    names[count++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, count, sizeof(*names), cmp_names);
  int rc = 0;
  for (size_t i = 0; i < count; i++) {
    char* path;
    if (asprintf(&path, "%s/%s", dir, names[i]) < 0) return -1;
    struct stat st;
    /* stat, not lstat: Bazel's runfiles are symlinks. */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && run_file(path) != 0) rc = -1;
    free(path);
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int rc = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--fork") == 0) {
    fork_each = 1;
    first = 2;
  }
  for (int i = first; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      rc = 1;
    } else if (S_ISDIR(st.st_mode)) {
      if (run_dir(argv[i]) != 0) rc = 1;
    } else if (run_file(argv[i]) != 0) {
      rc = 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  fprintf(stderr, "replay: %lu inputs in %.2f s", replayed, secs);
  if (fork_each) fprintf(stderr, ", %lu crashed", crashed);
  fputc('\n', stderr);
  if (replayed == 0) {
    fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  return rc;
}
