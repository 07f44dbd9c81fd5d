/* The example variant is what a program linking :hakmem_api_bursty gets:
 * its name in the statistics report, and its capped release module keeping a
 * freed burst cached however long ago it was freed. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc/include/hakmem.h"

int main(void) {
  int fds[2];
  char report[8192] = {0};
  if (pipe(fds) != 0) return 2;
  hk_stats_print(fds[1]);
  close(fds[1]);
  ssize_t n = read(fds[0], report, sizeof(report) - 1);
  if (n <= 0 || strstr(report, "variant bursty") == NULL) {
    fprintf(stderr, "FAIL: the statistics report does not name variant bursty:\n%s\n", report);
    return 1;
  }

  static void* blocks[4096];
  for (int i = 0; i < 4096; i++) blocks[i] = hk_malloc(3000);
  for (int i = 0; i < 4096; i++) hk_free(blocks[i]);
  struct timespec ts = {0, 200 * 1000000L};
  nanosleep(&ts, NULL);
  void* late = hk_malloc(1 << 20);  /* a large free after the pause runs the release clock */
  hk_free(late);
  hk_stats_t s;
  hk_stats_get(&s);
  if (s.bytes_cached < (8u << 20)) {
    fprintf(stderr, "FAIL: capped release kept only %llu bytes of a 12 MB burst\n",
            (unsigned long long)s.bytes_cached);
    return 1;
  }
  printf("bursty: variant linked, %llu bytes kept cached\n", (unsigned long long)s.bytes_cached);
  return 0;
}
