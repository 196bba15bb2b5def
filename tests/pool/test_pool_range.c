/* SPDX-License-Identifier: MIT */
/*
 * Pools, the range form (sk_pool_job.range): one call for a run of
 * consecutive items. The function here records in each result how many
 * items its call had, so the tests see runs of many items where they are
 * allowed and single items where they must be: after a run fails (the
 * items are run again one at a time and only the failing ones fail), after
 * a crash inside a run (the successor narrows it down; a crash that does
 * not come back is charged to no item), with item_timeout, and with tpl
 * formats. Also: zero-copy arrays, an iterator, lives, max_tasks, and the
 * job's refusals.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 30.0

#include "pool_support.h"

#define N 20000

typedef struct {
    int64_t value; /* 3 * item + 1 */
    int64_t count; /* how many items the call that made it had */
} out_t;

/* What the function is told to do, in memory every worker shares. */
struct plan {
    int fail_mod; /* items i % fail_mod == fail_rem fail with code 5 (0: none) */
    int fail_rem;
    long crash_at;           /* this item dies by SIGSEGV (-1: none) */
    int crash_once;          /* ... only the first time (then crashed is set) */
    int crashed;             /* set by the first crash of crash_at */
    long calls_with_crasher; /* calls whose run held crash_at */
};

static struct plan *plan;

static struct plan *make_plan(void)
{
    plan = skt_shared(sizeof *plan);
    plan->crash_at = -1;
    return plan;
}

static int triple_range(const void *items, void *results, size_t count, const void *arg)
{
    (void)arg;
    const int32_t *in = items;
    out_t *out = results;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        if (out[i].value != 0 || out[i].count != 0) /* zeroed before the call */
            return 77;
        if (in[i] == plan->crash_at) {
            __atomic_fetch_add(&plan->calls_with_crasher, 1, __ATOMIC_ACQ_REL);
            if (!plan->crash_once || !__atomic_exchange_n(&plan->crashed, 1, __ATOMIC_ACQ_REL))
                skt_die_by(SIGSEGV);
        }
        if (plan->fail_mod > 0 && in[i] % plan->fail_mod == plan->fail_rem) {
            rc = 5;
            continue;
        }
        out[i] = (out_t){.value = 3 * (int64_t)in[i] + 1, .count = (int64_t)count};
    }
    return rc;
}

static const sk_pool_job range_job = {
    .range = triple_range, .item_size = sizeof(int32_t), .result_size = sizeof(out_t)};

static int32_t *items_of(size_t n)
{
    int32_t *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    return items;
}

/* A map's arrays (freed by skt_teardown): items 0 .. n - 1. */
struct arrays {
    int32_t *items;
    out_t *results;
    int *status;
};

static struct arrays arrays_of(size_t n)
{
    return (struct arrays){items_of(n), xcalloc(n, sizeof(out_t)), xcalloc(n, sizeof(int))};
}

/* An async_map of the N items that ends with `want`; the call, tracked. */
static sk_pool_call *map_async(sk_pool *pool, const struct arrays *a, int want)
{
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &range_job, a->items, N, a->results, a->status, &call),
              SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), want);
    return call;
}

/* Every item right (except those `fails` says), and the largest run seen. */
static int64_t check_results(const out_t *results, const int *status, size_t n,
                             bool (*fails)(size_t))
{
    int64_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        if (fails != NULL && fails(i)) {
            assert_int_equal(status[i], SK_EPROCESS);
            assert_int_equal(results[i].value, 0);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i].value, 3 * (int64_t)i + 1);
        assert_int_ge(results[i].count, 1);
        if (results[i].count > longest)
            longest = results[i].count;
    }
    return longest;
}

static bool fails_mod_7(size_t i)
{
    return i % 7 == 3;
}

static bool is_5000(size_t i)
{
    return i == 5000;
}

/* ------------------------------------------------------------------ maps */

static void test_runs_of_many_items(void **state)
{
    (void)state;
    make_plan();
    sk_pool *pool = new_small_pool(2);
    struct arrays a = arrays_of(N);
    assert_rc(sk_pool_map(pool, &range_job, a.items, N, a.results, a.status), SK_OK);
    assert_int_gt(check_results(a.results, a.status, N, NULL), 100);
    /* One item, and a submit: runs of one. */
    out_t one = {0};
    assert_rc(sk_pool_map(pool, &range_job, a.items + 7, 1, &one, NULL), SK_OK);
    assert_int_equal(one.value, 22);
    assert_int_equal(one.count, 1);
    release_pool(pool);
    assert_no_children();
}

/* A run with a failing item is run again one item at a time: exactly the
 * failing items fail, each with its code and its lives spent. */
static void test_failures_are_exact(void **state)
{
    (void)state;
    make_plan()->fail_mod = 7;
    plan->fail_rem = 3;
    sk_pool_config cfg = small_cfg(2);
    cfg.lives = 2;
    sk_pool *pool = new_pool(&cfg);
    struct arrays a = arrays_of(N);
    sk_pool_call *call = map_async(pool, &a, SK_EPROCESS);
    const sk_error *first = sk_pool_error(call);
    assert_int_equal(first->item, 3);
    assert_int_equal(first->kind, SK_RUN_ERROR);
    assert_int_equal(first->code, 5);
    assert_int_equal(first->lives_spent, 2);
    check_results(a.results, a.status, N, fails_mod_7);
    /* 2,857 items fail: 1,024 errors are kept, which ones beyond the
     * first depends on the order the workers met them. */
    size_t kept = 0;
    for (size_t i = 0; i < N; i++) {
        const sk_error *e = sk_pool_item_error(call, i);
        if (e == NULL)
            continue;
        kept++;
        assert_true(fails_mod_7(i));
        assert_int_equal(e->item, (long)i);
        assert_int_equal(e->code, 5);
        assert_int_equal(e->lives_spent, 2);
    }
    assert_int_equal(kept, 1024);
    assert_null(sk_pool_item_error(call, 11));
    free_call(call);
    release_pool(pool);
    assert_no_children();
}

/* A crash inside a run: the successor runs the run one item at a time, so
 * the item that crashes again is the one that fails, with the crash's
 * signal; every other item of the run is right. */
static void test_crash_is_narrowed_down(void **state)
{
    (void)state;
    make_plan()->crash_at = 5000;
    sk_pool *pool = new_small_pool(2);
    struct arrays a = arrays_of(N);
    sk_pool_call *call = map_async(pool, &a, SK_EPROCESS);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    assert_int_equal(e->item, 5000);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGSEGV);
    assert_int_equal(e->lives_spent, 1);
    check_results(a.results, a.status, N, is_5000);
    /* Once in a run of many, once alone: the one that was charged. */
    assert_int_equal(plan->calls_with_crasher, 2);
    free_call(call);
    /* The pool goes on, in runs again. */
    plan->crash_at = -1;
    memset(a.results, 0, N * sizeof *a.results);
    assert_rc(sk_pool_map(pool, &range_job, a.items, N, a.results, a.status), SK_OK);
    assert_int_gt(check_results(a.results, a.status, N, NULL), 100);
    release_pool(pool);
    assert_no_children();
}

/* A crash that does not come back when the run is narrowed down is
 * charged to no item: every item succeeds, even with one life. */
static void test_crash_that_passes_costs_nothing(void **state)
{
    (void)state;
    make_plan()->crash_at = 777;
    plan->crash_once = 1;
    sk_pool *pool = new_small_pool(2);
    struct arrays a = arrays_of(N);
    assert_rc(sk_pool_map(pool, &range_job, a.items, N, a.results, a.status), SK_OK);
    check_results(a.results, a.status, N, NULL);
    assert_int_equal(plan->crashed, 1);
    assert_int_equal(a.results[777].count, 1); /* made alone, by the successor */
    assert_int_equal(plan->calls_with_crasher, 2);
    release_pool(pool);
    assert_no_children();
}

/* With item_timeout every call is one item (each is timed); so with max_tasks
 * the runs stop where the worker's budget does. */
static void test_single_items_where_required(void **state)
{
    (void)state;
    make_plan();
    sk_pool_config cfg = small_cfg(2);
    cfg.item_timeout = 10.0;
    sk_pool *pool = new_pool(&cfg);
    struct arrays a = arrays_of(2000);
    assert_rc(sk_pool_map(pool, &range_job, a.items, 2000, a.results, a.status), SK_OK);
    assert_int_equal(check_results(a.results, a.status, 2000, NULL), 1);
    release_pool(pool);

    cfg = small_cfg(2);
    cfg.max_tasks = 50;
    pool = new_pool(&cfg);
    memset(a.results, 0, 2000 * sizeof *a.results);
    assert_rc(sk_pool_map(pool, &range_job, a.items, 2000, a.results, a.status), SK_OK);
    int64_t longest = check_results(a.results, a.status, 2000, NULL);
    assert_int_gt(longest, 1);
    assert_int_le(longest, 50);
    release_pool(pool);
    assert_no_children();
}

/* Items with a tpl format go one at a time (each is decoded on its own). */
static int name_length(const void *items, void *results, size_t count, const void *arg)
{
    (void)arg;
    if (count != 1)
        return 9;
    const char *name = *(char *const *)items;
    *(int64_t *)results = (int64_t)strlen(name);
    return 0;
}

static void test_tpl_items_one_at_a_time(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    const char *names[] = {"a", "bb", "ccc", "", "eeeee"};
    int64_t lengths[5] = {0};
    sk_pool_job job = {.range = name_length,
                       .item_size = sizeof(char *),
                       .item_format = "s",
                       .result_size = sizeof(int64_t)};
    assert_rc(sk_pool_map(pool, &job, names, 5, lengths, NULL), SK_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lengths[i], (int64_t)strlen(names[i]));
    release_pool(pool);
    assert_no_children();
}

/* Zero-copy arrays and an iterator: runs too. */
static void test_zero_copy_and_imap(void **state)
{
    (void)state;
    make_plan();
    sk_pool *pool = new_small_pool(2);
    struct arrays a = {sk_pool_alloc(pool, N * sizeof(int32_t)),
                       sk_pool_alloc(pool, N * sizeof(out_t)), xcalloc(N, sizeof(int))};
    assert_non_null(a.items);
    assert_non_null(a.results);
    for (int i = 0; i < N; i++)
        a.items[i] = i;
    assert_rc(sk_pool_map(pool, &range_job, a.items, N, a.results, a.status), SK_OK);
    assert_int_gt(check_results(a.results, a.status, N, NULL), 100);

    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &range_job, a.items, N, &call), SK_OK);
    track_call(call);
    size_t index, count = 0;
    out_t r;
    int rc;
    int64_t longest = 0;
    while ((rc = sk_pool_next(call, BOUND, &index, &r)) == SK_OK) {
        assert_int_equal(index, count);
        assert_int_equal(r.value, 3 * (int64_t)index + 1);
        if (r.count > longest)
            longest = r.count;
        count++;
    }
    assert_rc(rc, SK_ECLOSED);
    assert_int_equal(count, N);
    assert_int_gt(longest, 100);
    free_call(call);
    assert_rc(sk_pool_free(pool, a.items), SK_OK);
    assert_rc(sk_pool_free(pool, a.results), SK_OK);
    release_pool(pool);
    assert_no_children();
}

static int unused_fn(const void *item, void *result, const void *arg)
{
    (void)item;
    (void)result;
    (void)arg;
    return 0;
}

static void test_refusals(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(1);
    int32_t item = 1;
    out_t result;
    sk_pool_job both = range_job;
    both.fn = unused_fn;
    assert_rc(sk_pool_map(pool, &both, &item, 1, &result, NULL), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "fn, star, cls and range (2 are set)"));
    sk_pool_job no_size = range_job;
    no_size.item_size = 0;
    assert_rc(sk_pool_map(pool, &no_size, &item, 1, &result, NULL), SK_EINVAL);
    release_pool(pool);
    assert_no_children();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_runs_of_many_items),          SKT_TEST(test_failures_are_exact),
        SKT_TEST(test_crash_is_narrowed_down),      SKT_TEST(test_crash_that_passes_costs_nothing),
        SKT_TEST(test_single_items_where_required), SKT_TEST(test_tpl_items_one_at_a_time),
        SKT_TEST(test_zero_copy_and_imap),          SKT_TEST(test_refusals),
    };
    return skt_run(argc, argv, tests);
}
