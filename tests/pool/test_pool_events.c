/* SPDX-License-Identifier: MIT */
/*
 * Pools, recoveries and events (issue 11 items 3 and 4): sk_pool_retried
 * counts the items of a call that succeeded after a failed attempt (also
 * when a worker forges the count in the arena), and sk_pool_config.on_event
 * gets the workers' lifecycle (START, CRASH, TIMEOUT, RESTART, KILL, FINISH)
 * with .worker set to the slot, in the thread that calls into the pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pool_support.h"

#include "pool/shm_arena.h"

#include <pthread.h>

#define BOUND 30.0

/* ------------------------------------------------------------ recorder */

#define MAX_SEEN 256

struct seen_event {
    sk_event_kind kind;
    pid_t pid;
    int worker;
    long item;
    bool has_error;
    sk_error_kind error_kind;
    pthread_t thread;
};

struct recorder {
    int n;
    struct seen_event ev[MAX_SEEN];
};

static void record(const sk_event *ev, void *ctx)
{
    struct recorder *r = ctx;
    if (r->n >= MAX_SEEN)
        return;
    r->ev[r->n++] = (struct seen_event){.kind = ev->kind,
                                        .pid = ev->pid,
                                        .worker = ev->worker,
                                        .item = ev->item,
                                        .has_error = ev->error != NULL,
                                        .error_kind = ev->error ? ev->error->kind : 0,
                                        .thread = pthread_self()};
}

/* The kinds seen for worker slot w, as names joined by spaces. */
static void kinds_of(const struct recorder *r, int w, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < r->n; i++)
        if (r->ev[i].worker == w)
            snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "",
                     sk_event_name(r->ev[i].kind));
}

#define assert_worker_kinds(r, w, want)                                                            \
    do {                                                                                           \
        char got_[512];                                                                            \
        kinds_of((r), (w), got_, sizeof got_);                                                     \
        if (strcmp(got_, (want)) != 0)                                                             \
            fail_msg("worker %d: events \"%s\", wanted \"%s\"", (w), got_, (want));                \
    } while (0)

/* ------------------------------------------------------------- items */

enum how { NEVER, ONCE_SEGV, ONCE_FAIL, ONCE_SPIN, FORGE };

typedef struct {
    int32_t index;
    int32_t how;
} item_t;

static int item_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const item_t *it = item;
    int attempt = __atomic_add_fetch(&sh->attempts[it->index], 1, __ATOMIC_ACQ_REL);
    if (attempt == 1) {
        switch ((enum how)it->how) {
        case ONCE_SEGV:
            skt_die_by(SIGSEGV);
            break;
        case ONCE_FAIL:
            return 5;
        case ONCE_SPIN:
            skt_spin_forever();
            break;
        case FORGE: { /* every batch says every item was retried */
            struct shm_header *h = (struct shm_header *)(void *)find_arena();
            if (h != NULL)
                for (int d = 0; d < POOL_BATCHES; d++)
                    h->batches[d].retried = UINT32_MAX;
            break;
        }
        case NEVER:
            break;
        }
    }
    *(int64_t *)result = 2 * (int64_t)it->index;
    return 0;
}

static const sk_pool_job job = {
    .fn = item_fn, .item_size = sizeof(item_t), .result_size = sizeof(int64_t)};

/* async_map of n items, item i behaving as how(i); returns the call, done. */
static sk_pool_call *run_call(sk_pool *pool, int n, enum how (*how)(int), int expect_rc)
{
    item_t *items = xcalloc((size_t)n, sizeof *items);
    int64_t *results = xcalloc((size_t)n, sizeof *results);
    for (int i = 0; i < n; i++)
        items[i] = (item_t){.index = i, .how = (int32_t)how(i)};
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, (size_t)n, results, NULL, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), expect_rc);
    return call;
}

static enum how none(int i)
{
    (void)i;
    return NEVER;
}

static enum how every_third_crashes(int i)
{
    return i % 3 == 1 ? ONCE_SEGV : i % 3 == 2 ? ONCE_FAIL : NEVER;
}

static enum how first_crashes(int i)
{
    return i == 0 ? ONCE_SEGV : NEVER;
}

static enum how first_spins(int i)
{
    return i == 0 ? ONCE_SPIN : NEVER;
}

static enum how forge(int i)
{
    return i == 3 ? FORGE : NEVER;
}

/* ---------------------------------------------------------------- tests */

static void test_retried_counts(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    cfg.lives = 2;
    sk_pool *pool = new_pool(&cfg);
    sk_pool_call *call = run_call(pool, 30, every_third_crashes, SK_OK);
    assert_cmp(sk_pool_retried(call), ==, (size_t)20);
    sk_pool_call *clean = run_call(pool, 30, none, SK_OK);
    assert_cmp(sk_pool_retried(clean), ==, (size_t)0);
    assert_cmp(sk_pool_retried(NULL), ==, (size_t)0);
    free_call(call);
    free_call(clean);
    release_pool(pool);
}

/* Without lives nothing is retried: the items fail. */
static void test_retried_without_lives(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(1);
    sk_pool_call *call = run_call(pool, 9, every_third_crashes, SK_EPROCESS);
    assert_cmp(sk_pool_retried(call), ==, (size_t)0);
    free_call(call);
    release_pool(pool);
}

/* A worker that says every item of every batch was retried: the count is
 * never more than the call's items. */
static void test_retried_forged(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(1);
    cfg.batch = 4;
    sk_pool *pool = new_pool(&cfg);
    sk_pool_call *call = run_call(pool, 12, forge, SK_OK);
    assert_cmp(sk_pool_retried(call), <=, (size_t)12);
    free_call(call);
    release_pool(pool);
}

static void test_worker_events(void **state)
{
    (void)state;
    make_shared();
    struct recorder *r = xcalloc(1, sizeof *r);
    sk_pool_config cfg = small_cfg(1);
    cfg.lives = 2;
    cfg.on_event = record;
    cfg.event_ctx = r;
    sk_pool *pool = new_pool(&cfg);
    assert_int_equal(r->n, 1); /* sk_pool_create delivered the worker's START */
    assert_int_equal(r->ev[0].kind, SK_EVENT_START);
    assert_int_equal(r->ev[0].worker, 0);
    assert_cmp(r->ev[0].pid, >, 0);
    assert_int_equal(r->ev[0].item, -1);
    sk_pool_call *call = run_call(pool, 5, first_crashes, SK_OK);
    assert_cmp(sk_pool_retried(call), ==, (size_t)1);
    free_call(call);
    assert_rc(sk_pool_close(pool), SK_OK);
    assert_rc(sk_pool_join(pool, BOUND), SK_OK);
    assert_worker_kinds(r, 0, "start crash restart finish");
    assert_int_equal(r->ev[1].pid, r->ev[0].pid);
    assert_true(r->ev[1].has_error);
    assert_int_equal(r->ev[1].error_kind, SK_CRASH_ERROR);
    assert_int_equal(r->ev[1].item, 0); /* the item it died on */
    assert_int_equal(r->ev[2].item, -1);
    assert_cmp(r->ev[2].pid, !=, r->ev[0].pid);
    assert_int_equal(r->ev[3].pid, r->ev[2].pid);
    for (int i = 0; i < r->n; i++)
        assert_true(pthread_equal(r->ev[i].thread, pthread_self()));
    int n = r->n;
    release_pool(pool);
    assert_int_equal(r->n, n); /* FINISH was the last */
}

static void test_worker_timeout_and_terminate(void **state)
{
    (void)state;
    make_shared();
    struct recorder *r = xcalloc(1, sizeof *r);
    sk_pool_config cfg = small_cfg(2);
    cfg.lives = 2;
    cfg.batch = 1;
    cfg.item_timeout = 0.1;
    cfg.on_event = record;
    cfg.event_ctx = r;
    sk_pool *pool = new_pool(&cfg);
    assert_int_equal(r->n, 2);
    sk_pool_call *call = run_call(pool, 4, first_spins, SK_OK);
    assert_cmp(sk_pool_retried(call), ==, (size_t)1);
    free_call(call);
    assert_rc(sk_pool_terminate(pool), SK_OK);
    int timeouts = 0;
    for (int w = 0; w < 2; w++) {
        char got[512];
        kinds_of(r, w, got, sizeof got);
        if (strcmp(got, "start timeout restart kill finish") == 0)
            timeouts++;
        else
            assert_worker_kinds(r, w, "start kill finish");
    }
    assert_int_equal(timeouts, 1);
    for (int i = 0; i < r->n; i++)
        if (r->ev[i].kind == SK_EVENT_TIMEOUT) {
            assert_int_equal(r->ev[i].error_kind, SK_TIMEOUT_ERROR);
            assert_int_equal(r->ev[i].item, 0);
        } else {
            assert_int_equal(r->ev[i].item, -1);
        }
    release_pool(pool);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_retried_counts),
        SKT_TEST(test_retried_without_lives),
        SKT_TEST(test_retried_forged),
        SKT_TEST(test_worker_events),
        SKT_TEST(test_worker_timeout_and_terminate),
    };
    return skt_run(argc, argv, tests);
}
