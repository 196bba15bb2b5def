/* SPDX-License-Identifier: MIT */
/*
 * Pools, cancelling (sk_pool_cancel): with one item per batch and every
 * worker held at a gate by the first items, cancelling leaves those items
 * running (they finish, their results are kept) and none of the others
 * ever runs: the ones handed out but not taken by a worker are taken back,
 * the ones not handed out yet are never posted. Each item counts its runs
 * in memory shared with the workers. Also: a failure of an item that ran
 * wins over SK_ECANCELED; an iterator yields what ran, then SK_ECLOSED; a
 * submitted task waiting behind another is cancelled; cancelling a done
 * call changes nothing; the pool runs the next call right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 60.0

#include "pool_support.h"

#define WORKERS 2
#define N 1000      /* with batch 1: more than the 512 batches posted at once */
#define FAIL_ITEM 1 /* in test_failure_wins: fails after the gate */

static int fail_item = -1;

/* Items 0 .. WORKERS - 1 wait at the gate; every item counts its runs. */
static int gated(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    __atomic_fetch_add(&sh->attempts[x], 1, __ATOMIC_ACQ_REL);
    if (x < WORKERS)
        gate_wait(&sh->gate, &sh->started, BOUND);
    if (x == fail_item)
        return 3;
    int64_t r = 10 * (int64_t)x;
    memcpy(result, &r, sizeof r);
    return 0;
}

static const sk_pool_job job = {
    .fn = gated, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

static sk_pool *one_per_batch_pool(void)
{
    sk_pool_config cfg = small_cfg(WORKERS);
    cfg.batch = 1;
    return new_pool(&cfg);
}

static int32_t *numbers(size_t n)
{
    int32_t *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    return items;
}

static void wait_gated(void)
{
    skt_wait_until(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) == WORKERS, BOUND);
}

static void test_cancel_async_map(void **state)
{
    (void)state;
    make_shared();
    fail_item = -1;
    sk_pool *pool = one_per_batch_pool();
    int32_t *items = numbers(N);
    int64_t *results = xcalloc(N, sizeof *results);
    int *status = xcalloc(N, sizeof *status);
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, N, results, status, &call), SK_OK);
    track_call(call);
    wait_gated();
    assert_rc(sk_pool_cancel(call), SK_OK);
    assert_rc(sk_pool_cancel(call), SK_OK); /* twice: nothing more */
    open_gate();
    assert_rc(sk_pool_get(call, BOUND), SK_ECANCELED);
    assert_null(sk_pool_error(call));
    for (int i = 0; i < N; i++) {
        if (i < WORKERS) {
            assert_int_equal(status[i], SK_OK);
            assert_int_equal(results[i], 10 * i);
        } else {
            assert_int_equal(status[i], SK_ECANCELED);
        }
    }
    free_call(call);
    for (int i = 0; i < N; i++) /* after the free: nothing of the call runs any more */
        assert_int_equal(sh->attempts[i], i < WORKERS ? 1 : 0);

    /* The pool goes on. */
    int64_t more[8];
    assert_rc(sk_pool_map(pool, &job, items + 100, 8, more, NULL), SK_OK);
    for (int i = 0; i < 8; i++)
        assert_int_equal(more[i], 10 * (100 + i));
}

static void test_failure_wins(void **state)
{
    (void)state;
    make_shared();
    fail_item = FAIL_ITEM;
    sk_pool *pool = one_per_batch_pool();
    int32_t *items = numbers(50);
    int64_t results[50];
    int status[50];
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, 50, results, status, &call), SK_OK);
    track_call(call);
    wait_gated();
    assert_rc(sk_pool_cancel(call), SK_OK);
    open_gate();
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    assert_int_equal(e->item, FAIL_ITEM);
    assert_int_equal(status[0], SK_OK);
    assert_int_equal(status[FAIL_ITEM], SK_EPROCESS);
    for (int i = WORKERS; i < 50; i++)
        assert_int_equal(status[i], SK_ECANCELED);
}

static void test_cancel_iterator(void **state)
{
    (void)state;
    make_shared();
    fail_item = -1;
    sk_pool *pool = one_per_batch_pool();
    int32_t *items = numbers(100);
    sk_pool_call *call;
    assert_rc(sk_pool_imap(pool, &job, items, 100, &call), SK_OK);
    track_call(call);
    size_t index;
    int64_t r;
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ETIMEDOUT); /* posts its window */
    wait_gated();
    assert_rc(sk_pool_cancel(call), SK_OK);
    open_gate();
    for (int i = 0; i < WORKERS; i++) {
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_int_equal(index, i);
        assert_int_equal(r, 10 * i);
    }
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    free_call(call);
    for (int i = WORKERS; i < 100; i++)
        assert_int_equal(sh->attempts[i], 0);
}

static void test_cancel_submitted_task(void **state)
{
    (void)state;
    make_shared();
    fail_item = -1;
    sk_pool *pool = one_per_batch_pool();
    int32_t items[WORKERS + 1];
    int64_t results[WORKERS + 1] = {0};
    sk_pool_call *calls[WORKERS + 1];
    for (int i = 0; i <= WORKERS; i++) {
        items[i] = i == WORKERS ? 500 : i; /* the last one is not gated */
        assert_rc(sk_pool_submit(pool, &job, &items[i], &results[i], &calls[i]), SK_OK);
        track_call(calls[i]);
    }
    wait_gated();
    assert_rc(sk_pool_cancel(calls[WORKERS]), SK_OK); /* it waits behind the gated ones */
    assert_rc(sk_pool_get(calls[WORKERS], BOUND), SK_ECANCELED);
    assert_true(sk_pool_ready(calls[WORKERS]));
    open_gate();
    for (int i = 0; i < WORKERS; i++) {
        assert_rc(sk_pool_get(calls[i], BOUND), SK_OK);
        assert_int_equal(results[i], 10 * i);
    }
    assert_int_equal(results[WORKERS], 0);
    assert_int_equal(sh->attempts[500], 0);
}

static void test_cancel_done_call(void **state)
{
    (void)state;
    make_shared();
    fail_item = -1;
    open_gate();
    sk_pool *pool = one_per_batch_pool();
    int32_t *items = numbers(20);
    int64_t results[20];
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, 20, results, NULL, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_wait(call, BOUND), SK_OK);
    assert_rc(sk_pool_cancel(call), SK_OK);
    assert_rc(sk_pool_get(call, BOUND), SK_OK);
    for (int i = 0; i < 20; i++)
        assert_int_equal(results[i], 10 * i);
    assert_rc(sk_pool_cancel(NULL), SK_EINVAL);
}

/* Terminate after a cancel: the items that were running fail with
 * SK_EKILLED, the cancelled ones stay SK_ECANCELED. */
static void test_terminate_after_cancel(void **state)
{
    (void)state;
    make_shared();
    fail_item = -1;
    sk_pool *pool = one_per_batch_pool();
    int32_t *items = numbers(N);
    int64_t *results = xcalloc(N, sizeof *results);
    int *status = xcalloc(N, sizeof *status);
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, N, results, status, &call), SK_OK);
    track_call(call);
    wait_gated();
    assert_rc(sk_pool_cancel(call), SK_OK);
    assert_rc(sk_pool_terminate(pool), SK_OK);
    assert_rc(sk_pool_get(call, BOUND), SK_EKILLED);
    for (int i = 0; i < N; i++)
        assert_int_equal(status[i], i < WORKERS ? SK_EKILLED : SK_ECANCELED);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_cancel_async_map), SKT_TEST(test_failure_wins),
        SKT_TEST(test_cancel_iterator),  SKT_TEST(test_cancel_submitted_task),
        SKT_TEST(test_cancel_done_call), SKT_TEST(test_terminate_after_cancel),
    };
    return skt_run(argc, argv, tests);
}
