#include "alloc/core/aged.h"

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

static void update_due(hk_aged_cache* c) {
  uint64_t due = c->oldest ? due_after(c->oldest->since_ms) : 0;
  atomic_store_explicit(&c->due_ms, due, memory_order_relaxed);
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
  if (c->oldest == e) update_due(c);
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
    if (!all && !release_wanted(e, now)) break;
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
