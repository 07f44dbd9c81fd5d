/* The per-process secret free-block tags are made with (span.h): random,
 * set once at process init, its top bit set (never 0) after it. Ground floor. */
#ifndef HAKMEM_CORE_SECRET_H
#define HAKMEM_CORE_SECRET_H

#include "alloc/core/base.h"
#include "alloc/core/hot.h"

HK_HIDDEN_BEGIN
void hk_secret_init(void);
HK_HIDDEN_END

#endif
