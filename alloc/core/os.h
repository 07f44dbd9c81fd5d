/* The OS floor: the only caller of the backend (hk_active->backend, named by
 * the linked variant), and the only writer of the committed-bytes counter,
 * which changes only when the backend call succeeded. Every function returns
 * the backend's 0 or errno value.
 *
 * `counted` arguments say how many of the call's bytes change the committed
 * count: a caller decommitting a run of slots some of which were decommitted
 * already passes only the others, so the count stays what may really be
 * resident.
 *
 * Also here: the decommit policy's question, since it is asked about the
 * committed count this floor keeps. Slow paths only. */
#ifndef HAKMEM_CORE_OS_H
#define HAKMEM_CORE_OS_H

#include "alloc/core/base.h"
#include "alloc/core/policy.h"

HK_HIDDEN_BEGIN
/* Maps size bytes aligned to align; `counted` of them count as committed
 * from now on (a header the caller will touch, or a whole mapping). */
int hk_os_reserve(size_t size, size_t align, void** out, size_t counted);
/* Makes [p, p+size) usable again; `counted` bytes of it were not committed. */
int hk_os_commit(void* p, size_t size, size_t counted);
/* Gives the contents of [p, p+size) back, keeping it mapped. */
int hk_os_decommit(void* p, size_t size, hk_decommit_mode mode, size_t counted);
/* Unmaps [p, p+size). */
int hk_os_release(void* p, size_t size, size_t counted);
/* Moves the pages of [old, old+old_size) to dst (reserved with nothing
 * counted, new_size >= old_size bytes) without copying; the committed count
 * grows by new_size - old_size. ENOSYS when the backend cannot move. */
int hk_os_move(void* old, size_t old_size, void* dst, size_t new_size);

/* How many of `bytes` that just became empty the decommit policy wants
 * decommitted now (0..bytes), given what is committed. */
size_t hk_os_decommit_wanted(size_t bytes);
/* The mode memory is decommitted with when the policy wants it back. */
hk_decommit_mode hk_os_decommit_mode(void);
HK_HIDDEN_END

#endif
