/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the pool tests (test_pool*.c): a small pool, the gate
 * that items wait on in memory shared with the workers, and printing an
 * error. Pools, calls and memory blocks are tracked by support.h (new_pool,
 * track_call, xmalloc): skt_teardown opens the gate first, then ends them,
 * even when an assertion ends a test early. Header only: every helper is
 * static inline, so each test program takes what it uses.
 *
 * Include after <cmocka.h>, and after defining MAX_ITEMS when the shared
 * memory needs more than 4096 per-item counters.
 */
#ifndef SKPROC_TEST_POOL_SUPPORT_H
#define SKPROC_TEST_POOL_SUPPORT_H

#include "support.h"

/* ------------------------------------------------------------- pools */

/* A pool of `workers` (0: one per CPU) with no progress display. */
static inline sk_pool_config small_cfg(int workers)
{
    return (sk_pool_config){.workers = workers, .no_progress = true};
}

static inline sk_pool *new_small_pool(int workers)
{
    sk_pool_config cfg = small_cfg(workers);
    return new_pool(&cfg);
}

/* ------------------------------------------------------------- arena */

/* Where this process maps the (newest) pool's shared arena, found in
 * /proc/self/maps; NULL when there is none. Hostile tests scribble on it. */
static inline unsigned char *find_arena(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return NULL;
    char line[512];
    unsigned char *base = NULL;
    while (base == NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long start, offset;
        if (strstr(line, "skproc-pool") != NULL &&
            sscanf(line, "%lx-%*x %*s %lx", &start, &offset) == 2 && offset == 0)
            base = (unsigned char *)start;
    }
    fclose(f);
    return base;
}

/* -------------------------------------------------------- shared page */

#ifndef MAX_ITEMS
#define MAX_ITEMS 4096
#endif

/* What the workers share with the test: the gate, the gated items that
 * reached it, and how often each item was handed to the function. Made
 * (make_shared) before the pool, so every worker and every replacement
 * maps it; unmapped by skt_teardown. */
struct shared {
    int gate;    /* items that wait, wait until this is non-zero */
    int started; /* gated items that reached the gate */
    int attempts[MAX_ITEMS];
};

static struct shared *sh;

static inline void open_gate(void)
{
    __atomic_store_n(&sh->gate, 1, __ATOMIC_RELEASE);
}

/* Run by skt_teardown before the pools end: no worker stays at the gate. */
static inline void release_gate(void *arg)
{
    (void)arg;
    if (sh != NULL)
        open_gate();
    sh = NULL;
}

static inline struct shared *make_shared(void)
{
    sh = skt_shared(sizeof *sh);
    skt_defer_first(release_gate, NULL);
    return sh;
}

/* Called by an item in a worker: counts itself in *started (when not
 * NULL), then waits until *gate is non-zero, for at most timeout seconds
 * (a failed test must not leave it waiting forever). */
static inline void gate_wait(int *gate, int *started, double timeout)
{
    if (started != NULL)
        __atomic_fetch_add(started, 1, __ATOMIC_ACQ_REL);
    double deadline = skt_now() + timeout;
    while (!__atomic_load_n(gate, __ATOMIC_ACQUIRE) && skt_now() < deadline)
        usleep(200);
}

#endif
