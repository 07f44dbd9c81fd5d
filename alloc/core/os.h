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
 * committed count this floor keeps; the memory limit, enforced before the
 * count grows; transparent huge page advice. Slow paths only.
 *
 * Memory limit: before reserve, commit or move would take the committed
 * count past the limit (HAKMEM_MEMORY_LIMIT_MB), the pressure handler is
 * asked to give back that many bytes. This floor cannot call the aged caches
 * (they are above it), so the handler is a pointer init.c registers
 * (hk_aged_purge). Callers may hold locks when they reserve or commit (the
 * arena reserves a chunk under its cache's lock, a cached mapping is
 * committed under the mapping cache's lock): the handler must never wait
 * for a lock such a caller can hold (see hk_aged_purge). The limit is soft:
 * the call goes ahead whatever the handler gave back. */
#ifndef HAKMEM_CORE_OS_H
#define HAKMEM_CORE_OS_H

#include "alloc/core/base.h"
#include "alloc/core/policy.h"

HK_HIDDEN_BEGIN
/* The size of a transparent huge page on x86-64 and arm64 (4 KiB pages). */
#define HK_HUGE_PAGE ((size_t)2 << 20)

/* Maps size bytes aligned to align; `counted` of them count as committed
 * from now on (a header the caller will touch, or a whole mapping). With
 * HAKMEM_THP=never a reservation of a huge page or more gets
 * MADV_NOHUGEPAGE. */
int hk_os_reserve(size_t size, size_t align, void** out, size_t counted);
/* [p, p+size) is dense: used from end to end (a segment with most of its
 * slots taken, an arena run of a huge page or more). With HAKMEM_THP=madvise
 * it gets MADV_HUGEPAGE; nothing otherwise. Sparse memory never gets it, so
 * a segment with a few live spans does not pull in 2 MiB per touched page. */
void hk_os_advise_dense(void* p, size_t size);
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
/* Advice about [p, p+size) (counted in the statistics like every madvise);
 * ENOSYS when the backend takes none. */
int hk_os_advise(void* p, size_t size, hk_advice advice);
/* vec[i], one byte per OS page of [p, p+size): bit 0 set where the page is
 * resident. False (vec unset) when the backend cannot tell or failed. */
bool hk_os_resident(void* p, size_t size, unsigned char* vec);

/* Asked to give back at least `bytes` committed bytes; returns how many it
 * gave back (0: nothing was left, or nothing it could reach). */
typedef uint64_t (*hk_os_pressure_fn)(uint64_t bytes);
/* Registers the memory limit's pressure handler (NULL: none). */
void hk_os_set_pressure_handler(hk_os_pressure_fn fn);
/* The limit on committed bytes (0: none). hk_os_limit_init sets it from
 * params.memory_limit_mb at start-up, reading the cgroup's limit for
 * HK_MEMORY_LIMIT_CGROUP; tests set it directly. */
void hk_os_set_memory_limit(uint64_t bytes);
uint64_t hk_os_memory_limit(void);
void hk_os_limit_init(void);
/* The memory limit of the process's cgroup, from a /proc/self/cgroup file
 * and the directory cgroup file systems are mounted under (/sys/fs/cgroup):
 * v2's memory.max, or v1's memory.limit_in_bytes, of its own cgroup and its
 * ancestors, the smallest; 0 when none is set ("max") or nothing could be
 * read. Never allocates. Takes paths so tests can give it files. */
uint64_t hk_os_cgroup_limit(const char* proc_self_cgroup, const char* cgroup_root);

/* How many of `bytes` that just became empty the decommit policy wants
 * decommitted now (0..bytes), given what is committed. */
size_t hk_os_decommit_wanted(size_t bytes);
/* The mode memory is decommitted with when the policy wants it back. */
hk_decommit_mode hk_os_decommit_mode(void);
HK_HIDDEN_END

#endif
