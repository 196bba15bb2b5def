/* SPDX-License-Identifier: MIT */
/*
 * Telling a handle sk_init prepared from anything else a user can pass:
 * NULL, a struct never sk_init'ed (zeros or stack garbage), one already
 * sk_release'd, or a copy of a handle at another address. sk_init seals
 * the handle with a value made from its own address; every call checks the
 * seal before it reads p->rt, so such a handle is refused with SK_EINVAL and
 * a reason (sk_last_error_message) instead of crashing on a wild pointer.
 */
#ifndef SKPROC_CORE_HANDLE_H
#define SKPROC_CORE_HANDLE_H

#include "skproc.h"

#include <stdbool.h>

void sk_handle_seal(sk_process *p);
void sk_handle_unseal(sk_process *p);

/* True when p is a sealed handle (its runtime may be read). */
bool sk_handle_sealed(const sk_process *p);

/* SK_OK for a sealed handle; otherwise SK_EINVAL, with why recorded for
 * `call` (the public function's name). */
int sk_handle_check(const sk_process *p, const char *call);

/* sk_handle_check, and the handle is the parent's own: SK_ESTATE, with why,
 * for a hook's handle or a copy another child inherited by fork. */
int sk_handle_check_parent(const sk_process *p, const char *call);

#endif
