/* Process start-up and fork handling. hakmem initializes on the first
 * slow-path allocation (which may come from the dynamic loader, a
 * constructor or TLS set-up before main) or at load, whichever is first.
 * Initialization never allocates; entry points call hk_ensure_init before
 * they need the class table or the options. */
#ifndef HAKMEM_CORE_INIT_H
#define HAKMEM_CORE_INIT_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
void hk_init_slow(void);
extern _Atomic int hk_init_state;  /* 0 none, 1 running, 2 done */
HK_INLINE void hk_ensure_init(void) {
  if (hk_unlikely(atomic_load_explicit(&hk_init_state, memory_order_acquire) != 2)) hk_init_slow();
}
HK_HIDDEN_END

#endif
