/* Misuse reports: one line on stderr naming what went wrong, the pointer and
 * the entry point the program called ("hakmem: double free of 0x... in
 * free()"), written without allocating; then abort, or, for misuse under
 * HAKMEM_ON_ERROR=warn, return so the caller leaks the block and goes on.
 * Ground floor (reads the options). */
#ifndef HAKMEM_CORE_ERROR_H
#define HAKMEM_CORE_ERROR_H

#include "alloc/core/base.h"

HK_HIDDEN_BEGIN
__attribute__((noreturn, cold)) void hk_fatal(const char* what, const void* p, const char* func);
__attribute__((cold)) void hk_misuse(const char* what, const void* p, const char* func);
HK_HIDDEN_END

#endif
