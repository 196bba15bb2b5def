/* SPDX-License-Identifier: MIT */
/*
 * Pools, trust: a worker is an untrusted peer. Here an item function (run
 * in a worker) finds the pool's shared arena through /proc/self/maps (the
 * memfd "skproc-pool") and scribbles on what the parent reads back: its
 * batch's descriptor, or its own status word (in a batch with a failed
 * item, so that the parent reads every status). The parent must go on:
 * the items of that batch (or that item) fail with SK_ECORRUPT, every
 * other item is right, and the pool stays usable.
 *
 * The arena's layout comes from the pool's private header
 * (pool/shm_arena.h): these tests are about that transport.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 30.0

#include "pool_support.h"

#include "pool/shm_arena.h"

#define N_ITEMS 1000
#define BATCH 100
#define VICTIM 250 /* in the batch of items 200..299 */

enum scribble { SCRIBBLE_DESCRIPTOR, SCRIBBLE_STATUS };

/* Where the pool's arena is mapped in this process (a worker inherits the
 * parent's mapping), or NULL. */
/* result = 2 * item; the victim item scribbles first (arg says on what);
 * when it scribbles its status, the item after it fails (returns 7). */
static int scribbler(const void *item, void *result, const void *arg)
{
    int32_t v = *(const int32_t *)item;
    *(int64_t *)result = 2 * (int64_t)v;
    if (v == VICTIM + 1 && *(const int *)arg == SCRIBBLE_STATUS)
        return 7;
    if (v != VICTIM)
        return 0;
    unsigned char *base = find_arena();
    if (base == NULL)
        return 1; /* the test sees a plain failure, not SK_ECORRUPT */
    unsigned char *batches = base + shm_batches_offset();
    size_t at = (size_t)((const unsigned char *)item - batches);
    uint32_t d = (uint32_t)(at / (2 * POOL_IMAGE_MAX));
    uint32_t k = (uint32_t)(at % (2 * POOL_IMAGE_MAX) / sizeof(int32_t));
    if (*(const int *)arg == SCRIBBLE_DESCRIPTOR) {
        struct shm_batch *b = &((struct shm_header *)(void *)base)->batches[d];
        b->first += 12345;
        b->count = UINT32_MAX;
        b->call = 9999;
    } else if (*(const int *)arg == SCRIBBLE_STATUS) {
        int32_t *status =
            (int32_t *)(void *)(batches + (size_t)d * 2 * POOL_IMAGE_MAX + POOL_IMAGE_MAX);
        status[k] = 0x5a5a;
    }
    return 0;
}

/* A map where the victim scribbles `what`: the items in [bad_from, bad_to)
 * fail with SK_ECORRUPT, the others are right; then a clean map on the
 * same pool. */
static void check_scribble(int what, size_t bad_from, size_t bad_to)
{
    sk_pool_config cfg = small_cfg(2);
    cfg.batch = BATCH;
    sk_pool *pool = new_pool(&cfg);
    int32_t *items = xcalloc(N_ITEMS, sizeof *items);
    int64_t *results = xcalloc(N_ITEMS, sizeof *results);
    int *status = xcalloc(N_ITEMS, sizeof *status);
    for (int i = 0; i < N_ITEMS; i++)
        items[i] = i;
    sk_pool_job job = {.fn = scribbler,
                       .arg = &what,
                       .arg_size = sizeof what,
                       .item_size = sizeof(int32_t),
                       .result_size = sizeof(int64_t)};
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, N_ITEMS, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_ECORRUPT);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    assert_int_equal(e->item, (long)bad_from);
    assert_int_equal(e->reason, SK_ECORRUPT);
    for (size_t i = 0; i < N_ITEMS; i++) {
        if (i >= bad_from && i < bad_to) {
            assert_int_equal(status[i], SK_ECORRUPT);
            assert_null(sk_pool_item_error(call, i));
        } else if (what == SCRIBBLE_STATUS && i == VICTIM + 1) {
            assert_int_equal(status[i], SK_EPROCESS);
            const sk_error *ie = sk_pool_item_error(call, i);
            assert_non_null(ie);
            assert_int_equal(ie->code, 7);
            assert_int_equal(ie->item, (long)i);
        } else {
            assert_int_equal(status[i], SK_OK);
            assert_int_equal(results[i], 2 * (int64_t)i);
        }
    }
    free_call(call);

    /* The pool goes on. */
    what = -1;
    memset(status, 0xff, N_ITEMS * sizeof *status);
    assert_rc(sk_pool_map(pool, &job, items, N_ITEMS, results, status), SK_OK);
    for (size_t i = 0; i < N_ITEMS; i++) {
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], 2 * (int64_t)i);
    }
    release_pool(pool);
    assert_no_children();
    xfree(items);
    xfree(results);
    xfree(status);
}

/* A scribbled descriptor (first, count, call): the whole batch is lost. */
static void test_scribbled_descriptor(void **state)
{
    (void)state;
    size_t from = VICTIM / BATCH * BATCH;
    check_scribble(SCRIBBLE_DESCRIPTOR, from, from + BATCH);
}

/* A status word that no worker writes: that item alone is lost. */
static void test_scribbled_status(void **state)
{
    (void)state;
    check_scribble(SCRIBBLE_STATUS, VICTIM, VICTIM + 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_scribbled_descriptor),
        SKT_TEST(test_scribbled_status),
    };
    return skt_run(argc, argv, tests);
}
