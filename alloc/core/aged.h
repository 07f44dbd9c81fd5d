/* The aged cache: memory that became free is kept for reuse, remembers when
 * it became free, and goes back to the OS oldest first once the release
 * policy says it waited long enough or the caches hold too much. One
 * mechanism for every kind of freed memory: empty segments (segment.c), free
 * arena runs (arena.c) and freed big mappings (mapping.c) each keep one cache.
 *
 * A cache does not know what its entries are: the owner embeds an
 * hk_aged_entry in whatever it keeps and gives the cache a give_back function
 * (the dependency points down: this floor calls the owner only through that
 * pointer). Each cache has its own lock, which its owner may also use for the
 * owner's structures (the arena does). Every cache joins a process-wide list
 * on its first use, so hk_aged_tick, hk_aged_trim_all and the fork handlers
 * reach them all.
 *
 * Slow paths only: malloc's and free's fast paths never come here. */
#ifndef HAKMEM_CORE_AGED_H
#define HAKMEM_CORE_AGED_H

#include "alloc/core/base.h"
#include "alloc/core/lock.h"

HK_HIDDEN_BEGIN
typedef struct hk_aged_entry {
  struct hk_aged_entry* newer; /* toward the newest entry; NULL at it */
  struct hk_aged_entry* older; /* toward the oldest entry; NULL at it */
  uint64_t since_ms;           /* when it became free (hk_now_ms) */
  uint64_t bytes;              /* what it counts in cached_bytes while cached */
} hk_aged_entry;

typedef struct hk_aged_cache hk_aged_cache;

struct hk_aged_cache {
  const char* name;                       /* for statistics and tests */
  /* Gives e (already out of the cache, lock held) back to the OS. False when
   * the backend refused: e goes back in as the oldest and the sweep stops. */
  bool (*give_back)(hk_aged_entry* e);
  /* Optional: called (lock held) after a trim swept the cache, for what the
   * owner holds outside its entries (the arena: chunks whose unmapping the
   * backend refused before). */
  void (*trimmed)(void);
  hk_lock_t lock;                         /* guards the list and the owner's entries */
  hk_aged_entry* newest;
  hk_aged_entry* oldest;
  uint64_t entries;                       /* entries cached (lock held) */
  _Atomic uint64_t due_ms;                /* when the oldest entry is due by time alone; 0: never or empty. Written under the lock, read without it by hk_aged_tick */
  _Atomic int joined;                     /* 0, 1 while joining, 2 once on the process-wide list */
  hk_aged_cache* next_cache;              /* process-wide list, written once when joining */
};

/* A cache's static initializer. */
#define HK_AGED_CACHE(name_, give_back_, trimmed_) HK_AGED_CACHE_KIND(name_, give_back_, trimmed_, HK_LOCK_OTHER)
/* The same, with its lock counted as `kind_` (hk_lock_kind) in the statistics. */
#define HK_AGED_CACHE_KIND(name_, give_back_, trimmed_, kind_) \
  {.name = (name_), .give_back = (give_back_), .trimmed = (trimmed_), .lock = HK_LOCK_INIT(kind_)}

/* Puts c on the process-wide list (once; hk_aged_lock does it). */
void hk_aged_join(hk_aged_cache* c);
/* Takes c's lock. A cache joins the list before its lock is first taken, so
 * the fork handlers never miss a held lock. */
HK_INLINE void hk_aged_lock(hk_aged_cache* c) {
  if (hk_unlikely(atomic_load_explicit(&c->joined, memory_order_acquire) != 2)) hk_aged_join(c);
  hk_lock(&c->lock);
}
HK_INLINE void hk_aged_unlock(hk_aged_cache* c) { hk_unlock(&c->lock); }

/* ---- lock held -------------------------------------------------------- */
/* Adds e, free since since_ms and counting `bytes`, in age order (usually as
 * the newest). */
void hk_aged_push(hk_aged_cache* c, hk_aged_entry* e, uint64_t bytes, uint64_t since_ms);
/* Takes e out of the cache (for reuse, or because it changed). */
void hk_aged_remove(hk_aged_cache* c, hk_aged_entry* e);
/* Gives back the oldest entries while the release policy wants them (or all
 * of them with `all`), stopping at the first the backend refuses. */
void hk_aged_sweep(hk_aged_cache* c, uint64_t now, bool all);

/* ---- no lock held ----------------------------------------------------- */
/* Sweeps every cache whose oldest entry is due by `now` (0: read the clock
 * only if one is due). One relaxed load per cache while nothing waits:
 * called on slow-path frees so memory goes back even when the program stops
 * allocating. */
void hk_aged_tick(uint64_t now);
/* Gives back everything every cache holds (trim). */
void hk_aged_trim_all(void);
/* The memory limit's pressure handler (os.h, registered by init.c): gives
 * back the oldest entries across all caches, whichever cache holds them,
 * until `bytes` committed bytes went back or nothing is left; returns what
 * went back. Never waits for a cache lock: caches locked by anyone (the
 * calling thread included) are left out, so it may be called with a cache's
 * lock held. */
uint64_t hk_aged_purge(uint64_t bytes);
/* Fork handlers: every cache's lock. */
void hk_aged_fork(hk_fork_step step);

/* ---- the reclaimer's side (reclaim.c) -------------------------------------- */
/* True once anything has waited in any cache. */
bool hk_aged_something_waited(void);
/* The earliest due time over all caches (monotonic ms), 0 when none. */
uint64_t hk_aged_next_due(void);
/* Sleeps until deadline_ms (0: until woken) or until a cache becomes due
 * earlier than that, or hk_aged_wake. May return early; never holds a lock. */
void hk_aged_wait(uint64_t deadline_ms);
/* Wakes a thread sleeping in hk_aged_wait. */
void hk_aged_wake(void);
HK_HIDDEN_END

#endif
