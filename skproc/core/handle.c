/* SPDX-License-Identifier: MIT */
/* The seal on a handle sk_init prepared (see handle.h). */
#include "core/error.h"
#include "core/handle.h"
#include "core/runtime.h"

#include <stdint.h>

/* Mixed with the handle's address, so that a copy of a sealed handle at
 * another address is not sealed, and zeroed memory never is. */
#define SK_HANDLE_MAGIC ((uintptr_t)0x736b70726f633031u) /* "skproc01" */

static uintptr_t handle_seal_of(const sk_process *p)
{
    return (uintptr_t)p ^ SK_HANDLE_MAGIC;
}

void sk_handle_seal(sk_process *p)
{
    p->seal = handle_seal_of(p);
}

void sk_handle_unseal(sk_process *p)
{
    p->seal = 0;
}

bool sk_handle_sealed(const sk_process *p)
{
    return p != NULL && p->seal == handle_seal_of(p) && p->rt != NULL;
}

int sk_handle_check(const sk_process *p, const char *call)
{
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "%s: the sk_process is NULL", call);
    if (!sk_handle_sealed(p))
        return sk_refuse(SK_EINVAL,
                         "%s: the sk_process was not sk_init'ed (or was sk_release'd, or is a "
                         "copy: pass the address sk_init was given)",
                         call);
    return SK_OK;
}

int sk_handle_check_parent(const sk_process *p, const char *call)
{
    int rc = sk_handle_check(p, call);
    if (rc != SK_OK || p->rt->role == SK_ROLE_PARENT)
        return rc;
    return sk_refuse(SK_ESTATE, "%s: only the parent may call this; this handle is %s", call,
                     p->rt->role == SK_ROLE_WORKER ? "a hook's own (self)"
                                                   : "a copy inherited by fork");
}
