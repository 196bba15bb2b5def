/* SPDX-License-Identifier: MIT */
/*
 * A start made ahead of time: the forks happen now, the first hook runs
 * when the parent says so. What a fork costs (a millisecond or more on a
 * virtual machine, twice for a supervised process) is paid before the
 * process is wanted; the release costs the parent a store and an eventfd
 * write, and the worker one wake-up (core/held_wait.c is its side).
 *
 * The released flag lives in the status page, which the worker can write;
 * a worker that sets it itself only starts early, which is its own loss.
 * The supervisor does not believe the page's start_ns after the release:
 * it starts join_in's hard bound on its own clock when it is rung.
 */
#include "core/error.h"
#include "core/handle.h"
#include "core/process.h"
#include "core/runtime.h"
#include "os/clock.h"
#include "os/fd.h"

int sk_start_held(sk_process *p, int64_t release_at)
{
    int rc = sk_handle_check_parent(p, "sk_start_held");
    if (rc != SK_OK)
        return rc;
    if (p->rt->spawn != NULL)
        return sk_refuse(SK_EINVAL, "sk_start_held: a spawned program has no hooks to hold");
    p->rt->held = true;
    p->rt->held_release_at = release_at > 0 ? release_at : 0;
    rc = sk_start(p);
    if (rc != SK_OK)
        p->rt->held = false;
    return rc;
}

int sk_start_release(sk_process *p)
{
    int rc = sk_handle_check_parent(p, "sk_start_release");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = p->rt;
    if (!rt->started || !rt->held || rt->finished)
        return sk_refuse(SK_ESTATE, "sk_start_release: %s",
                         !rt->started || !rt->held ? "the process was not started held"
                                                   : "the process has finished");
    rt->held = false;
    rt->sh->start_ns = sk_now_ns(); /* join_in counts from here */
    atomic_store_explicit(&rt->sh->released, 1, memory_order_release);
    sk_doorbell_ring(rt->worker_doorbell);
    if (rt->supervised && rt->config.join_in > 0)
        sk_doorbell_ring(rt->doorbell); /* the supervisor starts join_in's hard bound */
    return SK_OK;
}
