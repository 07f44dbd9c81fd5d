/* A program built outside Bazel against an installed hakmem (tools/install.sh)
 * with nothing but `pkg-config --cflags --libs hakmem`: proves hakmem is the
 * allocator of the whole process, also for allocations libc makes itself. */
#define _GNU_SOURCE
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  void* p = malloc(100);
  char* s = strdup("made by libc's strdup");
  void* big = malloc(10 << 20);
  int ok = hk_owns(p) && hk_owns(s) && hk_owns(big);
  hk_stats_t st;
  hk_stats_get(&st);
  printf("%s: malloc %s hakmem's, %llu bytes in use\n", hk_version(), ok ? "is" : "is NOT",
         (unsigned long long)st.bytes_in_use);
  free(p);
  free(s);
  free(big);
  return ok ? 0 : 1;
}
