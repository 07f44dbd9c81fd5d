/* A program with one deliberate memory error per mode, on hakmem blocks
 * (hk_ API, core built with memcheck annotations). memcheck_test.sh runs it
 * under valgrind and requires memcheck to report exactly that error, and
 * nothing for the "clean" mode.
 *
 *   memcheck_target use-after-free|leak|invalid-read|clean */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "alloc/include/hakmem.h"

static volatile char sink;

/* Allocates and drops the only pointer; noinline plus a stack scrub so no
 * stale copy of it survives in a register or stack slot for memcheck's scan. */
static void* first_of_class;

__attribute__((noinline)) static void leak_one_block(void) {
  /* The span descriptor records its first block's address (span start), which
   * memcheck's scan would count as a pointer to it: leak the second block. */
  first_of_class = hk_malloc(200);
  char* volatile p = hk_malloc(200);  /* usable size 208 */
  memset(p, 1, 200);
  p = NULL;
}

__attribute__((noinline)) static void scrub_stack(void) {
  volatile char junk[4096];
  for (size_t i = 0; i < sizeof(junk); i++) junk[i] = 0;
}

static void* clean_worker(void* arg) {
  void** handoff = arg;
  for (int round = 0; round < 200; round++) {
    void* blocks[64];
    for (int i = 0; i < 64; i++) {
      blocks[i] = hk_malloc(16 + (size_t)(i * 37 + round) % 3000);
      memset(blocks[i], i, 16);
    }
    for (int i = 0; i < 64; i++) {
      char* p = hk_realloc(blocks[i], 32 + (size_t)i * 50);
      sink = p[3];
      hk_free(p);
    }
    char* z = hk_calloc(10, 100);
    sink = z[999];
    hk_free(z);
  }
  /* Blocks freed by another thread (remote frees). */
  for (int i = 0; i < 256; i++) {
    if (handoff[i]) sink = ((char*)handoff[i])[0];
    hk_free(handoff[i]);
  }
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "clean";
  if (strcmp(mode, "use-after-free") == 0) {
    char* p = hk_malloc(64);
    memset(p, 1, 64);
    hk_free(p);
    sink = p[10];
  } else if (strcmp(mode, "leak") == 0) {
    leak_one_block();
    scrub_stack();
  } else if (strcmp(mode, "invalid-read") == 0) {
    char* p = hk_malloc(32);
    memset(p, 1, 32);
    sink = p[32];  /* one past the block */
    hk_free(p);
  } else if (strcmp(mode, "clean") == 0) {
    void* handoff[256];
    for (int i = 0; i < 256; i++) {
      handoff[i] = hk_malloc(24 + (size_t)i * 8);
      memset(handoff[i], 7, 24);
    }
    pthread_t t[2];
    pthread_create(&t[0], NULL, clean_worker, handoff);
    void* none[256] = {0};
    pthread_create(&t[1], NULL, clean_worker, none);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    void* big = hk_malloc(1 << 20);
    memset(big, 3, 1 << 20);
    hk_free(big);
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
