/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory transport's workers: skproc processes of an internal
 * class whose run hook claims posted batches from the arena and runs their
 * items (worker.c). The transport (shm_transport.c) starts them and starts
 * them again when one ends while the pool is open.
 */
#ifndef SKPROC_POOL_WORKER_H
#define SKPROC_POOL_WORKER_H

#include "pool/shm_arena.h"

typedef int (*pool_init_fn)(const void *init_arg);

/* The pool's settings a worker runs by. */
struct shm_settings {
    double item_timeout; /* seconds, 0: none */
    int lives;
    long max_tasks;
    pool_init_fn initializer; /* or NULL */
    const void *init_arg;     /* the transport's copy */
    int64_t spin_ns;          /* an idle worker spins this long for a post; 0: never */
};

struct shm_worker {
    sk_process base;
    const struct shm_arena *arena; /* the parent's copy, inherited by fork */
    int index;                     /* its slot in the arena */
    long tasks;                    /* items done by this incarnation */
    /* The pool's settings, in the worker's own memory: the arena's copies
     * can be scribbled by any worker. */
    struct shm_settings settings;
    /* The chunks (SHM_SHARED_CHUNK) of the shared region whose pages this
     * worker has mapped, as of shared_epoch: a forked worker has no page
     * table entries for them, and taking them a chunk at a time costs one
     * system call instead of 512 page faults. */
    uint64_t shared_mapped[2][SHM_SHARED_SIZE / SHM_SHARED_CHUNK / 64]; /* items, results */
    uint32_t shared_epoch;
    bool init_failed; /* its initializer failed: every item it takes fails */
    int init_rc;
    /* The pool's config.on_event (parent side): the worker's own events go
     * there with .worker set to index. */
    sk_event_fn on_event;
    void *event_ctx;
    /* Worker side: how far into each batch region's input and output this
     * worker has mapped the pages in (worker_prefault). */
    uint32_t mapped_in[POOL_BATCHES], mapped_out[POOL_BATCHES];
};

/* Initializes w as worker `index` of the arena and starts it, with the
 * pool's settled settings: with an item timeout its supervisor kills it at
 * an item's deadline; with an initializer it runs it first. SK_OK, or an
 * error code and w is released. */
int shm_worker_start(struct shm_worker *w, const struct shm_arena *arena, int index,
                     struct shm_settings settings);

#endif
