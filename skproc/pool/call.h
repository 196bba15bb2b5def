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

#endif
