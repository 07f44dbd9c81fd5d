#include "alloc/core/aged.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc/core/clock.h"
#include "alloc/core/counters.h"
#include "alloc/core/options.h"
#include "alloc/core/os.h"

/* Every cache that has been used, newest first; entries are never removed
 * (caches are static objects), so readers walk it without a lock. */
static _Atomic(hk_aged_cache*) hk_aged_caches;

void hk_aged_join(hk_aged_cache* c) {
  int state = 0;
  if (!atomic_compare_exchange_strong_explicit(&c->joined, &state, 1, memory_order_acquire, memory_order_acquire)) {
    /* Another thread is joining it: wait until the cache is on the list, so
     * nobody takes its lock before the fork handlers can see it. */
    while (atomic_load_explicit(&c->joined, memory_order_acquire) != 2) {}
    return;
  }
  hk_aged_cache* head = atomic_load_explicit(&hk_aged_caches, memory_order_relaxed);
  do {
    c->next_cache = head;
    /* release: a walker that sees c sees its next_cache. */
  } while (!atomic_compare_exchange_weak_explicit(&hk_aged_caches, &head, c, memory_order_release,
                                                  memory_order_relaxed));
  atomic_store_explicit(&c->joined, 2, memory_order_release);
}

/* When an entry free since since_ms is due for release by time alone under
 * the linked release policy (0: never). */
static uint64_t due_after(uint64_t since_ms) {
  uint64_t hold = hk_active->release->hold_ms(&hk_options.params);
  if (hold == HK_HOLD_FOREVER || hold > UINT64_MAX - 1 - since_ms) return 0;
  uint64_t due = since_ms + hold;
  return due != 0 ? due : 1;  /* 0 would read as "nothing waits" */
}

/* ---- waiting for the next due time (the reclaimer, reclaim.c) ---------- */
/* The reclaimer sleeps on hk_aged_signal until the earliest due time it saw;
 * whoever makes a cache due earlier than that wakes it. Dekker-style: the
 * waker stores the due time then loads the deadline, the sleeper stores the
 * deadline then loads the due times, both sequentially consistent, so one
 * of the two always sees the other. */
static _Atomic uint32_t hk_aged_signal;       /* futex word: bumped on every wake-up */
static _Atomic uint64_t hk_aged_sleep_until;  /* the sleeper's deadline (UINT64_MAX: none, sleeps until woken); 0: nobody sleeps */
static _Atomic int hk_aged_waiting;           /* 1 once any entry has waited in any cache */

static void futex_wake(_Atomic uint32_t* word) {
  syscall(SYS_futex, (uint32_t*)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void update_due(hk_aged_cache* c) {
  uint64_t due = c->oldest ? due_after(c->oldest->since_ms) : 0;
  atomic_store_explicit(&c->due_ms, due, memory_order_seq_cst);
  if (due == 0) return;
  if (!atomic_load_explicit(&hk_aged_waiting, memory_order_relaxed))
    atomic_store_explicit(&hk_aged_waiting, 1, memory_order_relaxed);
  uint64_t until = atomic_load_explicit(&hk_aged_sleep_until, memory_order_seq_cst);
  if (until != 0 && due < until) {
    atomic_fetch_add_explicit(&hk_aged_signal, 1, memory_order_seq_cst);
    futex_wake(&hk_aged_signal);
  }
}

bool hk_aged_something_waited(void) { return atomic_load_explicit(&hk_aged_waiting, memory_order_relaxed) != 0; }

uint64_t hk_aged_next_due(void) {
  uint64_t first = 0;
  for (hk_aged_cache* c = atomic_load_explicit(&hk_aged_caches, memory_order_acquire); c; c = c->next_cache) {
    uint64_t due = atomic_load_explicit(&c->due_ms, memory_order_seq_cst);
    if (due != 0 && (first == 0 || due < first)) first = due;
  }
  return first;
}

void hk_aged_wait(uint64_t deadline_ms) {
  uint32_t seen = atomic_load_explicit(&hk_aged_signal, memory_order_seq_cst);
  atomic_store_explicit(&hk_aged_sleep_until, deadline_ms ? deadline_ms : UINT64_MAX, memory_order_seq_cst);
  uint64_t due = hk_aged_next_due();
  if (due == 0 || (deadline_ms != 0 && due >= deadline_ms)) {
    struct timespec rel, *timeout = NULL;
    if (deadline_ms != 0) {
      uint64_t now = hk_now_ms();
      uint64_t left = deadline_ms > now ? deadline_ms - now : 0;
      rel.tv_sec = (time_t)(left / 1000);
      rel.tv_nsec = (long)(left % 1000) * 1000000L;
      timeout = &rel;
    }
    if (timeout == NULL || timeout->tv_sec != 0 || timeout->tv_nsec != 0)
      syscall(SYS_futex, (uint32_t*)&hk_aged_signal, FUTEX_WAIT_PRIVATE, seen, timeout, NULL, 0);
  }
  atomic_store_explicit(&hk_aged_sleep_until, 0, memory_order_seq_cst);
}

void hk_aged_wake(void) {
  atomic_fetch_add_explicit(&hk_aged_signal, 1, memory_order_seq_cst);
  futex_wake(&hk_aged_signal);
}

/* Whether the oldest entry of a cache goes back now. The release policy
 * says when: once it has been idle for the delay, or at once while the
 * caches together hold more than the cap. Going back by age stops at the
 * resident target: the decommit policy says how many bytes the process is
 * above it, and an entry due only by age stays while that is none. */
static bool release_wanted(const hk_aged_entry* e, uint64_t now) {
  const hk_release_policy* policy = hk_active->release;
  uint64_t idle = now > e->since_ms ? now - e->since_ms : 0;
  uint64_t cached = hk_stat_read(&hk_stat.cached_bytes);
  if (!policy->release_oldest(&hk_options.params, cached, idle)) return false;
  bool forced = policy->release_oldest(&hk_options.params, cached, 0);  /* whatever its age: over the cap */
  /* An entry holding nothing committed (an empty segment whose slots were
   * all decommitted) only holds address space: it goes by age alone. */
  return forced || e->bytes == 0 || hk_os_decommit_wanted(e->bytes) != 0;
}

void hk_aged_push(hk_aged_cache* c, hk_aged_entry* e, uint64_t bytes, uint64_t since_ms) {
  e->since_ms = since_ms;
  e->bytes = bytes;
  /* Find the newest entry not younger than e: usually none to skip. */
  hk_aged_entry* older = c->newest;
  hk_aged_entry* newer = NULL;
  while (older != NULL && older->since_ms > since_ms) {
    newer = older;
    older = older->older;
  }
  e->older = older;
  e->newer = newer;
  if (older) older->newer = e; else c->oldest = e;
  if (newer) newer->older = e; else c->newest = e;
  c->entries++;
  hk_stat_add(&hk_stat.cached_bytes, (int64_t)bytes);
  /* A new oldest entry, or a parked cache (hk_aged_sweep) looking again. */
  if (c->oldest == e || atomic_load_explicit(&c->due_ms, memory_order_relaxed) == 0) update_due(c);
}

void hk_aged_remove(hk_aged_cache* c, hk_aged_entry* e) {
  bool was_oldest = c->oldest == e;
  if (e->newer) e->newer->older = e->older; else c->newest = e->older;
  if (e->older) e->older->newer = e->newer; else c->oldest = e->newer;
  e->newer = e->older = NULL;
  c->entries--;
  hk_stat_add(&hk_stat.cached_bytes, -(int64_t)e->bytes);
  if (was_oldest) update_due(c);
}

void hk_aged_sweep(hk_aged_cache* c, uint64_t now, bool all) {
  while (c->oldest != NULL) {
    hk_aged_entry* e = c->oldest;
    if (!all && !release_wanted(e, now)) {
      /* Due by age but kept (the process is at its resident target): park
       * the cache until its next push or removal looks again, so nothing
       * wakes up for it in the meantime. */
      if (now >= atomic_load_explicit(&c->due_ms, memory_order_relaxed))
        atomic_store_explicit(&c->due_ms, 0, memory_order_seq_cst);
      break;
    }
    hk_aged_remove(c, e);
    if (!c->give_back(e)) {
      hk_aged_push(c, e, e->bytes, e->since_ms);  /* back as the oldest: tried again later */
      break;
    }
  }
}

void hk_aged_tick(uint64_t now) {
  for (hk_aged_cache* c = atomic_load_explicit(&hk_aged_caches, memory_order_acquire); c; c = c->next_cache) {
    uint64_t due = atomic_load_explicit(&c->due_ms, memory_order_relaxed);
    if (due == 0) continue;
    if (now == 0) now = hk_now_ms();
    if (now < due) continue;
    hk_aged_lock(c);
    hk_aged_sweep(c, now, false);
    hk_aged_unlock(c);
  }
}

void hk_aged_trim_all(void) {
  for (hk_aged_cache* c = atomic_load_explicit(&hk_aged_caches, memory_order_acquire); c; c = c->next_cache) {
    hk_aged_lock(c);
    hk_aged_sweep(c, 0, true);
    if (c->trimmed) c->trimmed();
    hk_aged_unlock(c);
  }
}

void hk_aged_fork(hk_fork_step step) {
  for (hk_aged_cache* c = atomic_load_explicit(&hk_aged_caches, memory_order_acquire); c; c = c->next_cache)
    hk_lock_fork(&c->lock, step);
}

/* ---- the memory limit's purge ---------------------------------------------
 * Called by the OS floor (os.c, through the pointer init.c registered) when
 * committing more would pass the memory limit. The caller may hold a cache's
 * lock (the arena maps a chunk under its own; a cached mapping is committed
 * under the mapping cache's), and two threads may each hold one cache's lock
 * and come here at once. So the purge never waits for a cache lock: it
 * try-locks each cache and leaves out those it cannot take, the caller's own
 * included (the lock is not recursive, so the try fails). A thread that
 * waits for nothing cannot be part of a deadlock; the only lock a give_back
 * takes while we hold cache locks is the segment registry's, which its
 * holders take last and hold without calling anything that locks. A cache
 * left out keeps its entries: the limit is soft. */
#define HK_AGED_PURGE_CACHES 16  /* more caches than hakmem has */

uint64_t hk_aged_purge(uint64_t bytes) {
  hk_aged_cache* held[HK_AGED_PURGE_CACHES];
  bool refused[HK_AGED_PURGE_CACHES];
  unsigned n = 0;
  for (hk_aged_cache* c = atomic_load_explicit(&hk_aged_caches, memory_order_acquire); c && n < HK_AGED_PURGE_CACHES;
       c = c->next_cache) {
    if (hk_trylock(&c->lock)) {
      refused[n] = false;
      held[n++] = c;
    }
  }
  uint64_t given = 0;
  while (given < bytes) {
    /* The oldest entry of all the caches held. */
    unsigned pick = n;
    for (unsigned i = 0; i < n; i++) {
      if (refused[i] || held[i]->oldest == NULL) continue;
      if (pick == n || held[i]->oldest->since_ms < held[pick]->oldest->since_ms) pick = i;
    }
    if (pick == n) break;
    hk_aged_cache* c = held[pick];
    hk_aged_entry* e = c->oldest;
    hk_aged_remove(c, e);
    uint64_t before = hk_stat_read(&hk_stat.committed_bytes);
    if (!c->give_back(e)) {
      hk_aged_push(c, e, e->bytes, e->since_ms);  /* back as the oldest, as a sweep does */
      refused[pick] = true;
      continue;
    }
    /* What the entry held committed (other threads may move the count too:
     * then this purges a little more or less than asked, as a soft limit may). */
    uint64_t after = hk_stat_read(&hk_stat.committed_bytes);
    given += before > after ? before - after : 0;
  }
  for (unsigned i = 0; i < n; i++) hk_aged_unlock(held[i]);
  return given;
}
