/*
 * Helpers shared by the pool tests (test_pool*.c): memory blocks and pools
 * and calls that are freed, ended and released by the teardown even when
 * an assertion ends a test early, the gate that items wait on in memory
 * shared with the workers, and printing an error. Header only, like
 * support.h: every helper is static inline, so each test program takes
 * what it uses.
 *
 * Include after <cmocka.h>, and after defining MAX_ITEMS when the shared
 * memory needs more than 4096 per-item counters.
 */
#ifndef SKPROC_TEST_POOL_SUPPORT_H
#define SKPROC_TEST_POOL_SUPPORT_H

#include "support.h"

/* ------------------------------------------------------------- blocks */

/* Memory a test allocates: freed by teardown when an assertion ends the
 * test early, so that LeakSanitizer reports only real leaks. xfree takes
 * any pointer (one not made by xmalloc is simply freed). Parent only: the
 * workers' functions use malloc. */
#define MAX_BLOCKS 1024
static void *blocks[MAX_BLOCKS];
static int block_count;

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    assert_non_null(p);
    assert_true(block_count < MAX_BLOCKS);
    blocks[block_count++] = p;
    return p;
}

static inline void *xmalloc(size_t size)
{
    return xcalloc(1, size);
}

static inline void xfree(void *p)
{
    for (int i = 0; i < block_count; i++)
        if (blocks[i] == p) {
            blocks[i] = blocks[--block_count];
            break;
        }
    free(p);
}

static inline void free_blocks(void)
{
    for (int i = 0; i < block_count; i++)
        free(blocks[i]);
    block_count = 0;
}

/* ------------------------------------------------------------ tracking */

/* Pools and calls made by a test; teardown ends them even after a failed
 * assertion: terminate every pool, free every call, release every pool. */
#define MAX_TRACKED 128
static sk_pool *tracked_pools[MAX_TRACKED];
static int tracked_pool_count;
static sk_pool_call *tracked_calls[MAX_TRACKED];
static int tracked_call_count;

static inline sk_pool *new_pool(const sk_pool_config *cfg)
{
    sk_pool *pool = NULL;
    assert_rc(sk_pool_create(&pool, cfg), SK_OK);
    assert_non_null(pool);
    assert_true(tracked_pool_count < MAX_TRACKED);
    tracked_pools[tracked_pool_count++] = pool;
    return pool;
}

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

static inline void release_pool(sk_pool *pool)
{
    for (int i = 0; i < tracked_pool_count; i++)
        if (tracked_pools[i] == pool)
            tracked_pools[i] = tracked_pools[--tracked_pool_count];
    sk_pool_release(pool);
}

static inline sk_pool_call *track_call(sk_pool_call *call)
{
    assert_non_null(call);
    assert_true(tracked_call_count < MAX_TRACKED);
    tracked_calls[tracked_call_count++] = call;
    return call;
}

static inline void free_call(sk_pool_call *call)
{
    for (int i = 0; i < tracked_call_count; i++)
        if (tracked_calls[i] == call)
            tracked_calls[i] = tracked_calls[--tracked_call_count];
    sk_pool_call_free(call);
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

static inline struct shared *make_shared(void)
{
    sh = skt_shared(sizeof *sh);
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

static inline void open_gate(void)
{
    __atomic_store_n(&sh->gate, 1, __ATOMIC_RELEASE);
}

/* ----------------------------------------------------------- teardown */

/* Run after every test (POOL_TEST): opens the gate first when there is a
 * shared page, so that no worker waits on it, then ends every tracked pool
 * and call, frees every block and runs skt_teardown (which unmaps the
 * shared page). */
static inline int pool_teardown(void **state)
{
    if (sh != NULL)
        open_gate();
    sh = NULL;
    for (int i = 0; i < tracked_pool_count; i++)
        sk_pool_terminate(tracked_pools[i]);
    for (int i = 0; i < tracked_call_count; i++)
        sk_pool_call_free(tracked_calls[i]);
    for (int i = 0; i < tracked_pool_count; i++)
        sk_pool_release(tracked_pools[i]);
    tracked_call_count = tracked_pool_count = 0;
    free_blocks();
    return skt_teardown(state);
}

#define POOL_TEST(f) cmocka_unit_test_teardown(f, pool_teardown)

/* -------------------------------------------------------------- errors */

static inline void print_error_of(const sk_error *e)
{
    char buf[2048];
    if (e == NULL) {
        print_message("  (no error)\n");
        return;
    }
    sk_error_format(e, buf, sizeof buf);
    print_message("%s\n", buf);
}

#endif
