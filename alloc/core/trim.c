/* hk_trim (and through it malloc_trim): give free memory back to the OS now.
 *
 * What is free, and who may return it:
 *   - the calling thread's empty spans, the pages of its spans past their
 *     last live block, and the free slots of its segments: the caller,
 *     directly;
 *   - segments of exited threads (abandoned): the caller adopts them, which
 *     also collects the blocks other threads freed into them;
 *   - the aged caches (empty segments, free arena runs, big mappings):
 *     global, under their locks;
 *   - other live threads' empty spans: only their owner may touch them, so
 *     hk_trim bumps hk_trim_epoch and each such thread trims itself on its
 *     next allocation slow path (heap.c). A thread that never allocates again
 *     keeps its empty spans until it exits.
 * Free slots are advised MADV_DONTNEED whatever the variant's decommit mode:
 * a caller of malloc_trim wants RSS to fall now, and MADV_FREE pages stay
 * resident until the kernel is short of memory. Cached memory is unmapped
 * whatever the release policy's delay: trim means now.
 *
 * Never called on a fast path; costs one madvise per run of free slots and
 * one munmap per cached segment or mapping. */
#include "alloc/backends/backend.h"
#include "alloc/core/aged.h"
#include "alloc/core/counters.h"
#include "alloc/core/heap.h"
#include "alloc/core/init.h"
#include "alloc/core/segment.h"
#include "alloc/core/thread.h"
#include "alloc/include/hakmem.h"

int hk_trim(size_t pad) {
  /* pad is glibc's "leave this much at the top of the heap"; hakmem has no
   * heap top (memory comes in 4 MiB segments), so it has nothing to apply to. */
  (void)pad;
  hk_ensure_init();
  uint64_t committed_before = hk_stat_read(&hk_stat.committed_bytes);
  uint64_t reserved_before = hk_os_read(reserved_bytes);
  hk_heaps_request_trim();

  /* Exited threads' parked heaps join the abandoned segments, which this
   * thread adopts below. */
  hk_threads_release_parked();
  hk_heap* heap = hk_tls.heap;
  if (!heap->is_live && hk_abandoned_segments() != 0) heap = hk_thread_heap();
  if (heap != NULL && heap->is_live) {
    /* Adopted segments whose blocks are all free are released by the
     * collect inside hk_heap_trim; the rest keep their live blocks here. */
    while (hk_heap_adopt_one(heap)) {}
    hk_heap_trim(heap);
    hk_thread_exit_release(heap);
  } else {
    hk_aged_trim_all();
  }

  /* Released: fewer bytes committed or mapped. (Slots an earlier MADV_FREE
   * left resident already count as decommitted, so advising them again
   * lowers RSS without changing these figures, and returns 0.) */
  uint64_t committed_after = hk_stat_read(&hk_stat.committed_bytes);
  return committed_after < committed_before || hk_os_read(reserved_bytes) < reserved_before;
}
