/* SPDX-License-Identifier: MIT */
/*
 * Pools, the per-worker initializer (config.initializer, like Python's
 * Pool(initializer=...)): it runs once in each worker before any item, with
 * a copy of init_arg, also in workers started to replace others (max_tasks,
 * crashes); the items see what it set. Its failure policy: a first worker
 * whose initializer fails (or dies in it) makes sk_pool_create fail with
 * SK_EPROCESS and a reason, leaving no child behind; a replacement whose
 * initializer fails makes the items it takes fail with SK_EPROCESS (the
 * error says why) instead of restarting for ever. Runs are counted in
 * memory shared with the workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 60.0

#include "pool_support.h"

#define INIT_RUNS 0     /* sh->attempts[INIT_RUNS]: initializer runs */
#define FAIL_FROM_NOW 1 /* sh->attempts[FAIL_FROM_NOW] != 0: the initializer fails */
#define CRASH_ITEM (-1)

struct init_arg {
    int32_t offset;
    char word[12];
};

static int32_t worker_offset = -1000; /* what the initializer sets, in each worker */

static int init_fn(const void *arg)
{
    const struct init_arg *a = arg;
    __atomic_fetch_add(&sh->attempts[INIT_RUNS], 1, __ATOMIC_ACQ_REL);
    if (__atomic_load_n(&sh->attempts[FAIL_FROM_NOW], __ATOMIC_ACQUIRE))
        return 42;
    if (strcmp(a->word, "hello") != 0)
        return 1;
    worker_offset = a->offset;
    return 0;
}

static int init_crash(const void *arg)
{
    (void)arg;
    skt_die_by(SIGSEGV);
    return 0;
}

static int add_offset(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    if (x == CRASH_ITEM)
        skt_die_by(SIGSEGV);
    int32_t r = x + worker_offset;
    memcpy(result, &r, sizeof r);
    return 0;
}

static const sk_pool_job job = {
    .fn = add_offset, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};

static sk_pool_config init_cfg(int workers, struct init_arg *arg)
{
    sk_pool_config cfg = small_cfg(workers);
    cfg.initializer = init_fn;
    cfg.init_arg = arg;
    cfg.init_arg_size = sizeof *arg;
    return cfg;
}

static void test_runs_once_per_worker(void **state)
{
    (void)state;
    make_shared();
    struct init_arg arg = {.offset = 1000, .word = "hello"};
    sk_pool_config cfg = init_cfg(3, &arg);
    sk_pool *pool = new_pool(&cfg);
    memset(&arg, 0, sizeof arg); /* copied at create */
    assert_int_equal(__atomic_load_n(&sh->attempts[INIT_RUNS], __ATOMIC_ACQUIRE), 3);
    int32_t items[300], results[300];
    for (int i = 0; i < 300; i++)
        items[i] = i;
    for (int round = 0; round < 3; round++) {
        assert_rc(sk_pool_map(pool, &job, items, 300, results, NULL), SK_OK);
        for (int i = 0; i < 300; i++)
            assert_int_equal(results[i], i + 1000);
    }
    assert_int_equal(__atomic_load_n(&sh->attempts[INIT_RUNS], __ATOMIC_ACQUIRE), 3);
}

static void test_replacements_run_it(void **state)
{
    (void)state;
    make_shared();
    struct init_arg arg = {.offset = 7, .word = "hello"};
    sk_pool_config cfg = init_cfg(2, &arg);
    cfg.max_tasks = 1; /* a fresh worker for every item */
    sk_pool *pool = new_pool(&cfg);
    int32_t items[20], results[20];
    for (int i = 0; i < 20; i++)
        items[i] = i;
    items[5] = CRASH_ITEM; /* and one crash */
    int status[20];
    assert_rc(sk_pool_map(pool, &job, items, 20, results, status), SK_EPROCESS);
    for (int i = 0; i < 20; i++) {
        if (i == 5) {
            assert_int_equal(status[i], SK_EPROCESS);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], i + 7);
    }
    /* 2 first workers, then at least one per item after the first two */
    assert_int_ge(__atomic_load_n(&sh->attempts[INIT_RUNS], __ATOMIC_ACQUIRE), 20);
}

static void test_create_fails(void **state)
{
    (void)state;
    make_shared();
    struct init_arg arg = {.offset = 1, .word = "wrong"};
    sk_pool_config cfg = init_cfg(2, &arg);
    sk_pool *pool = NULL;
    assert_rc(sk_pool_create(&pool, &cfg), SK_EPROCESS);
    assert_null(pool);
    assert_non_null(strstr(sk_last_error_message(), "initializer"));
    assert_true(skt_no_children());

    cfg.initializer = init_crash;
    assert_rc(sk_pool_create(&pool, &cfg), SK_EPROCESS);
    assert_null(pool);
    assert_true(skt_no_children());

    cfg.initializer = init_fn;
    cfg.init_arg_size = ((size_t)64 << 10) + 1;
    assert_rc(sk_pool_create(&pool, &cfg), SK_EINVAL);
    cfg.init_arg = NULL;
    cfg.init_arg_size = 4;
    assert_rc(sk_pool_create(&pool, &cfg), SK_EINVAL);
}

static void test_failing_replacement_fails_items(void **state)
{
    (void)state;
    make_shared();
    struct init_arg arg = {.offset = 5, .word = "hello"};
    sk_pool_config cfg = init_cfg(1, &arg);
    cfg.batch = 1;
    sk_pool *pool = new_pool(&cfg);
    __atomic_store_n(&sh->attempts[FAIL_FROM_NOW], 1, __ATOMIC_RELEASE);
    int32_t items[10], results[10];
    int status[10];
    for (int i = 0; i < 10; i++)
        items[i] = i;
    items[0] = CRASH_ITEM; /* its replacement's initializer fails */
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, 10, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    for (int i = 0; i < 10; i++)
        assert_int_equal(status[i], SK_EPROCESS);
    const sk_error *e = sk_pool_item_error(call, 3);
    assert_non_null(e);
    skt_print_error(e);
    assert_non_null(strstr(e->cause, "initializer returned 42"));
    /* it did not restart over and over: the first worker and one replacement */
    assert_int_equal(__atomic_load_n(&sh->attempts[INIT_RUNS], __ATOMIC_ACQUIRE), 2);
}

/* With max_tasks, a worker whose initializer failed is replaced in turn,
 * and its successor tries the initializer again: once it succeeds, items
 * succeed again. */
static void test_max_tasks_gives_a_new_chance(void **state)
{
    (void)state;
    make_shared();
    struct init_arg arg = {.offset = 5, .word = "hello"};
    sk_pool_config cfg = init_cfg(1, &arg);
    cfg.batch = 1;
    cfg.max_tasks = 3;
    sk_pool *pool = new_pool(&cfg);
    __atomic_store_n(&sh->attempts[FAIL_FROM_NOW], 1, __ATOMIC_RELEASE);
    int32_t items[12], results[12];
    int status[12];
    for (int i = 0; i < 12; i++)
        items[i] = i;
    items[0] = CRASH_ITEM;
    assert_rc(sk_pool_map(pool, &job, items, 12, results, status), SK_EPROCESS);
    for (int i = 0; i < 12; i++)
        assert_int_equal(status[i], SK_EPROCESS);
    __atomic_store_n(&sh->attempts[FAIL_FROM_NOW], 0, __ATOMIC_RELEASE);
    items[0] = 0;
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, 12, results, status, &call), SK_OK);
    track_call(call);
    (void)sk_pool_get(call, BOUND);
    /* at most the failed worker's last 3 tasks fail, then all succeed */
    for (int i = 3; i < 12; i++) {
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], i + 5);
    }
    for (int i = 0; i < 3; i++) {
        if (status[i] == SK_OK)
            continue;
        assert_non_null(strstr(sk_pool_item_error(call, i)->cause, "initializer returned 42"));
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_runs_once_per_worker),
        SKT_TEST(test_replacements_run_it),
        SKT_TEST(test_create_fails),
        SKT_TEST(test_failing_replacement_fails_items),
        SKT_TEST(test_max_tasks_gives_a_new_chance),
    };
    return skt_run(argc, argv, tests);
}
