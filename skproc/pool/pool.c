/* SPDX-License-Identifier: MIT */
/*
 * A pool's lifecycle: create (settle the configuration, start the
 * transport and its workers), close, join, terminate, release, and the
 * counters. What a call does is in call.c; how batches reach the workers
 * is the transport's (transport.h; shared memory: shm_transport.c, whose
 * workers run worker.c).
 */
#include "core/error.h"
#include "os/clock.h"
#include "os/cpu.h"
#include "pool/call.h"
#include "pool/shm_transport.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every field gets its final value: zero or lower means the default. */
static void config_settle(sk_pool_config *cfg)
{
    if (cfg->workers <= 0)
        cfg->workers = sk_cpus_online();
    if (!(cfg->item_timeout > 0))
        cfg->item_timeout = 0;
    if (cfg->lives <= 0)
        cfg->lives = 1;
    if (cfg->max_tasks < 0)
        cfg->max_tasks = 0;
    if (cfg->batch < 0)
        cfg->batch = 0;
}

int sk_pool_create(sk_pool **out, const sk_pool_config *cfg)
{
    return pool_create_with(out, cfg, shm_transport_create);
}

/* The pool over the transport that make starts (another library's, such as
 * skproc-mpi's, or shared memory): the engine is the same whatever it is. */
int pool_create_with(sk_pool **out, const sk_pool_config *cfg, pool_transport_make make)
{
    if (out == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_create: pool is NULL");
    *out = NULL;
    sk_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return SK_ENOMEM;
    p->fd = p->any_fd = p->notify_fd = -1;
    if (cfg != NULL)
        p->config = *cfg;
    if (p->config.initializer != NULL && p->config.init_arg_size > POOL_ARG_MAX) {
        free(p);
        return sk_refuse(SK_EINVAL, "sk_pool_create: config.init_arg_size is over 64 KiB");
    }
    if (p->config.initializer != NULL && p->config.init_arg_size > 0 &&
        p->config.init_arg == NULL) {
        free(p);
        return sk_refuse(SK_EINVAL, "sk_pool_create: config.init_arg is NULL");
    }
    config_settle(&p->config);
    int rc = make(&p->t, &p->config);
    if (rc != SK_OK) {
        free(p);
        return rc;
    }
    p->n_workers = p->t->workers;
    p->config.workers = p->n_workers;
    *out = p;
    return SK_OK;
}

int sk_pool_close(sk_pool *p)
{
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_close: the pool is NULL");
    p->closed = true;
    p->t->ops->close(p->t);
    return SK_OK;
}

int sk_pool_terminate(sk_pool *p)
{
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_terminate: the pool is NULL");
    p->terminated = p->closed = true;
    p->t->ops->terminate(p->t);
    pool_fds_settle(p);
    return SK_OK;
}

void sk_pool_release(sk_pool *p)
{
    if (p == NULL)
        return;
    p->t->ops->destroy(p->t);
    if (p->fd >= 0) {
        close(p->fd);
        close(p->any_fd);
    }
    free(p);
}

/* ------------------------------------------------------- shared arrays */

void *sk_pool_alloc(sk_pool *p, size_t bytes)
{
    if (p == NULL) {
        (void)sk_refuse(SK_EINVAL, "sk_pool_alloc: the pool is NULL");
        return NULL;
    }
    if (p->t->ops->shared_alloc == NULL) {
        (void)sk_refuse(SK_EINVAL, "sk_pool_alloc: the pool's transport has no shared memory");
        return NULL;
    }
    return p->t->ops->shared_alloc(p->t, bytes);
}

/* Refused while a live call (not yet freed) has its items or results in
 * the allocation: its workers may still read or write them. */
int sk_pool_free(sk_pool *p, void *mem)
{
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_free: the pool is NULL");
    if (mem == NULL)
        return SK_OK;
    if (p->t->ops->shared_free == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_free: the pool's transport has no shared memory");
    for (int i = 0; i < POOL_CALLS; i++) {
        const sk_pool_call *c = p->live[i];
        if (c != NULL && (c->shared_start[0] == mem || c->shared_start[1] == mem))
            return sk_refuse(SK_ESTATE,
                             "sk_pool_free: a call that is not freed yet uses the allocation");
    }
    return p->t->ops->shared_free(p->t, mem);
}

void sk_pool_counters_of(const sk_pool *p, sk_pool_counters *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (p == NULL)
        return;
    p->t->ops->counters(p->t, out);
}

/* The maps in progress run to their end; an iterator is done posting only
 * as its caller takes results; then the workers leave. */
int sk_pool_join(sk_pool *p, double timeout)
{
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_join: the pool is NULL");
    if (!p->closed)
        return sk_refuse(SK_ESTATE, "sk_pool_join: the pool is not closed (sk_pool_close first)");
    int64_t deadline = sk_deadline_ns(timeout);
    for (;;) {
        uint32_t seen = p->t->ops->epoch(p->t);
        pool_progress(p);
        if (p->terminated || (pool_maps_finished(p) && pool_none_posting(p)))
            break;
        if (pool_wait_done(p, seen, deadline) == SK_ETIMEDOUT) {
            pool_fds_settle(p);
            return SK_ETIMEDOUT;
        }
    }
    pool_fds_settle(p);
    return p->t->ops->join(p->t, deadline);
}
