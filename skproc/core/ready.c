/* SPDX-License-Identifier: MIT */
/*
 * Readiness: see core/ready.h. sk_ready runs in the worker; the rest is
 * the parent's.
 *
 * A hook's sk_ready logs READY in the event log, then sets the status
 * page's ready flag, then rings the ready doorbell (and the message
 * doorbell when the parent armed it for sk_fd). The parent drains the
 * doorbell before it looks at the flag, so a readiness that comes between
 * the two rings it again.
 *
 * Trust: the worker can write the flag and the log. The parent believes any
 * non-zero flag (a worker that lies about its own readiness harms nobody
 * else), remembers it, and never looks again; it delivers READY at most
 * once per run, whatever the log says, and only for a process of hooks
 * with SK_READY_ON_NOTIFY. A worker ringing the doorbell for nothing costs
 * the waiting parent a look per ring, never a wait past its deadline.
 */
#include "core/ready.h"
#include "core/error.h"
#include "core/events.h"
#include "core/handle.h"
#include "core/spawn.h"
#include "os/fd.h"

#include <stdatomic.h>
#include <unistd.h>

int sk_ready_settle(struct sk_runtime *rt)
{
    sk_config *c = &rt->config;
    if ((unsigned)c->ready > SK_READY_ON_NOTIFY)
        return sk_refuse(SK_EINVAL, "config.ready is %d, not an sk_ready_mode", (int)c->ready);
    if (rt->spawn == NULL)
        return SK_OK;
    if (rt->spawn->cfg.ready_fd > 0)
        c->ready = SK_READY_ON_NOTIFY;
    else if (c->ready == SK_READY_ON_NOTIFY)
        return sk_refuse(SK_EINVAL, "config.ready is SK_READY_ON_NOTIFY for a spawned program "
                                    "with no ready_fd: nothing could declare it ready");
    return SK_OK;
}

int sk_ready_prepare(struct sk_runtime *rt)
{
    if (rt->config.ready != SK_READY_ON_NOTIFY || rt->spawn != NULL)
        return SK_OK;
    rt->ready_doorbell = sk_doorbell_create();
    return rt->ready_doorbell < 0 ? SK_ESYS : SK_OK;
}

void sk_ready_started(struct sk_runtime *rt)
{
    if (rt->config.ready == SK_READY_ON_START)
        rt->ready = true;
}

/* Whether the process said so, looked at once more (false for good once
 * it is ready: nothing is read again). */
static bool ready_look(struct sk_runtime *rt)
{
    if (rt->spawn != NULL)
        return sk_spawn_ready_read(rt); /* drained also once ready: the program never blocks */
    if (rt->ready || rt->sh == NULL)
        return false;
    if (rt->ready_doorbell >= 0)
        sk_doorbell_drain(rt->ready_doorbell);
    return atomic_load_explicit(&rt->sh->ready, memory_order_acquire) != 0;
}

bool sk_ready_check(struct sk_runtime *rt)
{
    if (rt->config.ready == SK_READY_ON_NOTIFY && ready_look(rt))
        rt->ready = true;
    /* What was logged before it first: START, and a hook's own READY. */
    sk_events_deliver(rt);
    if (rt->ready && !rt->ready_delivered && rt->config.ready == SK_READY_ON_NOTIFY) {
        /* A program cannot log; a hook's entry may have been lost. */
        rt->ready_delivered = true;
        long run = rt->sh != NULL ? atomic_load(&rt->sh->current_run) : 0;
        sk_event_emit(rt, SK_EVENT_READY, rt->event_pid, SK_NO_SECTION, run, NULL);
    }
    return rt->ready;
}

int sk_ready_wake_fd(const struct sk_runtime *rt)
{
    if (rt->config.ready != SK_READY_ON_NOTIFY)
        return -1;
    if (rt->spawn != NULL)
        return rt->spawn->ready_parent;
    return rt->ready ? -1 : rt->ready_doorbell;
}

/* ------------------------------------------------------------- worker */

int sk_ready(sk_process *self)
{
    int rc = sk_handle_check(self, "sk_ready");
    if (rc != SK_OK)
        return rc;
    struct sk_runtime *rt = self->rt;
    if (rt->role != SK_ROLE_WORKER)
        return sk_refuse(SK_ESTATE,
                         "sk_ready: only a hook may declare its process ready (pass self); %s",
                         rt->role == SK_ROLE_PARENT ? "the parent waits for it with sk_wait_ready"
                                                    : "this handle is a copy inherited by fork");
    struct sk_shared *sh = rt->sh;
    if (sh == NULL || rt->config.ready != SK_READY_ON_NOTIFY)
        return SK_OK; /* SK_READY_ON_START: ready since sk_start */
    if (atomic_load_explicit(&sh->ready, memory_order_relaxed) != 0)
        return SK_OK; /* said before, maybe by a worker before a restart */
    int section = rt->hook_section >= 0 ? rt->hook_section : SK_NO_SECTION;
    sk_event_log(rt, SK_EVENT_READY, section, atomic_load(&sh->current_run), getpid(), NULL);
    atomic_store_explicit(&sh->ready, 1, memory_order_release);
    if (rt->ready_doorbell >= 0)
        sk_doorbell_ring(rt->ready_doorbell);
    /* A parent polling sk_fd wakes too. */
    if (rt->to_parent != NULL && atomic_load(&rt->to_parent->ctl->armed) && rt->msg_doorbell >= 0)
        sk_doorbell_ring(rt->msg_doorbell);
    return SK_OK;
}
