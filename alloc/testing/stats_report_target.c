/* Leaves a known set of blocks allocated and exits, so the HAKMEM_STATS report
 * printed at exit has figures the test can check:
 *
 *   stats_report_target SMALL LARGE   SMALL blocks of 64 B, LARGE of 1 MiB
 *
 * Links //alloc:hakmem_api: the blocks come from hk_malloc, so the test runs
 * unchanged under ASan and TSan, whose runtimes keep malloc. */
#include <stdlib.h>
#include <string.h>

#include "alloc/include/hakmem.h"

int main(int argc, char** argv) {
  long small = argc > 1 ? atol(argv[1]) : 0;
  long large = argc > 2 ? atol(argv[2]) : 0;
  for (long i = 0; i < small; i++) memset(hk_malloc(64), 1, 64);
  for (long i = 0; i < large; i++) memset(hk_malloc(1 << 20), 1, 4096);
  return 0;  /* the blocks stay allocated: the report at exit counts them */
}
