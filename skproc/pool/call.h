/* SPDX-License-Identifier: MIT */
/*
 * What the pool's lifecycle (pool.c) needs from the call engine (call.c):
 * moving every live map along while it waits, and knowing when they are
 * done.
 */
#ifndef SKPROC_POOL_CALL_H
#define SKPROC_POOL_CALL_H

#include "pool/pool_internal.h"

/* Every live map (not the iterators) collects what is done and posts what
 * it can. */
void pool_progress(sk_pool *p);

/* Every live map has all its results. */
bool pool_maps_finished(const sk_pool *p);

/* No live call may still post a batch (iterators post as their caller
 * takes results). */
bool pool_none_posting(const sk_pool *p);

/* Sleeps until some batch is done (seen: the transport's epoch read before
 * looking) or the deadline passes, then moves every map along.
 * SK_ETIMEDOUT, SK_EKILLED or SK_OK (look again). */
int pool_wait_done(sk_pool *p, uint32_t seen, int64_t deadline);

/* The event-loop fds (sk_pool_fd, sk_pool_call_fd) say the truth again:
 * called at the end of every public call into the pool. */
void pool_fds_settle(sk_pool *p);

/* A transport's constructor, as shm_transport_create: cfg is settled
 * (every field has its final value). */
typedef int (*pool_transport_make)(struct sk_pool_transport **out, const sk_pool_config *cfg);

/* sk_pool_create over the transport make starts. */
int pool_create_with(sk_pool **out, const sk_pool_config *cfg, pool_transport_make make);

/* The job as the workers get it, after every check sk_pool_map makes
 * (sk_last_error_message names a mistake): for a transport whose far side
 * describes a job it knows by name. SK_OK or SK_EINVAL. */
int pool_job_prepare(const sk_pool_job *job, struct pool_job *js);

#endif
