/* Every allocation entry point of the C library reaches hakmem when a program
 * links //alloc:hakmem, including allocations libc makes for the program
 * (strdup, getline) and those freed through another name. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/include/hakmem.h"

static int failures;

/* glibc's internal names, which it exports and programs may call directly
 * (declared here: no header does). cfree, a compat symbol only old
 * binaries bind to, is tested under LD_PRELOAD (glibc_contracts). */
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
void __libc_free(void*);

static void expect_hakmem(const char* what, void* p) {
  if (p == NULL || !hk_owns(p)) {
    fprintf(stderr, "FAIL: %s returned %p, not a hakmem block\n", what, p);
    failures++;
  }
}

int main(void) {
  void* p;
  expect_hakmem("malloc", p = malloc(24)); free(p);
  expect_hakmem("calloc", p = calloc(3, 24)); free(p);
  expect_hakmem("realloc(NULL)", p = realloc(NULL, 100));
  expect_hakmem("realloc", p = realloc(p, 100000)); free(p);
  expect_hakmem("reallocarray", p = reallocarray(NULL, 10, 10)); free(p);
  expect_hakmem("aligned_alloc", p = aligned_alloc(64, 128)); free(p);
  expect_hakmem("memalign", p = memalign(4096, 10)); free(p);
  expect_hakmem("valloc", p = valloc(10)); free(p);
  expect_hakmem("pvalloc", p = pvalloc(10)); free(p);
  void* q = NULL;
  if (posix_memalign(&q, 256, 1000) != 0) failures++;
  expect_hakmem("posix_memalign", q); free(q);
  /* The __libc_ names and plain free are one allocator, both ways. */
  expect_hakmem("__libc_malloc", p = __libc_malloc(24)); free(p);
  expect_hakmem("__libc_calloc", p = __libc_calloc(3, 24)); __libc_free(p);
  expect_hakmem("__libc_realloc(NULL)", p = __libc_realloc(NULL, 100));
  expect_hakmem("__libc_realloc", p = __libc_realloc(p, 100000)); free(p);
  expect_hakmem("__libc_memalign", p = __libc_memalign(4096, 10)); free(p);
  expect_hakmem("__libc_valloc", p = __libc_valloc(10)); free(p);
  expect_hakmem("__libc_pvalloc", p = __libc_pvalloc(10)); __libc_free(p);
  __libc_free(malloc(300000));  /* an arena block through __libc_free */
  expect_hakmem("strdup (libc-internal malloc)", p = strdup("hello")); free(p);
  char* line = NULL;
  size_t cap = 0;
  FILE* f = fmemopen("a line\n", 7, "r");
  if (getline(&line, &cap, f) < 0) failures++;
  expect_hakmem("getline", line);
  free(line);
  fclose(f);
  p = malloc(100);
  if (malloc_usable_size(p) != hk_malloc_usable_size(p)) {
    fprintf(stderr, "FAIL: malloc_usable_size disagrees with hk_malloc_usable_size\n");
    failures++;
  }
  hk_free(p);  /* the two names are one allocator */
  p = hk_malloc(50);
  free(p);
  if (failures == 0) printf("routing: every entry point reached hakmem\n");
  return failures != 0;
}
