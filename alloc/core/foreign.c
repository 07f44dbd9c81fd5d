#include "alloc/core/foreign.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <gnu/lib-names.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

_Atomic uint64_t hk_foreign_glibc_frees;
_Atomic uint64_t hk_foreign_ldso_ignored;

/* The layout, learned once, on the first foreign pointer: a process that
 * never frees one pays nothing at start-up. Several threads may learn it
 * at once; each stores the same values, and `ready` (release) publishes
 * them. */
static struct {
  _Atomic int ready;
  _Atomic uintptr_t brk_start;     /* start of the brk heap (0: unknown) */
  _Atomic uintptr_t ldso_lo, ldso_hi; /* ld.so's allocator's first area */
  void (*_Atomic glibc_free)(void*);
  size_t (*_Atomic glibc_usable)(void*);
} g;

/* This thread is learning the layout: dlopen may free a foreign pointer
 * itself, and that one is not looked at (reported) instead of recursing. */
static HK_TLS bool learning;

/* Field 47 of /proc/self/stat (start_brk, Linux 3.3+), read into a stack
 * buffer: no stdio, no malloc. 0 when it cannot be read (no /proc). */
static uintptr_t read_start_brk(void) {
  char buf[2048];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t n = 0;
  ssize_t r;
  while (n + 1 < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) n += (size_t)r;
  close(fd);
  buf[n] = 0;
  /* The command name (field 2) may hold spaces and parentheses: count
   * fields from the last ')'. */
  char* p = NULL;
  for (char* q = buf; *q; q++)
    if (*q == ')') p = q;
  if (p == NULL) return 0;
  p++; /* now at the end of field 2; skip fields 3 to 46 */
  for (int field = 3; field < 47; field++) {
    while (*p == ' ') p++;
    while (*p && *p != ' ') p++;
    if (!*p) return 0;
  }
  while (*p == ' ') p++;
  uintptr_t v = 0;
  for (; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uintptr_t)(*p - '0');
  return v;
}

/* ld.so's start-up allocator first carves the rest of the last page of
 * ld.so's own data segment, from the end of its .bss: the end of its last
 * loadable segment in memory, found from its program headers (the
 * auxiliary vector says where ld.so is). Nothing else lives there. */
static void find_ldso_area(uintptr_t* lo, uintptr_t* hi) {
  *lo = *hi = 0;
  uintptr_t base = (uintptr_t)getauxval(AT_BASE);
  if (base == 0) return; /* statically linked, or ld.so run as a program */
  const ElfW(Ehdr)* eh = (const ElfW(Ehdr)*)base;
  if (eh->e_ident[EI_MAG0] != ELFMAG0 || eh->e_ident[EI_MAG1] != ELFMAG1 || eh->e_ident[EI_MAG2] != ELFMAG2 ||
      eh->e_ident[EI_MAG3] != ELFMAG3 || eh->e_phentsize != sizeof(ElfW(Phdr)))
    return;
  const ElfW(Phdr)* ph = (const ElfW(Phdr)*)(base + eh->e_phoff);
  uintptr_t end = 0;
  for (unsigned i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr + ph[i].p_memsz > end) end = ph[i].p_vaddr + ph[i].p_memsz;
  if (end == 0) return;
  *lo = base + end;
  *hi = (base + end + HK_OS_PAGE - 1) & ~(uintptr_t)(HK_OS_PAGE - 1);
}

static void learn(void) {
  learning = true;
  uintptr_t lo, hi;
  find_ldso_area(&lo, &hi);
  atomic_store_explicit(&g.ldso_lo, lo, memory_order_relaxed);
  atomic_store_explicit(&g.ldso_hi, hi, memory_order_relaxed);
  atomic_store_explicit(&g.brk_start, read_start_brk(), memory_order_relaxed);
  /* glibc's own free, whoever comes first in the global scope (hakmem
   * itself, a sanitizer's interceptor): looked up in libc's own scope,
   * where libc's definition comes first. RTLD_NOLOAD: only the libc this
   * process already has. */
  void* libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
  if (libc != NULL) {
    atomic_store_explicit(&g.glibc_free, (void (*)(void*))dlsym(libc, "free"), memory_order_relaxed);
    atomic_store_explicit(&g.glibc_usable, (size_t(*)(void*))dlsym(libc, "malloc_usable_size"),
                          memory_order_relaxed);
    dlclose(libc); /* libc stays loaded: the handle only counted a reference */
  }
  learning = false;
  /* release: the layout above, to the acquire load in hk_foreign_kind_of. */
  atomic_store_explicit(&g.ready, 1, memory_order_release);
}

/* glibc's chunk header, as its malloc lays it out (malloc/malloc.c): the
 * word before the block holds the chunk's size with three flag bits, and
 * the next chunk's size word says whether this one is in use. */
#define GLIBC_PREV_INUSE 1u
#define GLIBC_IS_MMAPPED 2u
#define GLIBC_NON_MAIN_ARENA 4u
#define GLIBC_CHUNK_HEADER (2 * sizeof(size_t))

/* p is an in-use chunk of glibc's main arena in the brk heap: inside the
 * heap (so the words read are mapped), aligned, a size that stays inside
 * it, flags of a main-arena chunk that is not mapped on its own, and the
 * next chunk's "previous in use" bit set. */
static bool is_glibc_heap_chunk(uintptr_t p) {
  uintptr_t start = atomic_load_explicit(&g.brk_start, memory_order_relaxed);
  if (start == 0 || atomic_load_explicit(&g.glibc_free, memory_order_relaxed) == NULL) return false;
  uintptr_t brk = (uintptr_t)syscall(SYS_brk, 0);
  if (p < start + GLIBC_CHUNK_HEADER || p >= brk || (p & (HK_ALIGN - 1))) return false;
  size_t word = ((const size_t*)p)[-1];
  size_t size = word & ~(size_t)7;
  if (word & (GLIBC_IS_MMAPPED | GLIBC_NON_MAIN_ARENA)) return false;
  uintptr_t chunk = p - GLIBC_CHUNK_HEADER;
  if (size < 2 * GLIBC_CHUNK_HEADER || (size & (HK_ALIGN - 1)) || size > brk - chunk - GLIBC_CHUNK_HEADER)
    return false;
  size_t next = ((const size_t*)(chunk + size))[1];
  return (next & GLIBC_PREV_INUSE) != 0;
}

hk_foreign_kind hk_foreign_kind_of(const void* p) {
  if (!atomic_load_explicit(&g.ready, memory_order_acquire)) {
    if (learning) return HK_FOREIGN_NONE;
    learn();
  }
  uintptr_t a = (uintptr_t)p;
  if (a >= atomic_load_explicit(&g.ldso_lo, memory_order_relaxed) &&
      a < atomic_load_explicit(&g.ldso_hi, memory_order_relaxed) && !(a & (HK_ALIGN - 1)))
    return HK_FOREIGN_LDSO;
  if (is_glibc_heap_chunk(a)) return HK_FOREIGN_GLIBC;
  return HK_FOREIGN_NONE;
}

size_t hk_foreign_usable(const void* p, hk_foreign_kind kind) {
  if (kind != HK_FOREIGN_GLIBC) return 0;
  return atomic_load_explicit(&g.glibc_usable, memory_order_relaxed)((void*)p);
}

size_t hk_foreign_readable(const void* p, hk_foreign_kind kind) {
  if (kind == HK_FOREIGN_LDSO) return atomic_load_explicit(&g.ldso_hi, memory_order_relaxed) - (uintptr_t)p;
  return hk_foreign_usable(p, kind);
}

void hk_foreign_free(void* p, hk_foreign_kind kind) {
  if (kind == HK_FOREIGN_GLIBC) {
    atomic_load_explicit(&g.glibc_free, memory_order_relaxed)(p);
    atomic_fetch_add_explicit(&hk_foreign_glibc_frees, 1, memory_order_relaxed);
  } else if (kind == HK_FOREIGN_LDSO) {
    atomic_fetch_add_explicit(&hk_foreign_ldso_ignored, 1, memory_order_relaxed);
  }
}
