/* Blocks hakmem never handed out that a correct program may still give it:
 * glibc's own heap blocks (got here from glibc's real malloc, looked up in
 * libc's own scope, as a library that kept glibc's malloc or allocated
 * before hakmem was reached would have them) and blocks of ld.so's
 * start-up allocator (the rest of the last page of ld.so's data). free()
 * gives a glibc block back to glibc and leaves an ld.so block alone;
 * realloc() moves either into a hakmem block; malloc_usable_size() answers
 * glibc's size. Anything else stays "invalid free": an interior pointer of
 * a glibc block, glibc's mmapped block, ld.so's own data below that area.
 *
 * Runs linked with //alloc:hakmem and, the same binary without it, under
 * LD_PRELOAD of each variant. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Weak: the preloaded runs find it in libhakmem.so. */
int hk_owns(const void* p) __attribute__((weak));

static int failures;
#define EXPECT(cond, why)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "FAIL %s:%d: expected %s: %s\n", __func__, __LINE__, #cond, why); \
      failures++;                                                               \
    }                                                                           \
  } while (0)

static void* (*real_malloc)(size_t);
static void (*real_free)(void*);
static size_t (*real_usable)(void*);

/* [lo, hi) of ld.so's last mapping: its data segment, whose last page ends
 * with its start-up allocator's first area. */
static int ldso_data(uintptr_t* lo, uintptr_t* hi) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (f == NULL) return 0;
  char line[512];
  *lo = *hi = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long a, b;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strstr(line, "/ld-linux") && perms[1] == 'w' &&
        b > *hi) {
      *lo = a;
      *hi = b;
    }
  }
  fclose(f);
  return *hi != 0;
}

static void GlibcBlockFreedGoesBackToGlibc(void) {
  char* p = real_malloc(100);
  EXPECT(!hk_owns(p), "glibc's malloc gave a block hakmem does not own");
  memset(p, 0x5a, 100);
  free(p); /* hakmem's free */
  char* q = real_malloc(100);
  EXPECT(q == p, "glibc's free took it: glibc's next malloc of the size reuses it");
  real_free(q);
}

static void GlibcBlockReallocMovesIntoHakmem(void) {
  unsigned char* p = real_malloc(100);
  for (int i = 0; i < 100; i++) p[i] = (unsigned char)(i * 7 + 1);
  EXPECT(malloc_usable_size(p) == real_usable(p), "malloc_usable_size answers glibc's size for its block");
  unsigned char* r = realloc(p, 5000);
  EXPECT(r != NULL && hk_owns(r), "realloc returns a hakmem block");
  int same = 1;
  for (int i = 0; r != NULL && i < 100; i++) same &= r[i] == (unsigned char)(i * 7 + 1);
  EXPECT(same, "the first 100 bytes were copied");
  char* q = real_malloc(100);
  EXPECT((void*)q == (void*)p, "the glibc block went back to glibc");
  real_free(q);
  free(r);

  p = real_malloc(100);
  EXPECT(realloc(p, 0) == NULL, "realloc(p, 0) frees and returns NULL");
  q = real_malloc(100);
  EXPECT((void*)q == (void*)p, "... into glibc");
  real_free(q);
}

static void LdsoStartupBlockIsLeftAloneAndReallocCopies(void) {
  uintptr_t lo, hi;
  if (!ldso_data(&lo, &hi)) {
    fprintf(stderr, "SKIP %s: no writable ld-linux mapping in /proc/self/maps\n", __func__);
    return;
  }
  /* The last 32 bytes of ld.so's data page: past the end of its .bss on
   * any ld.so whose .bss does not end within them (glibc 2.36's ends 3 KiB
   * before the page end). */
  char* p = (char*)(hi - 32);
  char before[32];
  memcpy(before, p, 32);
  free(p + 16); /* left alone: ld.so's allocator takes nothing back */
  char* r = realloc(p, 64);
  EXPECT(r != NULL && hk_owns(r), "realloc moves it into a hakmem block");
  EXPECT(r != NULL && memcmp(r, before, 32) == 0, "with the 32 bytes the area holds after it");
  free(r);
}

/* Runs f in a child; its stderr must be exactly `want` and it must abort. */
static void expect_death(const char* name, void (*f)(void*), void* arg, const char* want) {
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    alarm(10);
    f(arg);
    _exit(0);
  }
  close(fds[1]);
  char out[512];
  size_t n = 0;
  ssize_t r;
  while (n + 1 < sizeof(out) && (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) || strcmp(out, want) != 0) {
    fprintf(stderr, "FAIL %s: status 0x%x, stderr \"%s\", expected an abort with \"%s\"\n", name, status, out,
            want);
    failures++;
  }
}

static void call_free(void* p) { free(p); }

static void WildPointersAreStillInvalid(void) {
  char want[160];
  /* Inside a glibc block, where no chunk header is. */
  char* g = real_malloc(200);
  memset(g, 0, 200);
  snprintf(want, sizeof(want), "hakmem: invalid free (pointer not from hakmem) of %p in free()\n", g + 64);
  expect_death("interior of a glibc block", call_free, g + 64, want);
  real_free(g);
  /* glibc's block mapped on its own (outside its heap). */
  char* big = real_malloc(4 << 20);
  snprintf(want, sizeof(want), "hakmem: invalid free (pointer not from hakmem) of %p in free()\n", big);
  expect_death("glibc's mmapped block", call_free, big, want);
  real_free(big);
  /* ld.so's data below its allocator's area. */
  uintptr_t lo, hi;
  if (ldso_data(&lo, &hi) && hi - lo >= 2 * 4096) {
    void* in_data = (void*)(hi - 4096 - 64);
    snprintf(want, sizeof(want), "hakmem: invalid free (pointer not from hakmem) of %p in free()\n", in_data);
    expect_death("ld.so's data", call_free, in_data, want);
  } else {
    fprintf(stderr, "SKIP ld.so's data: its writable mapping is a single page or missing\n");
  }
}

int main(void) {
  if (hk_owns == NULL) {
    fprintf(stderr, "FAIL: hakmem is neither linked nor preloaded\n");
    return 1;
  }
  void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
  real_malloc = (void* (*)(size_t))dlsym(libc, "malloc");
  real_free = (void (*)(void*))dlsym(libc, "free");
  real_usable = (size_t(*)(void*))dlsym(libc, "malloc_usable_size");
  if (!real_malloc || !real_free || !real_usable || real_malloc == malloc) {
    fprintf(stderr, "FAIL: glibc's own malloc not found in libc's scope\n");
    return 1;
  }
  GlibcBlockFreedGoesBackToGlibc();
  GlibcBlockReallocMovesIntoHakmem();
  LdsoStartupBlockIsLeftAloneAndReallocCopies();
  WildPointersAreStillInvalid();
  fprintf(stderr, failures ? "%d failures\n" : "all passed\n", failures);
  return failures != 0;
}
