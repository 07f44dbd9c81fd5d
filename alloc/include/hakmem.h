/* hakmem public API.
 *
 * hakmem replaces the C allocator when linked (//alloc:hakmem) or preloaded
 * (libhakmem.so): then malloc, free and the rest of the C API are hakmem's.
 * The hk_ functions below are the same allocator under stable names, for code
 * that links hakmem beside another allocator or wants its extensions
 * (statistics, trim). Every function is thread-safe.
 *
 * Errors: allocation failures return NULL and set errno (ENOMEM, or EINVAL for
 * a bad alignment); hk_posix_memalign returns the error code, as POSIX says.
 * Misuse (freeing a pointer hakmem did not hand out, double free, ...) prints
 * one line on stderr naming the error, the pointer and the function, then
 * aborts. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

void* hk_malloc(size_t size);
void* hk_calloc(size_t count, size_t size);
void* hk_realloc(void* p, size_t size);
void* hk_reallocarray(void* p, size_t count, size_t size);
void hk_free(void* p);
void hk_free_sized(void* p, size_t size);
void hk_free_aligned_sized(void* p, size_t alignment, size_t size);
void* hk_aligned_alloc(size_t alignment, size_t size);
int hk_posix_memalign(void** out, size_t alignment, size_t size);
void* hk_memalign(size_t alignment, size_t size);
void* hk_valloc(size_t size);
void* hk_pvalloc(size_t size);
size_t hk_malloc_usable_size(const void* p);

/* Returns 1 when p is a live or free block start, or any address inside memory
 * hakmem manages; 0 otherwise. Never aborts. */
int hk_owns(const void* p);

/* Returns free memory to the OS now, whatever the variant's policies say:
 * this thread's empty spans and the free slots of its segments are advised
 * MADV_DONTNEED (RSS falls at once), segments of exited threads are adopted
 * and trimmed the same way, and every cached empty segment and large mapping
 * is unmapped. Other threads trim their own empty spans on their next
 * allocation slow path (only a heap's owner may touch it); a thread that
 * never allocates again keeps them until it exits. pad is accepted for
 * glibc's malloc_trim signature and ignored: hakmem has no heap top to pad.
 * Returns 1 if memory was released, 0 otherwise (glibc's convention). */
int hk_trim(size_t pad);

/* Tidies this thread's heap without unmapping anything itself: takes in the
 * blocks other threads freed into this thread's spans (until then they count
 * as in use) and retires spans left empty to the segment and its caches, where
 * the release policy decides when memory goes back to the OS. */
void hk_collect(void);

/* ---- statistics ------------------------------------------------------------
 *
 * hk_stats_get(&s) fills a caller-provided struct: it never allocates, takes
 * no lock on any allocation path, and may be called from any thread at any
 * time (not from a signal handler: it takes hakmem's segment-registry spin
 * lock, which a thread mapping or unmapping a segment holds briefly).
 *
 * Where the figures come from: counters that slow paths keep (segments,
 * large mappings, caches, syscalls), per-thread counters each thread bumps on
 * its own (refills, remote frees), and a walk over every segment's span
 * descriptors (bytes in use, per-class figures). Malloc's and free's fast
 * paths keep no counter at all, so nothing here costs them anything.
 *
 * What "consistent" means:
 *   - Every field is a non-negative value that was true at some instant
 *     during the call, or (for sums over threads and spans: bytes_in_use,
 *     bytes_free_in_spans, classes[], thread_refills, remote_frees) the sum of
 *     parts each read at some instant during the call. No value is torn or
 *     wraps, and nothing read can be unmapped while it is read.
 *   - With other threads allocating or freeing during the call, a sum may
 *     differ from the truth at any one instant by the blocks those threads
 *     allocated or freed during the call, and fields are not one atomic
 *     snapshot of each other.
 *   - When no other thread allocates or frees during the call (quiescent),
 *     every field is exact. Always, by construction: bytes_in_use ==
 *     sum(classes[i].blocks_in_use * classes[i].block_size) + large_bytes.
 *   - A block freed by a thread other than the one whose span holds it counts
 *     as in use until that thread collects it (its next allocation slow path,
 *     hk_collect, hk_trim, or its exit). Sizes are whole blocks (what
 *     malloc_usable_size returns), not the sizes programs asked for: counting
 *     requested bytes would need a counter on the fast path. */

#define HK_STATS_CLASSES 96  /* size classes: 16..128 B by 16, then 8 per doubling to 256 KiB */

typedef struct hk_class_stats {
  uint64_t block_size;     /* bytes per block of the class */
  uint64_t blocks_in_use;  /* handed out and not yet back with the span's owner */
  uint64_t blocks_free;    /* carved and free in the class's spans: served without a refill */
  uint64_t spans;          /* spans of the class (each one 256 KiB slot, or up to 8 above 2 KiB) */
} hk_class_stats_t;

typedef struct hk_stats {
  /* Memory, in bytes. */
  uint64_t bytes_in_use;        /* small blocks in use (whole blocks) + bytes of live large blocks (arena pages or mapping) */
  uint64_t bytes_free_in_spans; /* free blocks carved in spans: the threads' caches */
  uint64_t bytes_committed;     /* what may be resident: mapped and not decommitted */
  uint64_t bytes_cached;        /* freed memory kept committed for reuse: free slots, empty segments, free arena pages, big mappings */
  uint64_t bytes_reserved;      /* address space currently mapped from the OS */
  uint64_t bytes_resident;      /* the whole process's resident set (/proc/self/statm), hakmem's or not; 0 without /proc */
  /* Structures. */
  uint64_t segments_live;       /* small-object segments in use (owned or abandoned) */
  uint64_t segments_cached;     /* empty segments kept for reuse */
  uint64_t segments_abandoned;  /* segments whose thread exited, awaiting adoption (or a new thread, whole with their heap) */
  uint64_t large_live;          /* live blocks above 256 KiB (arena runs and own mappings) */
  uint64_t large_bytes;         /* bytes they occupy: whole 64 KiB arena pages, or the mapping */
  uint64_t threads_live;        /* threads with a heap */
  /* Thread caches and cross-thread frees, since the process started. */
  uint64_t thread_refills;      /* allocations that found their thread's span for the class empty (slow path) */
  uint64_t remote_frees;        /* blocks freed by a thread (with a heap) other than their span's owner */
  /* The idle reclaimer (HAKMEM_RECLAIM_THREAD). */
  uint64_t reclaim_running;     /* 1 while its thread runs in this process */
  uint64_t reclaim_wakeups;     /* times it woke up, since the process started */
  /* Syscalls made by the backend, since the process started. */
  uint64_t syscalls_mmap;       /* mmap calls made by the backend */
  uint64_t syscalls_munmap;     /* munmap calls */
  uint64_t syscalls_madvise;    /* madvise calls */
  uint64_t syscalls_madvise_free;     /* madvise calls with MADV_FREE (lazy decommit) */
  uint64_t syscalls_madvise_dontneed; /* madvise calls with MADV_DONTNEED (RSS drops at once) */
  uint64_t syscalls_madvise_hugepage;   /* madvise calls with MADV_HUGEPAGE (HAKMEM_THP=madvise: segments, arena chunks) */
  uint64_t syscalls_madvise_nohugepage; /* madvise calls with MADV_NOHUGEPAGE (HAKMEM_THP=never) */
  uint64_t syscalls_mprotect;   /* mprotect calls */
  uint64_t syscalls_mremap;     /* mremap calls (realloc growing a block above 16 MiB moves its pages, no copy) */
  uint64_t syscalls_mincore;    /* mincore calls (freeing an arena block: which of its pages the program touched) */
  /* The memory limit (HAKMEM_MEMORY_LIMIT_MB), counts since the process started. */
  uint64_t bytes_limit;         /* the soft limit on bytes_committed in force; 0: none */
  uint64_t limit_purges;        /* times committing past it made the caches give memory back first */
  uint64_t bytes_limit_purged;  /* committed bytes those purges gave back */
  uint64_t limit_overruns;      /* times memory was committed past it anyway: nothing (more) the caches could give back */
  /* Contention on the core's locks (none is on malloc's or free's fast
   * path), since the process started: <lock>_contended counts acquisitions
   * that found the lock held, <lock>_sleeps the times a waiter slept in the
   * kernel (it spins only briefly first). */
  uint64_t lock_heaps_contended;        /* the heap pool (thread start and exit) */
  uint64_t lock_heaps_sleeps;
  uint64_t lock_abandoned_contended;    /* the abandoned segments (thread exit, adoption) */
  uint64_t lock_abandoned_sleeps;
  uint64_t lock_registry_contended;     /* the segment registry (segment map and unmap, statistics) */
  uint64_t lock_registry_sleeps;
  uint64_t lock_segments_contended;     /* the empty-segment cache */
  uint64_t lock_segments_sleeps;
  uint64_t lock_free_slots_contended;   /* the free-slot cache (spans of empty slots) */
  uint64_t lock_free_slots_sleeps;
  uint64_t lock_arena_contended;        /* the arena (blocks of 256 KiB - 16 MiB) */
  uint64_t lock_arena_sleeps;
  uint64_t lock_mappings_contended;     /* the cache of big blocks' own mappings */
  uint64_t lock_mappings_sleeps;
  uint64_t lock_prof_contended;         /* the heap profiler */
  uint64_t lock_prof_sleeps;
  uint64_t lock_heap_contended;         /* every thread heap's own lock: its slow paths against another thread giving back an idle heap's emptied spans */
  uint64_t lock_heap_sleeps;
  /* Pointers another allocator made that free() or realloc() were given,
   * since the process started (README "Errors"). */
  uint64_t foreign_glibc_frees;   /* blocks of glibc's own heap handed back to glibc's free */
  uint64_t foreign_ldso_ignored;  /* blocks of ld.so's start-up allocator, left alone (it cannot take them back) */
  /* Small blocks by size class (index = class): block_size is set for every
   * class, the counts are 0 for classes without spans. */
  hk_class_stats_t classes[HK_STATS_CLASSES];
} hk_stats_t;

void hk_stats_get(hk_stats_t* out);

/* Writes the readable statistics report (the one HAKMEM_STATS=1 prints at
 * exit) to file descriptor fd, without allocating: one "hakmem:   name value"
 * line per field, then one line per size class in use. */
void hk_stats_print(int fd);

/* The same statistics as one line of JSON (what HAKMEM_STATS=json prints):
 * an object with the fields above under the same names, plus "hakmem"
 * (version), "variant", "pid" and "classes" (the classes in use). */
void hk_stats_print_json(int fd);

/* ---- runtime control ---------------------------------------------------------
 *
 * The HAKMEM_* variables of README "Configuration", by name, after start-up.
 * hk_option_set parses value exactly as the environment variable would be
 * parsed and, when accepted, stores it; the slow paths that read the
 * setting see it from their next call on (the release delay and cache size
 * when caches are next checked, the decommit mode and resident target when
 * memory next becomes empty, HAKMEM_PROF_SAMPLE and HAKMEM_THREAD_STATS on
 * each thread's next allocation slow path, HAKMEM_STATS at exit). Returns 0, or:
 *   ENOENT  no such variable
 *   EINVAL  value not accepted: reported on stderr with what is accepted,
 *           as at start-up; the current value stays
 *   EPERM   the variable is read only at start-up (README's table says
 *           which: HAKMEM_SHOW_CONFIG)
 * hk_option_get writes the current value, as the variable would spell it,
 * NUL-terminated into buf (len bytes). Returns 0, ENOENT, or ERANGE when it
 * did not fit (buf then holds as much as fits). Both are thread-safe and
 * never allocate. */
int hk_option_set(const char* name, const char* value);
int hk_option_get(const char* name, char* buf, size_t len);

/* ---- heap profile ------------------------------------------------------------
 *
 * With HAKMEM_PROF_SAMPLE=<bytes> (mean bytes between samples; 524288 is
 * meant to stay on: README "Profiling a service" gives its measured cost),
 * hakmem samples allocations and records
 * each sampled block's call stack until it is freed. hk_prof_dump writes the
 * live sampled blocks, per stack, as a gperftools heap profile that pprof
 * (google-pprof) reads: `google-pprof --text --inuse_space program file`.
 * "%p" in path becomes the process id. Callable from any thread, at any
 * time (not from a signal handler that interrupted hakmem itself: that
 * fails with EDEADLK rather than wait for itself). Returns 0, or -1 with
 * errno set. HAKMEM_PROF_FILE=<path> writes one at exit. */
int hk_prof_dump(const char* path);

/* ---- per-thread counters -----------------------------------------------------
 *
 * With HAKMEM_THREAD_STATS=1 (README "Profiling a service"; off by
 * default, switchable with hk_option_set) each thread counts the bytes it
 * allocates and frees, like jemalloc's thread.allocated and
 * thread.deallocated: read them before and after a request and subtract.
 * Bytes are usable bytes (what malloc_usable_size says of the block, not
 * what was asked), so a thread that frees everything it allocated reads
 * allocated == freed. A free counts for the thread that calls free,
 * whichever thread allocated the block; realloc counts as a free of the old
 * block and an allocation of the new one (nothing when the block stays as
 * it is); every allocation function and size counts (calloc, the aligned
 * family, blocks of the arena and mappings).
 *
 * A thread starts counting, from 0, at its first allocation slow path or
 * hk_thread_stats call after the option became 1, and stops at the first
 * one after it became 0 (or when the thread exits); counting again starts
 * from 0 again. The counters are the calling thread's own: no other thread
 * can read them. Cost: none while off; while on, every malloc and free of
 * a counting thread leaves the fast path for a counted one (README gives
 * the measured cost).
 *
 * Returns 0 and fills *out, or (with *out zeroed):
 *   EINVAL   out is NULL (nothing written)
 *   ENOTSUP  HAKMEM_THREAD_STATS is 0 */
typedef struct hk_thread_stats {
  uint64_t allocated;  /* usable bytes of the blocks this thread allocated since it started counting */
  uint64_t freed;      /* usable bytes of the blocks it freed since then (whoever allocated them) */
} hk_thread_stats_t;

int hk_thread_stats(hk_thread_stats_t* out);

/* The library's version string, e.g. "hakmem 0.1.0". Also a marker tests use to
 * prove hakmem is the allocator in a process. */
const char* hk_version(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_H */
