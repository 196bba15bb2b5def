/* SPDX-License-Identifier: MIT */
/*
 * Pools, the core forms against real workers: map and imap keep item order,
 * unordered_imap yields every index exactly once, async_map's
 * ready/wait/get with timeouts, empty input, one item, one worker and many,
 * the job's argument, failures reported per item (status array,
 * sk_pool_error, sk_pool_item_error), counters, close/join/terminate/release
 * (every worker reaped), argument validation and the state rules.
 *
 * Nothing waits by sleeping: items that must stay busy wait on a gate in
 * memory shared with the workers, which the test opens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define MAX_ITEMS 20000
#define BOUND 30.0 /* seconds no wait below may take */

#include "pool_support.h"

/* Polls cond until it holds, for at most BOUND seconds. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        double deadline_ = skt_now() + BOUND;                                                      \
        while (!(cond)) {                                                                          \
            if (skt_now() > deadline_)                                                             \
                fail_msg("waited %.0fs for %s", BOUND, #cond);                                     \
            skt_sleep(0.0005);                                                                     \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------ the job */

/* result = item * mul + add, with the pid of the worker, for items that do
 * not fail; the item fail_item returns fail_code; items in
 * [gate_from, gate_to) wait for the gate first. */
typedef struct {
    int32_t mul, add;
    int32_t fail_item, fail_code;
    int32_t gate_from, gate_to;
} affine_arg;

typedef struct {
    int64_t value;
    int32_t pid;
    int32_t item;
} affine_out;

static void wait_gate(void)
{
    gate_wait(&sh->gate, &sh->started, 2 * BOUND);
}

static int affine(const void *item, void *result, const void *argp)
{
    const affine_arg *a = argp;
    int32_t x = *(const int32_t *)item;
    affine_out *out = result;
    if (out->value != 0 || out->pid != 0 || out->item != 0)
        return 99; /* the result was not zeroed before the call */
    if (sh != NULL && x >= 0 && x < MAX_ITEMS)
        __atomic_fetch_add(&sh->attempts[x], 1, __ATOMIC_RELAXED);
    if (x >= a->gate_from && x < a->gate_to)
        wait_gate();
    if (x == a->fail_item)
        return a->fail_code;
    out->value = (int64_t)x * a->mul + a->add;
    out->pid = (int32_t)getpid();
    out->item = x;
    return 0;
}

static const affine_arg plain_arg = {.mul = 3, .add = 1, .fail_item = -1, .gate_from = -1};

static sk_pool_job affine_job(const affine_arg *arg)
{
    return (sk_pool_job){.fn = affine,
                         .arg = arg,
                         .arg_size = sizeof *arg,
                         .item_size = sizeof(int32_t),
                         .result_size = sizeof(affine_out)};
}

static int32_t *make_items(size_t n)
{
    int32_t *items = xmalloc((n ? n : 1) * sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    return items;
}

static affine_out *make_results(size_t n)
{
    affine_out *r = xcalloc(n ? n : 1, sizeof *r);
    assert_non_null(r);
    return r;
}

static int *make_status(size_t n)
{
    int *s = xmalloc((n ? n : 1) * sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = 12345; /* neither SK_OK nor a code */
    return s;
}

static void check_result(const affine_out *r, int32_t x, const affine_arg *a)
{
    if (r->value != (int64_t)x * a->mul + a->add || r->item != x || r->pid <= 0 ||
        r->pid == (int32_t)getpid())
        fail_msg("item %d: value %lld, item %d, pid %d (parent %d)", x, (long long)r->value,
                 r->item, r->pid, (int)getpid());
}

/* --------------------------------------------------------------- map */

static void test_map_keeps_order(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 5000;
    int32_t *items = make_items(n);
    for (size_t i = 0; i < n; i++) /* not sorted, so order is checked against items */
        items[i] = (int32_t)((i * 7919) % n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    sk_pool_job job = affine_job(&plain_arg);
    assert_rc(sk_pool_map(pool, &job, items, n, results, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_result(&results[i], items[i], &plain_arg);
    }
    /* Every item was handed to the function exactly once. */
    for (size_t i = 0; i < n; i++)
        if (sh->attempts[i] != 1)
            fail_msg("item %zu: function called %d times", i, sh->attempts[i]);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* The status array is optional. */
static void test_map_without_status(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 300;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    sk_pool_job job = affine_job(&plain_arg);
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++)
        check_result(&results[i], items[i], &plain_arg);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* The argument's bytes are the ones of each call, not of the first. */
static void test_map_argument_per_call(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 200;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    for (int32_t k = 1; k <= 5; k++) {
        affine_arg arg = {.mul = k, .add = -k * 100, .fail_item = -1, .gate_from = -1};
        sk_pool_job job = affine_job(&arg);
        memset(results, 0, n * sizeof *results);
        assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
        arg.mul = 1000; /* the call is over: changing it now changes nothing */
        affine_arg want = {.mul = k, .add = -k * 100};
        for (size_t i = 0; i < n; i++)
            check_result(&results[i], items[i], &want);
    }
    xfree(items);
    xfree(results);
    release_pool(pool);
}

static void map_with_workers(int workers, size_t n)
{
    sk_pool_config cfg = small_cfg(workers);
    sk_pool *pool = new_pool(&cfg);
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    sk_pool_job job = affine_job(&plain_arg);
    assert_rc(sk_pool_map(pool, &job, items, n, results, status), SK_OK);
    int32_t pids[64];
    int npids = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_result(&results[i], items[i], &plain_arg);
        int k = 0;
        while (k < npids && pids[k] != results[i].pid)
            k++;
        if (k == npids) {
            assert_cmp(npids, <, 64);
            pids[npids++] = results[i].pid;
        }
    }
    /* No worker was replaced without a reason. */
    if (npids > workers)
        fail_msg("%d workers, but %d different pids ran items", workers, npids);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

static void test_map_one_worker(void **state)
{
    (void)state;
    map_with_workers(1, 3000);
}

static void test_map_many_workers(void **state)
{
    (void)state;
    map_with_workers(8, 3000);
}

/* The default: one worker per CPU. */
static void test_map_default_config(void **state)
{
    (void)state;
    sk_pool *pool = new_pool(NULL);
    size_t n = 1000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    sk_pool_job job = affine_job(&plain_arg);
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++)
        check_result(&results[i], items[i], &plain_arg);
    xfree(items);
    xfree(results);
    release_pool(pool);
    assert_no_children();
}

/* More workers than items, and one item. */
static void test_map_one_item(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(4);
    sk_pool *pool = new_pool(&cfg);
    int32_t item = 41;
    affine_out result = {0};
    int status = 12345;
    sk_pool_job job = affine_job(&plain_arg);
    assert_rc(sk_pool_map(pool, &job, &item, 1, &result, &status), SK_OK);
    assert_int_equal(status, SK_OK);
    check_result(&result, 41, &plain_arg);

    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, &item, 1, &call), SK_OK);
    track_call(call);
    size_t index = 99;
    memset(&result, 0, sizeof result);
    assert_rc(sk_pool_next(call, BOUND, &index, &result), SK_OK);
    assert_int_equal(index, 0);
    check_result(&result, 41, &plain_arg);
    assert_rc(sk_pool_next(call, BOUND, &index, &result), SK_ECLOSED);
    free_call(call);
    release_pool(pool);
}

static void test_map_empty(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    sk_pool_job job = affine_job(&plain_arg);
    int32_t item = 1;
    affine_out result = {0};
    int status = 12345;
    double t0 = skt_now();
    assert_rc(sk_pool_map(pool, &job, &item, 0, &result, &status), SK_OK);
    assert_int_equal(result.value, 0); /* nothing written */
    assert_int_equal(status, 12345);
    assert_rc(sk_pool_map(pool, &job, NULL, 0, NULL, NULL), SK_OK);
    double took = skt_now() - t0;
    if (took > 1.0)
        fail_msg("an empty map took %.2fs", took);

    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, NULL, 0, NULL, NULL, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_wait(call, BOUND), SK_OK);
    assert_true(sk_pool_ready(call));
    assert_rc(sk_pool_get(call, 0), SK_OK);
    assert_null(sk_pool_error(call));
    free_call(call);

    /* The pool is still good for a real map. */
    int32_t *items = make_items(10);
    affine_out *results = make_results(10);
    assert_rc(sk_pool_map(pool, &job, items, 10, results, NULL), SK_OK);
    for (size_t i = 0; i < 10; i++)
        check_result(&results[i], items[i], &plain_arg);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

static void test_imap_empty(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    sk_pool_job job = affine_job(&plain_arg);
    affine_out result;
    size_t index;
    sk_pool_call *call = NULL;

    assert_rc(sk_pool_imap(pool, &job, NULL, 0, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_next(call, 0, &index, &result), SK_ECLOSED);
    assert_rc(sk_pool_next(call, BOUND, &index, &result), SK_ECLOSED);
    free_call(call);

    call = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &job, NULL, 0, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_next(call, -1, &index, &result), SK_ECLOSED);
    free_call(call);
    release_pool(pool);
}

/* -------------------------------------------------------------- imap */

static void test_imap_keeps_order(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(3);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 4000;
    int32_t *items = make_items(n);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    for (size_t i = 0; i < n; i++) {
        affine_out r = {0};
        size_t index = (size_t)-1;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_int_equal(index, i);
        check_result(&r, items[i], &plain_arg);
    }
    affine_out r;
    size_t index;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ECLOSED); /* and again */
    assert_null(sk_pool_error(call));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sh->attempts[i], 1);
    free_call(call);
    xfree(items);
    release_pool(pool);
}

/* imap waits for item 0 even though later items are ready: next times out
 * while item 0 is held at the gate, then yields 0, 1, 2, ... */
static void test_imap_waits_for_the_next_in_order(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = 4;
    sk_pool *pool = new_pool(&cfg);
    size_t n = 400;
    int32_t *items = make_items(n);
    affine_arg arg = plain_arg;
    arg.gate_from = 0;
    arg.gate_to = 1;
    sk_pool_job job = affine_job(&arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    affine_out r;
    size_t index;
    /* (The first next hands the first batches out.) */
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ETIMEDOUT);
    WAIT_FOR(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) == 1);
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ETIMEDOUT);
    double t0 = skt_now();
    assert_rc(sk_pool_next(call, 0.1, &index, &r), SK_ETIMEDOUT);
    double took = skt_now() - t0;
    if (took < 0.09 || took > 5.0)
        fail_msg("next(0.1) timed out after %.3fs", took);
    open_gate();
    for (size_t i = 0; i < n; i++) {
        memset(&r, 0, sizeof r);
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_int_equal(index, i);
        check_result(&r, items[i], &plain_arg);
    }
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    free_call(call);
    xfree(items);
    release_pool(pool);
}

/* ---------------------------------------------------- unordered_imap */

static void test_unordered_imap_every_index_once(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(3);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 5000;
    int32_t *items = make_items(n);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)(n - 1 - i);
    unsigned char *seen = xcalloc(n, 1);
    assert_non_null(seen);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    for (size_t k = 0; k < n; k++) {
        affine_out r = {0};
        size_t index = (size_t)-1;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_cmp(index, <, n);
        if (seen[index]++)
            fail_msg("index %zu yielded twice", index);
        check_result(&r, items[index], &plain_arg);
    }
    affine_out r;
    size_t index;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ECLOSED);
    free_call(call);
    xfree(seen);
    xfree(items);
    release_pool(pool);
}

/* unordered_imap yields what is ready: with item 0 held at the gate, other
 * results come first. */
static void test_unordered_imap_yields_ready_results_first(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = 4;
    sk_pool *pool = new_pool(&cfg);
    size_t n = 400;
    int32_t *items = make_items(n);
    affine_arg arg = plain_arg;
    arg.gate_from = 0;
    arg.gate_to = 1;
    sk_pool_job job = affine_job(&arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    unsigned char *seen = xcalloc(n, 1);
    assert_non_null(seen);
    affine_out r = {0};
    size_t index = 0;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
    assert_cmp(index, >, 0);
    assert_cmp(index, <, n); /* item 0 is still at the gate */
    check_result(&r, items[index], &plain_arg);
    seen[index] = 1;
    open_gate();
    for (size_t k = 1; k < n; k++) {
        memset(&r, 0, sizeof r);
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_cmp(index, <, n);
        if (seen[index]++)
            fail_msg("index %zu yielded twice", index);
        check_result(&r, items[index], &plain_arg);
    }
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    free_call(call);
    xfree(seen);
    xfree(items);
    release_pool(pool);
}

/* --------------------------------------------------------- async_map */

static void test_async_map_ready_wait_get(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 1000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    affine_arg arg = plain_arg;
    arg.gate_from = 500;
    arg.gate_to = 501;
    sk_pool_job job = affine_job(&arg);
    sk_pool_call *call = NULL;
    double t0 = skt_now();
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, status, &call), SK_OK);
    track_call(call);
    if (skt_now() - t0 > 5.0)
        fail_msg("async_map took %.2fs to return", skt_now() - t0);

    WAIT_FOR(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) == 1);
    assert_false(sk_pool_ready(call));
    assert_rc(sk_pool_wait(call, 0), SK_ETIMEDOUT);
    t0 = skt_now();
    assert_rc(sk_pool_wait(call, 0.1), SK_ETIMEDOUT);
    double took = skt_now() - t0;
    if (took < 0.09 || took > 5.0)
        fail_msg("wait(0.1) timed out after %.3fs", took);
    t0 = skt_now();
    assert_rc(sk_pool_get(call, 0.1), SK_ETIMEDOUT);
    took = skt_now() - t0;
    if (took < 0.09 || took > 5.0)
        fail_msg("get(0.1) timed out after %.3fs", took);
    assert_false(sk_pool_ready(call));

    open_gate();
    assert_rc(sk_pool_wait(call, -1), SK_OK);
    assert_true(sk_pool_ready(call));
    assert_rc(sk_pool_wait(call, 0), SK_OK);
    assert_rc(sk_pool_get(call, 0), SK_OK);
    assert_rc(sk_pool_get(call, BOUND), SK_OK); /* again */
    assert_null(sk_pool_error(call));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_result(&results[i], items[i], &plain_arg);
        assert_null(sk_pool_item_error(call, i));
    }
    free_call(call);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* Two async maps in flight on one pool at once. */
static void test_two_async_maps_at_once(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 3000;
    int32_t *items = make_items(n);
    affine_out *r1 = make_results(n), *r2 = make_results(n);
    affine_arg a1 = plain_arg, a2 = {.mul = -2, .add = 5, .fail_item = -1, .gate_from = -1};
    sk_pool_job j1 = affine_job(&a1), j2 = affine_job(&a2);
    sk_pool_call *c1 = NULL, *c2 = NULL;
    assert_rc(sk_pool_async_map(pool, &j1, items, n, r1, NULL, &c1), SK_OK);
    track_call(c1);
    assert_rc(sk_pool_async_map(pool, &j2, items, n, r2, NULL, &c2), SK_OK);
    track_call(c2);
    assert_rc(sk_pool_get(c2, BOUND), SK_OK);
    assert_rc(sk_pool_get(c1, BOUND), SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_result(&r1[i], items[i], &a1);
        check_result(&r2[i], items[i], &a2);
    }
    free_call(c1);
    free_call(c2);
    xfree(items);
    xfree(r1);
    xfree(r2);
    release_pool(pool);
}

/* A call freed before it was waited for: freeing waits for its items. */
static void test_call_free_waits(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 2000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    sk_pool_job job = affine_job(&plain_arg);
    for (int round = 0; round < 20; round++) {
        sk_pool_call *call = NULL;
        assert_rc(sk_pool_async_map(pool, &job, items, n, results, NULL, &call), SK_OK);
        free_call(call); /* not waited for */
        sk_pool_counters c;
        sk_pool_counters_of(pool, &c);
        assert_int_equal(c.in_flight, 0);
    }
    /* An imap abandoned half-way. */
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    affine_out r;
    size_t index;
    for (int i = 0; i < 10; i++)
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
    free_call(call);
    /* The pool is fine afterwards. */
    memset(results, 0, n * sizeof *results);
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++)
        check_result(&results[i], items[i], &plain_arg);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* ---------------------------------------------------------- failures */

/* One failing item: map returns the first failure's code and fills every
 * other result. */
static void test_map_failure_fills_the_rest(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 1000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    affine_arg arg = plain_arg;
    arg.fail_item = 377;
    arg.fail_code = 7;
    sk_pool_job job = affine_job(&arg);
    assert_rc(sk_pool_map(pool, &job, items, n, results, status), SK_EPROCESS);
    for (size_t i = 0; i < n; i++) {
        if (i == 377) {
            assert_int_equal(status[i], SK_EPROCESS);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        check_result(&results[i], items[i], &arg);
    }
    /* Without a status array: the same code. */
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_EPROCESS);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

static void test_async_map_error_details(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 1000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    affine_arg arg = plain_arg;
    arg.fail_item = 613;
    arg.fail_code = 7;
    sk_pool_job job = affine_job(&arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    assert_true(sk_pool_ready(call));
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    skt_print_error(e);
    assert_int_equal(e->item, 613);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_int_equal(e->code, 7);
    const sk_error *ie = sk_pool_item_error(call, 613);
    assert_non_null(ie);
    assert_int_equal(ie->item, 613);
    assert_int_equal(ie->kind, SK_RUN_ERROR);
    assert_int_equal(ie->code, 7);
    for (size_t i = 0; i < n; i++) {
        if (i == 613) {
            assert_int_equal(status[i], SK_EPROCESS);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        assert_null(sk_pool_item_error(call, i));
        check_result(&results[i], items[i], &arg);
    }
    assert_null(sk_pool_item_error(call, n));      /* past the end */
    assert_null(sk_pool_item_error(call, n + 50)); /* far past */
    assert_rc(sk_pool_get(call, 0), SK_EPROCESS);  /* the same again */
    free_call(call);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* The function's return value, whatever it is, is the error's code. */
static void test_failure_codes(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    static const int32_t codes[] = {1, 7, -3, 255, 100000};
    size_t n = 50;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        affine_arg arg = plain_arg;
        arg.fail_item = 20;
        arg.fail_code = codes[k];
        sk_pool_job job = affine_job(&arg);
        sk_pool_call *call = NULL;
        assert_rc(sk_pool_async_map(pool, &job, items, n, results, NULL, &call), SK_OK);
        track_call(call);
        assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
        const sk_error *e = sk_pool_item_error(call, 20);
        assert_non_null(e);
        if (e->kind != SK_RUN_ERROR || e->code != codes[k] || e->item != 20) {
            skt_print_error(e);
            fail_msg("return %d: kind %s, code %d, item %ld", codes[k], sk_error_name(e->kind),
                     e->code, e->item);
        }
        free_call(call);
    }
    xfree(items);
    xfree(results);
    release_pool(pool);
}

static void test_imap_failure(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 500;
    int32_t *items = make_items(n);
    affine_arg arg = plain_arg;
    arg.fail_item = 123;
    arg.fail_code = 9;
    sk_pool_job job = affine_job(&arg);

    for (int ordered = 1; ordered >= 0; ordered--) {
        sk_pool_call *call = NULL;
        if (ordered)
            assert_rc(sk_pool_imap(pool, &job, items, n, &call), SK_OK);
        else
            assert_rc(sk_pool_unordered_imap(pool, &job, items, n, &call), SK_OK);
        track_call(call);
        int failures = 0;
        unsigned char *seen = xcalloc(n, 1);
        for (size_t k = 0; k < n; k++) {
            affine_out r = {0};
            size_t index = (size_t)-1;
            int rc = sk_pool_next(call, BOUND, &index, &r);
            assert_cmp(index, <, n);
            assert_int_equal(seen[index]++, 0);
            if (ordered)
                assert_int_equal(index, k);
            if (index == 123) {
                assert_rc(rc, SK_EPROCESS);
                const sk_error *e = sk_pool_item_error(call, index);
                assert_non_null(e);
                assert_int_equal(e->kind, SK_RUN_ERROR);
                assert_int_equal(e->code, 9);
                assert_int_equal(e->item, 123);
                failures++;
            } else {
                assert_rc(rc, SK_OK);
                check_result(&r, items[index], &arg);
            }
        }
        assert_int_equal(failures, 1);
        affine_out r;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
        const sk_error *e = sk_pool_error(call);
        assert_non_null(e);
        assert_int_equal(e->item, 123);
        xfree(seen);
        free_call(call);
    }
    xfree(items);
    release_pool(pool);
}

/* ---------------------------------------------------------- counters */

static void test_counters(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    sk_pool_counters c = {-1, -1, -1};
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, 0);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.in_flight, 0);

    size_t n = 100;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    affine_arg arg = plain_arg;
    arg.fail_item = 50;
    arg.fail_code = 3;
    sk_pool_job job = affine_job(&arg);
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_EPROCESS);
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, 100);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.in_flight, 0);

    /* While items wait at the gate, they are in flight. */
    arg = plain_arg;
    arg.gate_from = 0;
    arg.gate_to = (int32_t)n;
    job = affine_job(&arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, NULL, &call), SK_OK);
    track_call(call);
    WAIT_FOR(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) >= 2);
    sk_pool_counters_of(pool, &c);
    print_message("    while 2 items wait: done %ld, failed %ld, in_flight %ld\n", c.done, c.failed,
                  c.in_flight);
    assert_cmp(c.in_flight, >=, 2);
    assert_cmp(c.in_flight, <=, (long)n);
    assert_cmp(c.done, >=, 100);
    assert_cmp(c.done, <=, 100 + (long)n - 2);
    open_gate();
    assert_rc(sk_pool_get(call, BOUND), SK_OK);
    free_call(call);
    sk_pool_counters_of(pool, &c);
    /* Counters are the pool's: they add up over calls. */
    assert_int_equal(c.done, 200);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.in_flight, 0);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* ------------------------------------------- close, join, terminate */

static int produce_count(void *state, void *item)
{
    int32_t *next = state;
    if (*next >= 10)
        return 0;
    *(int32_t *)item = (*next)++;
    return 1;
}

/* Every call form returns want, and nothing is left running when one
 * succeeds by mistake. */
static void expect_every_form(sk_pool *pool, const sk_pool_job *job, int want)
{
    int32_t items[4] = {1, 2, 3, 4};
    union {
        affine_out a;
        char bytes[256];
    } results[4];
    int status[4];
    assert_true(job == NULL || job->result_size <= sizeof results[0]);
    assert_rc(sk_pool_map(pool, job, items, 4, results, status), want);
    sk_pool_call *call = NULL;
    int rc = sk_pool_async_map(pool, job, items, 4, results, status, &call);
    if (rc == SK_OK) {
        sk_pool_get(call, BOUND);
        sk_pool_call_free(call);
    }
    assert_rc(rc, want);
    call = NULL;
    rc = sk_pool_imap(pool, job, items, 4, &call);
    if (rc == SK_OK)
        sk_pool_call_free(call);
    assert_rc(rc, want);
    call = NULL;
    rc = sk_pool_unordered_imap(pool, job, items, 4, &call);
    if (rc == SK_OK)
        sk_pool_call_free(call);
    assert_rc(rc, want);
    call = NULL;
    int32_t next = 0;
    rc = sk_pool_imap_stream(pool, job, produce_count, &next, true, &call);
    if (rc == SK_OK)
        sk_pool_call_free(call);
    assert_rc(rc, want);
}

static void test_close_then_join(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(3);
    sk_pool *pool = new_pool(&cfg);
    sk_pool_job job = affine_job(&plain_arg);
    assert_rc(sk_pool_join(pool, 0), SK_ESTATE); /* not closed */
    assert_rc(sk_pool_join(pool, 1.0), SK_ESTATE);
    size_t n = 100;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    assert_rc(sk_pool_close(pool), SK_OK);
    expect_every_form(pool, &job, SK_ESTATE);
    double t0 = skt_now();
    assert_rc(sk_pool_join(pool, BOUND), SK_OK);
    if (skt_now() - t0 > 10.0)
        fail_msg("join of an idle pool took %.2fs", skt_now() - t0);
    /* The workers have left: nothing is left to reap. */
    assert_no_children();
    assert_rc(sk_pool_join(pool, 0), SK_OK); /* again */
    expect_every_form(pool, &job, SK_ESTATE);
    sk_pool_counters c;
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, 100);
    release_pool(pool);
    assert_no_children();
    xfree(items);
    xfree(results);
}

/* Calls in progress when the pool is closed go on; join waits for them. */
static void test_close_lets_calls_finish(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 500;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    affine_arg arg = plain_arg;
    arg.gate_from = 100;
    arg.gate_to = 101;
    sk_pool_job job = affine_job(&arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, status, &call), SK_OK);
    track_call(call);
    sk_pool_call *it = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &job, items, n, &it), SK_OK);
    track_call(it);
    WAIT_FOR(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) >= 1);
    assert_rc(sk_pool_close(pool), SK_OK);
    assert_rc(sk_pool_join(pool, 0), SK_ETIMEDOUT);
    double t0 = skt_now();
    assert_rc(sk_pool_join(pool, 0.1), SK_ETIMEDOUT);
    double took = skt_now() - t0;
    if (took < 0.09 || took > 5.0)
        fail_msg("join(0.1) timed out after %.3fs", took);
    assert_false(sk_pool_ready(call));
    open_gate();
    /* The iterator's results are taken while the pool is closed. */
    unsigned char *seen = xcalloc(n, 1);
    for (size_t k = 0; k < n; k++) {
        affine_out r = {0};
        size_t index = (size_t)-1;
        assert_rc(sk_pool_next(it, BOUND, &index, &r), SK_OK);
        assert_cmp(index, <, n);
        assert_true(!seen[index]++);
        check_result(&r, items[index], &arg);
    }
    affine_out r;
    size_t index;
    assert_rc(sk_pool_next(it, BOUND, &index, &r), SK_ECLOSED);
    xfree(seen);
    assert_rc(sk_pool_join(pool, BOUND), SK_OK);
    assert_true(sk_pool_ready(call));
    assert_rc(sk_pool_get(call, 0), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_result(&results[i], items[i], &arg);
    }
    free_call(it);
    free_call(call);
    release_pool(pool);
    assert_no_children();
    xfree(items);
    xfree(results);
    xfree(status);
}

static void test_terminate_fails_calls_in_progress(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 200;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    affine_arg arg = plain_arg;
    arg.gate_from = 0;
    arg.gate_to = (int32_t)n; /* nothing finishes until the gate opens: never */
    sk_pool_job job = affine_job(&arg);
    sk_pool_call *call = NULL, *it = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_imap(pool, &job, items, n, &it), SK_OK);
    track_call(it);
    WAIT_FOR(__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) >= 2);
    double t0 = skt_now();
    assert_rc(sk_pool_terminate(pool), SK_OK);
    assert_rc(sk_pool_get(call, BOUND), SK_EKILLED);
    double took = skt_now() - t0;
    if (took > 5.0)
        fail_msg("terminate and get took %.2fs", took);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(status[i], SK_EKILLED);
    affine_out r;
    size_t index;
    assert_rc(sk_pool_next(it, BOUND, &index, &r), SK_EKILLED);
    /* The workers are gone and reaped. */
    assert_no_children();
    expect_every_form(pool, &job, SK_ESTATE);
    assert_rc(sk_pool_terminate(pool), SK_OK); /* twice is fine */
    /* A killed call is over: ready says so (a `while (!ready)` loop ends). */
    assert_true(sk_pool_ready(call));
    free_call(it);
    free_call(call);
    release_pool(pool);
    assert_no_children();
    xfree(items);
    xfree(results);
    xfree(status);
}

/* release reaps every worker, whatever the pool was doing. */
static void test_release_reaps_every_worker(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    for (int round = 0; round < 30; round++) {
        sk_pool_config cfg = small_cfg(1 + round % 5);
        sk_pool *pool = new_pool(&cfg);
        assert_false(skt_no_children());
        if (round % 3 == 1) {
            int32_t *items = make_items(100);
            affine_out *results = make_results(100);
            sk_pool_job job = affine_job(&plain_arg);
            assert_rc(sk_pool_map(pool, &job, items, 100, results, NULL), SK_OK);
            xfree(items);
            xfree(results);
        } else if (round % 3 == 2) {
            assert_rc(sk_pool_close(pool), SK_OK);
        }
        release_pool(pool);
        if (!skt_no_children())
            fail_msg("round %d: a child is left after sk_pool_release", round);
    }
    assert_int_equal(skt_fd_count(), fds);
}

/* Many pools at once, released in another order. */
static void test_several_pools(void **state)
{
    (void)state;
    sk_pool *pools[4];
    for (int k = 0; k < 4; k++) {
        sk_pool_config cfg = small_cfg(2);
        pools[k] = new_pool(&cfg);
    }
    size_t n = 300;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    for (int k = 3; k >= 0; k--) {
        affine_arg arg = {.mul = k + 1, .add = k, .fail_item = -1, .gate_from = -1};
        sk_pool_job job = affine_job(&arg);
        memset(results, 0, n * sizeof *results);
        assert_rc(sk_pool_map(pools[k], &job, items, n, results, NULL), SK_OK);
        for (size_t i = 0; i < n; i++)
            check_result(&results[i], items[i], &arg);
    }
    release_pool(pools[1]);
    release_pool(pools[3]);
    release_pool(pools[0]);
    release_pool(pools[2]);
    assert_no_children();
    xfree(items);
    xfree(results);
}

/* -------------------------------------------------------- validation */

static int star_fn(void *const *fields, void *result, const void *arg)
{
    (void)fields;
    (void)result;
    (void)arg;
    return 0;
}

static int dummy_run(sk_process *self)
{
    (void)self;
    return 0;
}

static const sk_class dummy_class = {.name = "dummy", .run = dummy_run, .size = sizeof(sk_process)};

static void test_job_validation(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(1);
    sk_pool *pool = new_pool(&cfg);

    sk_pool_job none = {.item_size = 4, .result_size = 4};
    expect_every_form(pool, &none, SK_EINVAL);
    sk_pool_job fn_star = {
        .fn = affine, .star = star_fn, .item_size = 8, .item_format = "S(ii)", .result_size = 4};
    expect_every_form(pool, &fn_star, SK_EINVAL);
    sk_pool_job fn_cls = {
        .fn = affine, .cls = &dummy_class, .item_size = 4, .result_size = 4, .result_format = "i"};
    expect_every_form(pool, &fn_cls, SK_EINVAL);
    sk_pool_job star_cls = {.star = star_fn,
                            .cls = &dummy_class,
                            .item_size = 8,
                            .item_format = "S(ii)",
                            .result_size = 4,
                            .result_format = "i"};
    expect_every_form(pool, &star_cls, SK_EINVAL);
    sk_pool_job all = {.fn = affine,
                       .star = star_fn,
                       .cls = &dummy_class,
                       .item_size = 8,
                       .item_format = "S(ii)",
                       .result_size = 4,
                       .result_format = "i"};
    expect_every_form(pool, &all, SK_EINVAL);
    expect_every_form(pool, NULL, SK_EINVAL);

    /* After all that, the pool works. */
    sk_pool_job job = affine_job(&plain_arg);
    expect_every_form(pool, &job, SK_OK);
    release_pool(pool);
}

static void test_null_arguments(void **state)
{
    (void)state;
    assert_rc(sk_pool_create(NULL, NULL), SK_EINVAL);
    sk_pool_job job = affine_job(&plain_arg);
    int32_t items[2] = {1, 2};
    affine_out results[2];
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_map(NULL, &job, items, 2, results, NULL), SK_EINVAL);
    assert_rc(sk_pool_async_map(NULL, &job, items, 2, results, NULL, &call), SK_EINVAL);
    assert_rc(sk_pool_imap(NULL, &job, items, 2, &call), SK_EINVAL);
    assert_rc(sk_pool_unordered_imap(NULL, &job, items, 2, &call), SK_EINVAL);
    int32_t next = 0;
    assert_rc(sk_pool_imap_stream(NULL, &job, produce_count, &next, true, &call), SK_EINVAL);
    assert_rc(sk_pool_close(NULL), SK_EINVAL);
    assert_rc(sk_pool_join(NULL, 0), SK_EINVAL);
    assert_rc(sk_pool_terminate(NULL), SK_EINVAL);
    sk_pool_release(NULL); /* a no-op */
    size_t index;
    assert_rc(sk_pool_next(NULL, 0, &index, results), SK_EINVAL);
    assert_false(sk_pool_ready(NULL));
    assert_rc(sk_pool_wait(NULL, 0), SK_EINVAL);
    assert_rc(sk_pool_get(NULL, 0), SK_EINVAL);
    assert_null(sk_pool_error(NULL));
    assert_null(sk_pool_item_error(NULL, 0));
    sk_pool_call_free(NULL); /* a no-op */

    sk_pool_config cfg = small_cfg(1);
    sk_pool *pool = new_pool(&cfg);
    /* No place for the call. */
    assert_rc(sk_pool_async_map(pool, &job, items, 2, results, NULL, NULL), SK_EINVAL);
    assert_rc(sk_pool_imap(pool, &job, items, 2, NULL), SK_EINVAL);
    assert_rc(sk_pool_unordered_imap(pool, &job, items, 2, NULL), SK_EINVAL);
    assert_rc(sk_pool_imap_stream(pool, &job, produce_count, &next, true, NULL), SK_EINVAL);
    /* Items missing, results missing, no producer. */
    assert_rc(sk_pool_map(pool, &job, NULL, 2, results, NULL), SK_EINVAL);
    assert_rc(sk_pool_map(pool, &job, items, 2, NULL, NULL), SK_EINVAL);
    assert_rc(sk_pool_imap(pool, &job, NULL, 2, &call), SK_EINVAL);
    assert_rc(sk_pool_imap_stream(pool, &job, NULL, &next, true, &call), SK_EINVAL);
    /* Nothing broke. */
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_OK);
    check_result(&results[1], 2, &plain_arg);
    release_pool(pool);
    assert_no_children();
}

/* ------------------------------------------------------- reuse, pids */

/* A pool reused for many calls keeps its workers: no worker is replaced
 * without a reason. */
static void test_reuse_keeps_workers(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(3);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 64;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    sk_pool_job job = affine_job(&plain_arg);
    int32_t pids[16];
    int npids = 0;
    for (int call = 0; call < 300; call++) {
        memset(results, 0, n * sizeof *results);
        assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
        for (size_t i = 0; i < n; i++) {
            check_result(&results[i], items[i], &plain_arg);
            int k = 0;
            while (k < npids && pids[k] != results[i].pid)
                k++;
            if (k == npids) {
                if (npids == 3)
                    fail_msg("call %d: a 4th worker pid %d", call, results[i].pid);
                pids[npids++] = results[i].pid;
            }
        }
    }
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* ------------------------------------------------ calls side by side */

/* async_map "returns at once; the workers go on while the caller does other
 * things": every item gets done without the caller calling ready, wait or
 * get, even when the call has many batches (with the automatic batch size,
 * which keeps a call within what is handed out at once: pool.h). */
static void test_async_map_goes_on_without_the_caller(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = 0; /* automatic: here about 30 batches */
    sk_pool *pool = new_pool(&cfg);
    size_t n = 3000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, NULL, &call), SK_OK);
    track_call(call);
    /* The caller does other things: it only looks at shared memory. */
    double deadline = skt_now() + 10.0;
    long called = 0;
    while (skt_now() < deadline) {
        called = 0;
        for (size_t i = 0; i < n; i++)
            called += sh->attempts[i] > 0;
        if (called == (long)n)
            break;
        skt_sleep(0.001);
    }
    if (called != (long)n)
        fail_msg("without the caller, the workers stopped after %ld of %zu items", called, n);
    assert_rc(sk_pool_get(call, BOUND), SK_OK);
    for (size_t i = 0; i < n; i++)
        check_result(&results[i], items[i], &plain_arg);
    free_call(call);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* join waits for the calls in progress, even one the caller never drives
 * again. */
static void test_join_waits_for_an_async_map(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = 1;
    sk_pool *pool = new_pool(&cfg);
    size_t n = 3000;
    int32_t *items = make_items(n);
    affine_out *results = make_results(n);
    int *status = make_status(n);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_close(pool), SK_OK);
    assert_rc(sk_pool_join(pool, 10.0), SK_OK);
    assert_true(sk_pool_ready(call));
    assert_rc(sk_pool_get(call, 0), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_result(&results[i], items[i], &plain_arg);
    }
    free_call(call);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* Two async maps with many batches each, the second waited for first. */
static void test_two_async_maps_many_batches(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = 1;
    sk_pool *pool = new_pool(&cfg);
    size_t n = 1000;
    int32_t *items = make_items(n);
    affine_out *r1 = make_results(n), *r2 = make_results(n);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *c1 = NULL, *c2 = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, n, r1, NULL, &c1), SK_OK);
    track_call(c1);
    assert_rc(sk_pool_async_map(pool, &job, items, n, r2, NULL, &c2), SK_OK);
    track_call(c2);
    int rc = sk_pool_get(c2, 10.0);
    if (rc == SK_ETIMEDOUT)
        fail_msg("the second async map never finished while the first was not collected");
    assert_rc(rc, SK_OK);
    assert_rc(sk_pool_get(c1, BOUND), SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_result(&r1[i], items[i], &plain_arg);
        check_result(&r2[i], items[i], &plain_arg);
    }
    free_call(c1);
    free_call(c2);
    xfree(items);
    xfree(r1);
    xfree(r2);
    release_pool(pool);
}

/* A map for every result of an iterator over the same pool: the
 * iterator's results not taken yet must not block the maps. */
static void test_maps_inside_an_imap_loop(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n_outer = 200, n_inner = 64;
    int32_t *items = make_items(n_outer);
    affine_out *results = make_results(n_inner);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *outer = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, n_outer, &outer), SK_OK);
    track_call(outer);
    for (size_t k = 0; k < n_outer; k++) {
        affine_out r = {0};
        size_t index;
        assert_rc(sk_pool_next(outer, BOUND, &index, &r), SK_OK);
        assert_int_equal(index, k);
        check_result(&r, items[k], &plain_arg);
        sk_pool_call *inner = NULL;
        memset(results, 0, n_inner * sizeof *results);
        assert_rc(sk_pool_async_map(pool, &job, items, n_inner, results, NULL, &inner), SK_OK);
        track_call(inner);
        int rc = sk_pool_get(inner, 10.0);
        if (rc == SK_ETIMEDOUT)
            fail_msg("the map after the outer iterator's result %zu never finished", k);
        assert_rc(rc, SK_OK);
        for (size_t i = 0; i < n_inner; i++)
            check_result(&results[i], items[i], &plain_arg);
        free_call(inner);
    }
    affine_out r;
    size_t index;
    assert_rc(sk_pool_next(outer, BOUND, &index, &r), SK_ECLOSED);
    free_call(outer);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* sk_pool_ready is for async maps; asked of an iterator, it must not take
 * the iterator's results away from sk_pool_next. */
static void test_ready_on_an_iterator_loses_nothing(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    size_t n = 400;
    int32_t *items = make_items(n);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    affine_out r;
    size_t index;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK); /* results are coming */
    assert_int_equal(index, 0);
    for (int k = 0; k < 50; k++) {
        (void)sk_pool_ready(call);
        skt_sleep(0.001);
    }
    assert_rc(sk_pool_wait(call, 0), SK_EINVAL); /* not an async map */
    assert_rc(sk_pool_get(call, 0), SK_EINVAL);
    for (size_t i = 1; i < n; i++) {
        memset(&r, 0, sizeof r);
        int rc = sk_pool_next(call, BOUND, &index, &r);
        if (rc != SK_OK)
            fail_msg("result %zu of %zu: %d (%s) after sk_pool_ready on the iterator", i, n, rc,
                     sk_strerror(rc));
        assert_int_equal(index, i);
        check_result(&r, items[i], &plain_arg);
    }
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    free_call(call);
    release_pool(pool);
}

/* Many iterators alive at once on one pool, taken from in turns. */
static void test_many_calls_alive_at_once(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    sk_pool *pool = new_pool(&cfg);
    enum { CALLS = 100 };
    size_t n = 50;
    int32_t *items = make_items(n);
    sk_pool_job job = affine_job(&plain_arg);
    sk_pool_call *calls[CALLS];
    for (int k = 0; k < CALLS; k++) {
        calls[k] = NULL;
        int rc = sk_pool_unordered_imap(pool, &job, items, n, &calls[k]);
        if (rc != SK_OK)
            fail_msg("iterator %d of %d: %d (%s)", k + 1, CALLS, rc, sk_strerror(rc));
        track_call(calls[k]);
    }
    unsigned char *seen = xcalloc(CALLS * n, 1);
    for (size_t round = 0; round < n; round++) {
        for (int k = 0; k < CALLS; k++) {
            affine_out r = {0};
            size_t index = (size_t)-1;
            assert_rc(sk_pool_next(calls[k], BOUND, &index, &r), SK_OK);
            assert_cmp(index, <, n);
            assert_true(!seen[k * n + index]++);
            check_result(&r, items[index], &plain_arg);
        }
    }
    for (int k = 0; k < CALLS; k++) {
        affine_out r;
        size_t index;
        assert_rc(sk_pool_next(calls[k], BOUND, &index, &r), SK_ECLOSED);
        free_call(calls[k]);
    }
    release_pool(pool);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_map_keeps_order),
        SKT_TEST(test_map_without_status),
        SKT_TEST(test_map_argument_per_call),
        SKT_TEST(test_map_one_worker),
        SKT_TEST(test_map_many_workers),
        SKT_TEST(test_map_default_config),
        SKT_TEST(test_map_one_item),
        SKT_TEST(test_map_empty),
        SKT_TEST(test_imap_empty),
        SKT_TEST(test_imap_keeps_order),
        SKT_TEST(test_imap_waits_for_the_next_in_order),
        SKT_TEST(test_unordered_imap_every_index_once),
        SKT_TEST(test_unordered_imap_yields_ready_results_first),
        SKT_TEST(test_async_map_ready_wait_get),
        SKT_TEST(test_two_async_maps_at_once),
        SKT_TEST(test_call_free_waits),
        SKT_TEST(test_map_failure_fills_the_rest),
        SKT_TEST(test_async_map_error_details),
        SKT_TEST(test_failure_codes),
        SKT_TEST(test_imap_failure),
        SKT_TEST(test_counters),
        SKT_TEST(test_close_then_join),
        SKT_TEST(test_close_lets_calls_finish),
        SKT_TEST(test_terminate_fails_calls_in_progress),
        SKT_TEST(test_release_reaps_every_worker),
        SKT_TEST(test_several_pools),
        SKT_TEST(test_job_validation),
        SKT_TEST(test_null_arguments),
        SKT_TEST(test_reuse_keeps_workers),
        SKT_TEST(test_async_map_goes_on_without_the_caller),
        SKT_TEST(test_join_waits_for_an_async_map),
        SKT_TEST(test_two_async_maps_many_batches),
        SKT_TEST(test_maps_inside_an_imap_loop),
        SKT_TEST(test_ready_on_an_iterator_loses_nothing),
        SKT_TEST(test_many_calls_alive_at_once),
    };
    return skt_run(argc, argv, tests);
}
