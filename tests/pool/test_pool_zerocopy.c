/* SPDX-License-Identifier: MIT */
/*
 * Pools, zero-copy arrays (sk_pool_alloc, sk_pool_free): items and results
 * that live in the pool's shared region are read and written by the
 * workers in place. The functions here check the addresses they are given,
 * so a map that copied would fail. Failures per item, a crash mid-map, an
 * iterator, mixed arrays (one side shared), freeing and reusing arrays, and
 * the refusals; then the trust rule: an item function that scribbles over
 * the shared arrays (other items' records, past its own index, the whole
 * allocation, another allocation) or over its call's job in the arena
 * damages values only: the parent neither crashes nor hangs, and the next
 * call is right.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 30.0

#include "pool_support.h"

#include "pool/shm_arena.h"

#define N 10000

/* Where the arrays are: the workers see them at the same address. */
struct where {
    const int32_t *items;
    int64_t *results;
    int fail_mod; /* items i % fail_mod == fail_rem fail (0: none) */
    int fail_rem;
    long crash_at;        /* this item dies by SIGSEGV (-1: none) */
    long victim;          /* this item scribbles (-1: none) */
    int scribble;         /* enum scribble */
    unsigned char *other; /* another allocation, for SCRIBBLE_OTHER */
    size_t other_size;
};

enum scribble { SCRIBBLE_ARRAYS, SCRIBBLE_OTHER, SCRIBBLE_JOB };

/* result = 3 * item + 1, and only at the addresses of the shared arrays:
 * an item or result that was copied somewhere else fails with 99. */
static int in_place(const void *item, void *result, const void *arg)
{
    const struct where *w = arg;
    int32_t v = *(const int32_t *)item;
    if (w->items != NULL && item != (const void *)(w->items + v))
        return 99;
    if (w->results != NULL && result != (void *)(w->results + v))
        return 98;
    if (v == w->crash_at)
        skt_die_by(SIGSEGV);
    if (w->fail_mod > 0 && v % w->fail_mod == w->fail_rem)
        return 5;
    *(int64_t *)result = 3 * (int64_t)v + 1;
    if (v != w->victim)
        return 0;
    /* The hostile part: past its own index, over every other record. */
    if (w->scribble == SCRIBBLE_ARRAYS) {
        memset((void *)(uintptr_t)w->items, 0x5a, N * sizeof *w->items);
        memset(w->results, 0xa5, N * sizeof *w->results);
    } else if (w->scribble == SCRIBBLE_OTHER) {
        memset(w->other, 0x77, w->other_size);
    } else if (w->scribble == SCRIBBLE_JOB) {
        struct shm_header *h = (struct shm_header *)(void *)find_arena();
        for (int c = 0; h != NULL && c < POOL_CALLS; c++) {
            if (h->jobs[c].job.fn != in_place)
                continue;
            h->jobs[c].job.items_at = UINT64_MAX / 2;
            h->jobs[c].job.results_at = UINT64_MAX - 7;
            h->jobs[c].job.shared_n = UINT64_MAX;
        }
    }
    return 0;
}

static struct where where_of(const int32_t *items, int64_t *results)
{
    return (struct where){.items = items, .results = results, .crash_at = -1, .victim = -1};
}

static sk_pool_job job_of(const struct where *w)
{
    return (sk_pool_job){.fn = in_place,
                         .arg = w,
                         .arg_size = sizeof *w,
                         .item_size = sizeof(int32_t),
                         .result_size = sizeof(int64_t)};
}

static int32_t *shared_items(sk_pool *pool)
{
    int32_t *items = sk_pool_alloc(pool, N * sizeof *items);
    assert_non_null(items);
    for (int i = 0; i < N; i++)
        items[i] = i;
    return items;
}

static void assert_all_right(const int64_t *results, const int *status)
{
    for (int i = 0; i < N; i++) {
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], 3 * (int64_t)i + 1);
    }
}

/* ----------------------------------------------------------- allocation */

static void test_alloc_and_free(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    unsigned char *a = sk_pool_alloc(pool, 10000);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % 4096, 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(a[i], 0);
    memset(a, 0xee, 10000);

    assert_null(sk_pool_alloc(pool, 0));
    assert_non_null(strstr(sk_last_error_message(), "sk_pool_alloc"));
    assert_null(sk_pool_alloc(pool, (size_t)1 << 62));
    assert_null(sk_pool_alloc(NULL, 16));

    /* Refused: inside an allocation, not its start; a pointer of malloc;
     * another pool's allocation. */
    assert_rc(sk_pool_free(pool, a + 4096), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "sk_pool_free"));
    void *heap = xmalloc(64);
    assert_rc(sk_pool_free(pool, heap), SK_EINVAL);
    xfree(heap);
    sk_pool *other = new_small_pool(1);
    void *b = sk_pool_alloc(other, 100);
    assert_non_null(b);
    assert_rc(sk_pool_free(pool, b), SK_EINVAL);
    assert_rc(sk_pool_free(other, b), SK_OK);
    assert_rc(sk_pool_free(other, b), SK_EINVAL); /* twice */
    release_pool(other);
    assert_rc(sk_pool_free(pool, NULL), SK_OK);
    assert_rc(sk_pool_free(NULL, a), SK_EINVAL);

    /* Freed and reused: fresh memory reads as zeros. */
    assert_rc(sk_pool_free(pool, a), SK_OK);
    unsigned char *c = sk_pool_alloc(pool, 10000);
    assert_non_null(c);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(c[i], 0);
    assert_rc(sk_pool_free(pool, c), SK_OK);
    release_pool(pool);
    assert_no_children();
}

/* ------------------------------------------------------------------ maps */

static void test_map_in_place(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    int32_t *items = shared_items(pool);
    int64_t *results = sk_pool_alloc(pool, N * sizeof *results);
    assert_non_null(results);
    int *status = xcalloc(N, sizeof *status);
    struct where w = where_of(items, results);
    sk_pool_job job = job_of(&w);
    for (int round = 0; round < 3; round++) {
        memset(status, 0xff, N * sizeof *status);
        memset(results, 0, N * sizeof *results);
        assert_rc(sk_pool_map(pool, &job, items, N, results, status), SK_OK);
        assert_all_right(results, status);
    }
    /* Freed and allocated again: the next map runs over the new arrays. */
    assert_rc(sk_pool_free(pool, results), SK_OK);
    assert_rc(sk_pool_free(pool, items), SK_OK);
    items = shared_items(pool);
    results = sk_pool_alloc(pool, N * sizeof *results);
    assert_non_null(results);
    w = where_of(items, results);
    assert_rc(sk_pool_map(pool, &job, items, N, results, status), SK_OK);
    assert_all_right(results, status);
    assert_rc(sk_pool_free(pool, results), SK_OK);
    assert_rc(sk_pool_free(pool, items), SK_OK);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

static void test_failures_per_item(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(2);
    cfg.lives = 2;
    sk_pool *pool = new_pool(&cfg);
    int32_t *items = shared_items(pool);
    int64_t *results = sk_pool_alloc(pool, N * sizeof *results);
    int *status = xcalloc(N, sizeof *status);
    struct where w = where_of(items, results);
    w.fail_mod = 7;
    w.fail_rem = 3;
    sk_pool_job job = job_of(&w);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, N, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    assert_int_equal(sk_pool_error(call)->item, 3);
    for (int i = 0; i < N; i++) {
        if (i % 7 == 3) {
            assert_int_equal(status[i], SK_EPROCESS);
            if (i < 1000) {
                const sk_error *e = sk_pool_item_error(call, (size_t)i);
                assert_non_null(e);
                assert_int_equal(e->code, 5);
                assert_int_equal(e->lives_spent, 2);
            }
        } else {
            assert_int_equal(status[i], SK_OK);
            assert_int_equal(results[i], 3 * (int64_t)i + 1);
        }
    }
    /* Refused while the call is not freed: its workers may use them. */
    assert_rc(sk_pool_free(pool, items), SK_ESTATE);
    assert_rc(sk_pool_free(pool, results), SK_ESTATE);
    free_call(call);
    assert_rc(sk_pool_free(pool, items), SK_OK);
    assert_rc(sk_pool_free(pool, results), SK_OK);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

static void test_crash_mid_map(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    int32_t *items = shared_items(pool);
    int64_t *results = sk_pool_alloc(pool, N * sizeof *results);
    int *status = xcalloc(N, sizeof *status);
    struct where w = where_of(items, results);
    w.crash_at = 5000;
    sk_pool_job job = job_of(&w);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, N, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    assert_int_equal(e->item, 5000);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGSEGV);
    for (int i = 0; i < N; i++) {
        if (i == 5000) {
            assert_int_equal(status[i], SK_EPROCESS);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], 3 * (int64_t)i + 1);
    }
    free_call(call);
    /* The replacement maps the arrays too. */
    w.crash_at = -1;
    assert_rc(sk_pool_map(pool, &job, items, N, results, status), SK_OK);
    assert_all_right(results, status);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* An iterator reads its items in place; its results come through next. */
static void test_imap_shared_items(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    int32_t *items = shared_items(pool);
    struct where w = where_of(items, NULL);
    w.fail_mod = 100; /* items 42, 142, ... fail: the others of their batch are right */
    w.fail_rem = 42;
    sk_pool_job job = job_of(&w);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, N, &call), SK_OK);
    track_call(call);
    size_t index, count = 0;
    int64_t r;
    int rc;
    while ((rc = sk_pool_next(call, BOUND, &index, &r)) == SK_OK || rc == SK_EPROCESS) {
        assert_int_equal(index, count);
        if (index % 100 == 42) {
            assert_rc(rc, SK_EPROCESS);
        } else {
            assert_rc(rc, SK_OK);
            assert_int_equal(r, 3 * (int64_t)index + 1);
        }
        count++;
    }
    assert_rc(rc, SK_ECLOSED);
    assert_int_equal(count, N);
    free_call(call);
    release_pool(pool);
    assert_no_children();
}

/* One side shared, the other private: each is decided on its own. */
static void test_mixed_arrays(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    int32_t *items = shared_items(pool);
    int64_t *private_results = xcalloc(N, sizeof *private_results);
    int *status = xcalloc(N, sizeof *status);
    struct where w = where_of(items, NULL);
    sk_pool_job job = job_of(&w);
    assert_rc(sk_pool_map(pool, &job, items, N, private_results, status), SK_OK);
    assert_all_right(private_results, status);

    int32_t *private_items = xcalloc(N, sizeof *private_items);
    for (int i = 0; i < N; i++)
        private_items[i] = i;
    int64_t *results = sk_pool_alloc(pool, N * sizeof *results);
    assert_non_null(results);
    struct where w2 = where_of(NULL, results); /* the items are copied: any address */
    sk_pool_job job2 = job_of(&w2);
    assert_rc(sk_pool_map(pool, &job2, private_items, N, results, status), SK_OK);
    assert_all_right(results, status);
    /* Items the function insists on finding in place, handed as a copy:
     * every one fails, which shows the check means something. */
    struct where w3 = where_of(items, NULL);
    sk_pool_job job3 = job_of(&w3);
    assert_rc(sk_pool_map(pool, &job3, private_items, N, private_results, status), SK_EPROCESS);
    for (int i = 0; i < N; i++)
        assert_int_equal(status[i], SK_EPROCESS);
    xfree(private_items);
    xfree(private_results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* ---------------------------------------------------------------- trust */

static void check_hostile(int scribble)
{
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = 500;
    sk_pool *pool = new_pool(&cfg);
    int32_t *items = shared_items(pool);
    int64_t *results = sk_pool_alloc(pool, N * sizeof *results);
    unsigned char *other = sk_pool_alloc(pool, 8192);
    assert_non_null(results);
    assert_non_null(other);
    int *status = xcalloc(N, sizeof *status);
    struct where w = where_of(items, results);
    w.victim = 1234;
    w.scribble = scribble;
    w.other = other;
    w.other_size = 8192;
    sk_pool_job job = job_of(&w);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, N, results, status, &call), SK_OK);
    track_call(call);
    int rc = sk_pool_get(call, BOUND);
    assert_true(rc != SK_ETIMEDOUT);
    /* Whatever the values, every status is a code the parent knows. */
    for (int i = 0; i < N; i++)
        assert_true(status[i] == SK_OK || status[i] == SK_EPROCESS || status[i] == SK_ECORRUPT);
    if (scribble == SCRIBBLE_JOB) {
        /* The batches claimed after the scribble are lost, no more. Which
         * those are depends on timing (a worker may have claimed every
         * other batch before the victim's runs), but batch 0 is always
         * claimed before it, and whatever is lost says SK_ECORRUPT. */
        assert_true(rc == SK_ECORRUPT || rc == SK_OK);
        assert_int_equal(status[0], SK_OK);
        assert_int_equal(results[0], 1);
        for (int i = 0; i < N; i++)
            assert_true(status[i] == SK_OK || status[i] == SK_ECORRUPT);
        if (rc == SK_OK)
            assert_all_right(results, status);
    }
    if (scribble == SCRIBBLE_OTHER) {
        assert_rc(rc, SK_OK);
        assert_all_right(results, status);
        assert_int_equal(other[0], 0x77); /* a value: damaged, nothing else */
    }
    free_call(call);

    /* The pool goes on, over the same arrays once the caller restores them. */
    w.victim = -1;
    for (int i = 0; i < N; i++)
        items[i] = i;
    memset(status, 0xff, N * sizeof *status);
    assert_rc(sk_pool_map(pool, &job, items, N, results, status), SK_OK);
    assert_all_right(results, status);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* Over every item and result, its own and others', before and after it. */
static void test_hostile_scribbles_arrays(void **state)
{
    (void)state;
    check_hostile(SCRIBBLE_ARRAYS);
}

/* Over an allocation the call does not use. */
static void test_hostile_scribbles_other(void **state)
{
    (void)state;
    check_hostile(SCRIBBLE_OTHER);
}

/* Over its call's job in the arena: where the arrays are, and how long:
 * the batches claimed afterwards fail with SK_ECORRUPT, and no worker
 * reads or writes outside the shared region. */
static void test_hostile_scribbles_job(void **state)
{
    (void)state;
    check_hostile(SCRIBBLE_JOB);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_alloc_and_free),           SKT_TEST(test_map_in_place),
        SKT_TEST(test_failures_per_item),        SKT_TEST(test_crash_mid_map),
        SKT_TEST(test_imap_shared_items),        SKT_TEST(test_mixed_arrays),
        SKT_TEST(test_hostile_scribbles_arrays), SKT_TEST(test_hostile_scribbles_other),
        SKT_TEST(test_hostile_scribbles_job),
    };
    return skt_run(argc, argv, tests);
}
