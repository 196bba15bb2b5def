/* SPDX-License-Identifier: MIT */
/*
 * Pools, lives within one batch: the failed attempts a worker counts for
 * the item in hand belong to that item alone. With a plain function (the
 * worker's fast loop), no item timeout, lives = 3 and every item in one
 * batch, items that crash (or fail) on their first attempt and then
 * succeed must all succeed, and an item that crashes on every attempt must
 * fail with exactly its three attempts spent, however many items of the
 * same batch were retried before it. The attempts are counted in memory
 * shared with the workers, which a crash does not lose. sk_pool_retried
 * counts the items that succeeded after a failed attempt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 60.0

#include "pool_support.h"

#define N_ITEMS 40
#define LIVES 3

enum how { ONCE_SEGV, ONCE_FAIL, ALWAYS_SEGV, NEVER };

/* Items are {index, how}; result = 3 * index. */
typedef struct {
    int32_t index;
    int32_t how;
} life_item;

static int life_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const life_item *it = item;
    int attempt = __atomic_add_fetch(&sh->attempts[it->index], 1, __ATOMIC_ACQ_REL);
    if ((it->how == ONCE_SEGV && attempt == 1) || it->how == ALWAYS_SEGV)
        skt_die_by(SIGSEGV);
    if (it->how == ONCE_FAIL && attempt == 1)
        return 5;
    *(int64_t *)result = 3 * (int64_t)it->index;
    return 0;
}

/* One map of N_ITEMS items in one batch on one worker (so every retry
 * happens in the same batch, in the same worker slot), item i behaving as
 * how_of(i); then checks every item against its real attempts. */
static void check_lives(int (*how_of)(int))
{
    make_shared();
    sk_pool_config cfg = small_cfg(1);
    cfg.lives = LIVES;
    cfg.batch = N_ITEMS;
    sk_pool *pool = new_pool(&cfg);
    life_item *items = xcalloc(N_ITEMS, sizeof *items);
    int64_t *results = xcalloc(N_ITEMS, sizeof *results);
    int *status = xcalloc(N_ITEMS, sizeof *status);
    bool any_fails = false;
    size_t retried = 0;
    for (int i = 0; i < N_ITEMS; i++) {
        items[i] = (life_item){.index = i, .how = how_of(i)};
        any_fails = any_fails || items[i].how == ALWAYS_SEGV;
        retried += items[i].how == ONCE_SEGV || items[i].how == ONCE_FAIL;
    }
    sk_pool_job job = {
        .fn = life_fn, .item_size = sizeof(life_item), .result_size = sizeof(int64_t)};
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &job, items, N_ITEMS, results, status, &call), SK_OK);
    track_call(call);
    int rc = sk_pool_get(call, BOUND);
    for (int i = 0; i < N_ITEMS; i++)
        if (status[i] != SK_OK && items[i].how != ALWAYS_SEGV) {
            print_message("item %d (how %d, attempts %d): status %d\n", i, items[i].how,
                          sh->attempts[i], status[i]);
            skt_print_error(sk_pool_item_error(call, (size_t)i));
        }
    assert_rc(rc, any_fails ? SK_EPROCESS : SK_OK);
    /* Items that failed once and then succeeded (issue 11 item 3). */
    assert_cmp(sk_pool_retried(call), ==, retried);
    for (int i = 0; i < N_ITEMS; i++) {
        int attempts = __atomic_load_n(&sh->attempts[i], __ATOMIC_ACQUIRE);
        const sk_error *e = sk_pool_item_error(call, (size_t)i);
        switch (items[i].how) {
        case ALWAYS_SEGV:
            assert_cmp(status[i], ==, SK_EPROCESS);
            assert_non_null(e);
            assert_cmp(e->kind, ==, SK_CRASH_ERROR);
            assert_cmp(e->item, ==, (long)i);
            assert_cmp(e->lives_spent, ==, LIVES);
            assert_cmp(attempts, ==, LIVES);
            break;
        case ONCE_SEGV:
        case ONCE_FAIL:
            if (status[i] != SK_OK)
                skt_print_error(e);
            assert_cmp(status[i], ==, SK_OK);
            assert_cmp(results[i], ==, 3 * (int64_t)i);
            assert_cmp(attempts, ==, 2);
            break;
        default:
            assert_cmp(status[i], ==, SK_OK);
            assert_cmp(results[i], ==, 3 * (int64_t)i);
            assert_cmp(attempts, ==, 1);
        }
        if (e != NULL)
            assert_cmp(e->lives_spent, <=, attempts);
    }
    free_call(call);
    release_pool(pool);
    assert_no_children();
}

static int every_item_crashes_once(int i)
{
    (void)i;
    return ONCE_SEGV;
}

static int every_item_crashes_always(int i)
{
    (void)i;
    return ALWAYS_SEGV;
}

/* Runs of items that crash once, separated by items that never fail and
 * items that crash on every attempt. */
static int mixed(int i)
{
    if (i % 7 == 6)
        return ALWAYS_SEGV;
    if (i % 5 == 4)
        return NEVER;
    return i % 3 == 2 ? ONCE_FAIL : ONCE_SEGV;
}

/* Every item crashes on its first attempt: each one succeeds on its
 * second, none is charged its predecessors' crashes. */
static void test_crash_once_each(void **state)
{
    (void)state;
    check_lives(every_item_crashes_once);
}

/* Every item crashes every time: each fails with exactly three attempts
 * spent. */
static void test_crash_always_each(void **state)
{
    (void)state;
    check_lives(every_item_crashes_always);
}

/* Crashes, soft failures and clean items mixed in one batch. */
static void test_crash_mixed(void **state)
{
    (void)state;
    check_lives(mixed);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_crash_once_each),
        SKT_TEST(test_crash_always_each),
        SKT_TEST(test_crash_mixed),
    };
    return skt_run(argc, argv, tests);
}
