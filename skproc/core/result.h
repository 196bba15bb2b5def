/* SPDX-License-Identifier: MIT */
/* The result a process published, for layers above that read it whole. */
#ifndef SKPROC_CORE_RESULT_H
#define SKPROC_CORE_RESULT_H

#include "skproc.h"

#include <stddef.h>

/* The image the process published (parent side, after the end); *img NULL
 * and *len 0 when it published none. */
int sk_result_image(sk_process *p, const void **img, size_t *len);

/* In any hook of the worker (self): publishes img (a tpl image of len
 * bytes, copied) as the process's result, as sk_return does from the
 * result hook, for a layer above whose class returns a value from its run
 * hook (the scheduler's function tasks). A later sk_return replaces it; a
 * failed result or error hook, or a hard fault, drops it as usual.
 * SK_ESTATE outside a worker's hook; SK_EINVAL for a NULL or empty image. */
int sk_result_publish(sk_process *self, const void *img, size_t len);

#endif
