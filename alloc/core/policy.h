/* The core's policy interface: small vtables the core consults on its slow paths only
 * (span retired, segment emptied, cache trimmed, thread heap created). Never
 * on malloc's or free's fast path. Modules decide; the core does (they never
 * call the backend themselves).
 *
 * A variant (alloc/policies/variant_*.c) names one backend and one module of
 * each kind, plus the parameter defaults they read; exactly one variant is
 * linked into a build target (alloc/variants.bzl). HAKMEM_* environment
 * variables may override the parameters at start-up (alloc/core/options.c). */
#ifndef HAKMEM_POLICIES_POLICY_H
#define HAKMEM_POLICIES_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/backends/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What hakmem tells the kernel about transparent huge pages for the memory
 * it fills densely (segments, arena chunks). */
typedef enum hk_thp_mode {
  HK_THP_DEFAULT = 0,  /* no advice: the kernel's mode (/sys/kernel/mm/transparent_hugepage/enabled) decides */
  HK_THP_NEVER = 1,    /* MADV_NOHUGEPAGE on every reservation of 2 MiB or more: RSS follows what is touched even under "always" */
  HK_THP_MADVISE = 2,  /* MADV_HUGEPAGE on segments and arena chunks: fewer TLB misses and page faults, RSS in 2 MiB steps */
} hk_thp_mode;

/* hk_params.memory_limit_mb: take the limit of the process's own cgroup
 * (v2 memory.max, v1 memory.limit_in_bytes), read once at start-up. */
#define HK_MEMORY_LIMIT_CGROUP UINT64_MAX

/* Parameters every module may read. Units are in the names. */
typedef struct hk_params {
  hk_decommit_mode decommit_mode; /* how free slots go back while their segment stays mapped (arena runs: always DONTNEED) */
  uint64_t release_delay_ms;      /* empty memory idle this long is returned */
  uint64_t cache_mb;              /* empty segments + large mappings kept for reuse */
  uint64_t resident_target_mb;    /* freed memory past its delay goes back while more than this is committed */
  uint64_t prewarm_kb;            /* bytes a new thread may fault in early, at most */
  uint64_t reclaim_thread;        /* 1: a background thread gives freed memory back on time while the program idles */
  uint64_t park_grace_ms;         /* an exited thread's heap waits at least this long for a new thread to take it whole before running threads may adopt its segments (thread.c waits longer while recent take-overs did) */
  uint64_t heap_idle_ms;          /* a live thread without an allocation slow path this long is idle: spans of its heap emptied by other threads' frees are given back by the threads that grow (0: never) */
  uint64_t parked_max;            /* exited threads' heaps kept waiting at most; past it the oldest is given up at once (0: none wait, every exiting thread's segments are abandoned) */
  /* Read by the core (os.c), not by modules. */
  uint64_t memory_limit_mb;       /* soft limit on committed memory: past it, what the aged caches hold goes back first (0: none; HK_MEMORY_LIMIT_CGROUP) */
  hk_thp_mode thp;                /* transparent huge page advice */
  /* Not settable from the environment: the shape of what each variant keeps warm. */
  uint64_t span_keep_kb;          /* a class's current span carved at most this far is kept when it empties */
} hk_params;

/* One bit per hk_params field. Each module lists the fields it reads, so
 * HAKMEM_SHOW_CONFIG can say which settings the linked variant ignores. */
enum {
  HK_READS_DECOMMIT_MODE = 1u << 0,
  HK_READS_RELEASE_DELAY = 1u << 1,
  HK_READS_CACHE = 1u << 2,
  HK_READS_RESIDENT_TARGET = 1u << 3,
  HK_READS_PREWARM = 1u << 4,
};

/* hold_ms value meaning "time alone never releases an entry". */
#define HK_HOLD_FOREVER UINT64_MAX

/* What to do with empty memory the core holds in its caches (empty segments,
 * freed large mappings). */
typedef struct hk_release_policy {
  const char* name;
  unsigned reads;  /* HK_READS_* */
  /* The caches hold cached_bytes in total; the oldest entry of the cache
   * being trimmed has been idle idle_ms. True: return that entry to the
   * backend now. */
  bool (*release_oldest)(const hk_params* p, uint64_t cached_bytes, uint64_t idle_ms);
  /* How long an entry may stay idle before release_oldest says yes whatever
   * the cache holds (HK_HOLD_FOREVER: never by time alone). The core uses it
   * to know when to look again, so a program that stops allocating still sees
   * its memory go back on its next slow-path free or hk_trim. */
  uint64_t (*hold_ms)(const hk_params* p);
} hk_release_policy;

/* How much freed memory the process is above its resident target by. The
 * aged caches ask it about memory whose release delay has passed: such
 * memory goes back (decommitted with params.decommit_mode, or unmapped)
 * only while the answer is not 0, so the target is the floor that purging
 * by age works down to. Memory over the cache cap goes back regardless. */
typedef struct hk_decommit_policy {
  const char* name;
  unsigned reads;  /* HK_READS_* */
  /* `bytes` of freed memory are due, with committed_bytes committed in total
   * (they included). Returns how many of them to give back, 0..bytes. */
  size_t (*decommit_bytes)(const hk_params* p, size_t bytes, uint64_t committed_bytes);
} hk_decommit_policy;

/* What a new thread heap faults in before its first allocation is served. */
typedef struct hk_prewarm_policy {
  const char* name;
  unsigned reads;  /* HK_READS_* */
  /* Bytes of blocks of class_size bytes to carve and touch at thread start,
   * asked once per size class, smallest first; the core stops once
   * prewarm_kb is spent. 0: nothing. */
  size_t (*thread_bytes)(const hk_params* p, size_t class_size);
} hk_prewarm_policy;

typedef struct hk_variant {
  const char* name;                  /* shown by HAKMEM_SHOW_CONFIG and the statistics report */
  const hk_backend* backend;         /* the OS layer */
  const hk_release_policy* release;  /* when cached empty memory is unmapped */
  const hk_decommit_policy* decommit; /* whether empty memory stays resident */
  const hk_prewarm_policy* prewarm;  /* what a new thread faults in early */
  hk_params params;                  /* this variant's defaults */
} hk_variant;

/* Defined by the one variant file linked into the build target. */
extern const hk_variant hk_variant_linked;

/* The modules variants are built from (the .c files of alloc/policies). */
extern const hk_release_policy hk_release_immediate;  /* return empty memory at once */
extern const hk_release_policy hk_release_delayed;    /* after release_delay_ms idle, or over cache_mb */
extern const hk_release_policy hk_release_capped;     /* keep up to cache_mb, however long */
extern const hk_decommit_policy hk_decommit_never;     /* empty memory stays resident */
extern const hk_decommit_policy hk_decommit_to_target; /* decommit while over resident_target_mb */
extern const hk_prewarm_policy hk_prewarm_none;
extern const hk_prewarm_policy hk_prewarm_hot_classes; /* first page of the smallest classes */

#ifdef __cplusplus
}
#endif

#endif
