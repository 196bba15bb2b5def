/* SPDX-License-Identifier: MIT */
/*
 * Pools, single tasks (sk_pool_submit, like Python's apply_async/submit):
 * one item as a call of its own, with ready, wait, get, error and free; a
 * failed item; a task that is not done before its gate opens; many tasks
 * alive at once; bad arguments. The round trip of submit + get is printed
 * (not asserted: no timed tests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 60.0

#include "pool_support.h"

#define GATED (-1) /* an item that waits at the gate, then gives 7 */
#define FAILING (-2)

static int task(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    if (x == FAILING)
        return 5;
    if (x == GATED) {
        gate_wait(&sh->gate, &sh->started, BOUND);
        x = 7;
    }
    int64_t r = (int64_t)x * x;
    memcpy(result, &r, sizeof r);
    return 0;
}

static const sk_pool_job job = {
    .fn = task, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

static void test_submit_get(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int32_t item = 12;
    int64_t result = 0;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_OK);
    assert_int_equal(result, 144);
    assert_true(sk_pool_ready(call));
    assert_rc(sk_pool_wait(call, 0), SK_OK);
    assert_null(sk_pool_error(call));

    /* The round trip, for the report (min of many, not asserted). */
    double best = 1e9;
    for (int i = 0; i < 2000; i++) {
        sk_pool_call *c;
        double t0 = skt_now();
        assert_rc(sk_pool_submit(pool, &job, &item, &result, &c), SK_OK);
        assert_rc(sk_pool_get(c, BOUND), SK_OK);
        double dt = skt_now() - t0;
        sk_pool_call_free(c);
        if (dt < best)
            best = dt;
    }
    print_message("    submit + get round trip: best %.1f us\n", best * 1e6);
}

static void test_submit_failure(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(1);
    int32_t item = FAILING;
    int64_t result = -1;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    assert_int_equal(e->item, 0);
    assert_int_equal(e->code, 5);
    assert_int_equal(result, -1); /* a failed item's result is not written */
}

static void test_submit_not_ready_before_done(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(1);
    int32_t item = GATED;
    int64_t result = 0;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_OK);
    track_call(call);
    skt_wait_until(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) == 1, BOUND);
    assert_false(sk_pool_ready(call));
    assert_rc(sk_pool_wait(call, 0.05), SK_ETIMEDOUT);
    assert_rc(sk_pool_get(call, 0), SK_ETIMEDOUT);
    open_gate();
    assert_rc(sk_pool_get(call, BOUND), SK_OK);
    assert_int_equal(result, 49);
}

#define MANY 200

static void test_many_tasks_alive(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int32_t *items = xcalloc(MANY, sizeof *items);
    int64_t *results = xcalloc(MANY, sizeof *results);
    sk_pool_call *calls[MANY];
    for (int i = 0; i < MANY; i++) {
        items[i] = i;
        assert_rc(sk_pool_submit(pool, &job, &items[i], &results[i], &calls[i]), SK_OK);
        track_call(calls[i]);
    }
    for (int i = MANY - 1; i >= 0; i--) { /* taken in any order */
        assert_rc(sk_pool_get(calls[i], BOUND), SK_OK);
        assert_int_equal(results[i], (int64_t)i * i);
    }
}

static void test_submit_bad_arguments(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(1);
    int32_t item = 1;
    int64_t result;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &job, NULL, &result, &call), SK_EINVAL);
    assert_rc(sk_pool_submit(NULL, &job, &item, &result, &call), SK_EINVAL);
    assert_rc(sk_pool_submit(pool, NULL, &item, &result, &call), SK_EINVAL);
    assert_rc(sk_pool_submit(pool, &job, &item, NULL, &call), SK_EINVAL);
    assert_rc(sk_pool_submit(pool, &job, &item, &result, NULL), SK_EINVAL);
    sk_pool_close(pool);
    assert_rc(sk_pool_submit(pool, &job, &item, &result, &call), SK_ESTATE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_submit_get),
        SKT_TEST(test_submit_failure),
        SKT_TEST(test_submit_not_ready_before_done),
        SKT_TEST(test_many_tasks_alive),
        SKT_TEST(test_submit_bad_arguments),
    };
    return skt_run(argc, argv, tests);
}
