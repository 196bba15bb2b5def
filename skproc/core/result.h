/* SPDX-License-Identifier: MIT */
/* The result a process published, for layers above that read it whole. */
#ifndef SKPROC_CORE_RESULT_H
#define SKPROC_CORE_RESULT_H

#include "skproc.h"

#include <stddef.h>

/* The image the process published (parent side, after the end); *img NULL
 * and *len 0 when it published none. */
int sk_result_image(sk_process *p, const void **img, size_t *len);

#endif
