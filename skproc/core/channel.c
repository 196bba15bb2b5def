/* SPDX-License-Identifier: MIT */
/* The channel of one process: see channel.h. */
#include "core/channel.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/proc.h"

#include <string.h>

#define PARENT_RECHECK_NS (100 * 1000 * 1000) /* a parent re-checks its child this often */

size_t sk_channel_span(size_t capacity, size_t max_message)
{
    size_t one = sk_ring_data_size(capacity, max_message);
    return one == 0 || one > SIZE_MAX / 2 ? 0 : 2 * one;
}

/* The parent's peer is gone when the process has ended: reaped, or its
 * child (supervisor or worker) exited without a word. */
static bool parent_peer_gone(void *ctx)
{
    const struct sk_runtime *rt = ctx;
    return rt->finished || (rt->started && sk_pid_exited(rt->child_pid));
}

/* Nothing more comes to a worker once the parent asked it to stop. */
static bool worker_peer_gone(void *ctx)
{
    const struct sk_runtime *rt = ctx;
    return atomic_load(&rt->sh->stop) != 0;
}

void sk_channel_init(struct sk_runtime *rt, char *base, size_t file_offset, size_t capacity,
                     size_t max_message)
{
    size_t data = sk_ring_data_size(capacity, max_message);
    struct sk_endpoint *ep = &rt->ep;
    memset(ep, 0, sizeof *ep);
    sk_ring_init(&ep->in, &rt->sh->rings[0], base, data, capacity, max_message, file_offset);
    sk_ring_init(&ep->out, &rt->sh->rings[1], base + data, data, capacity, max_message,
                 file_offset + data);
    ep->memfd = rt->memfd;
    ep->in_doorbell = rt->msg_doorbell;
    ep->out_doorbell = rt->worker_doorbell;
    ep->peer_gone = parent_peer_gone;
    ep->reader_gone = parent_peer_gone;
    ep->peer_ctx = rt;
    ep->recheck_ns = PARENT_RECHECK_NS;
    ep->spin_ns = sk_seconds_to_ns(rt->config.spin);
    rt->to_parent = &ep->in;
    rt->to_worker = &ep->out;
}

void sk_channel_become_worker(struct sk_runtime *rt)
{
    struct sk_endpoint *ep = &rt->ep;
    struct sk_ring to_parent = ep->in;
    ep->in = ep->out;
    ep->out = to_parent;
    ep->out_doorbell = rt->msg_doorbell;
    ep->in_doorbell = rt->worker_doorbell;
    ep->peer_gone = worker_peer_gone;
    ep->reader_gone = NULL; /* the parent reads until it ends, and then so do we */
    ep->recheck_ns = 0;
    rt->to_parent = &ep->out;
    rt->to_worker = &ep->in;
}

void sk_channel_forget(struct sk_runtime *rt)
{
    memset(&rt->ep, 0, sizeof rt->ep);
    rt->ep.memfd = rt->ep.in_doorbell = rt->ep.out_doorbell = -1;
    rt->to_parent = rt->to_worker = NULL;
}

void sk_channel_close_to_parent(struct sk_runtime *rt)
{
    if (rt->to_parent != NULL)
        sk_ring_close(rt->to_parent, rt->msg_doorbell);
}

bool sk_channel_peer_gone(struct sk_runtime *rt)
{
    return rt->role == SK_ROLE_PARENT &&
           (rt->finished || (rt->to_parent != NULL && sk_ring_closed(rt->to_parent)));
}

void sk_channel_wake_worker(struct sk_runtime *rt)
{
    if (rt->to_worker == NULL)
        return;
    sk_ring_wake(rt->to_worker);
    /* A worker polling its sk_fd must see the stop too. */
    if (rt->worker_doorbell >= 0 && atomic_load(&rt->to_worker->ctl->armed))
        sk_doorbell_ring(rt->worker_doorbell);
}

int sk_channel_inject(struct sk_runtime *rt, bool to_parent, const void *bytes, size_t len)
{
    struct sk_ring *r = to_parent ? rt->to_parent : rt->to_worker;
    if (r == NULL)
        return SK_ESTATE;
    return sk_ring_inject(r, to_parent ? rt->msg_doorbell : -1, bytes, len);
}
