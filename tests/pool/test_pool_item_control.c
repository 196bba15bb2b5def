/* SPDX-License-Identifier: MIT */
/*
 * Pools, stopping and killing a class item from the parent
 * (sk_pool_stop_item, sk_pool_kill_item): class items that loop until they
 * are stopped; stop makes one finish with the result its hooks return,
 * kill makes one fail with SK_EKILLED (and it is not tried again, whatever
 * the lives), and the other items are not touched. The codes: SK_EINVAL
 * for a job without cls, SK_ESTATE for an item not running (not started,
 * or done). Hostile: a class item scribbles the worker slots' control,
 * batch and item words while the parent stops and kills; the parent does
 * not crash or hang, and returns documented codes. Runs are counted in
 * memory shared with the workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BOUND 60.0

#include "pool_support.h"

#include "pool/shm_arena.h"

enum mode { LOOP, FINITE, SCRIBBLE };

typedef struct {
    sk_process base;
    int32_t index, mode;
    int64_t count;
} looper;

#define LOOPER(p) SK_CONTAINER_OF(p, looper, base)

/* Every slot's control words with junk: small values (that may name a
 * batch and item a worker runs: a hostile worker may stop or kill other
 * items) and huge ones. (The slots' batch and item words are covered by
 * test_pool_hostile: junk there may stall a call, as documented.) */
static void scribble_slots(uint32_t *seed)
{
    unsigned char *base = find_arena();
    if (base == NULL)
        return;
    struct shm_header *h = (struct shm_header *)(void *)base;
    for (int i = 0; i < 8; i++) {
        struct shm_worker_slot *s = &h->workers[i];
        uint32_t junk[3];
        for (int k = 0; k < 3; k++) {
            *seed = *seed * 1103515245u + 12345u;
            junk[k] = (*seed >> 16) % 4 == 0 ? UINT32_MAX : *seed;
        }
        atomic_store(&s->control, junk[0] % 4);
        atomic_store(&s->control_batch, junk[1] % 8);
        atomic_store(&s->control_item, junk[2] % 4);
    }
}

static int looper_init(sk_process *self, const void *item)
{
    memcpy(&LOOPER(self)->index, item, 2 * sizeof(int32_t));
    if (LOOPER(self)->mode == FINITE)
        self->config.runs = 3;
    return 0;
}

static int looper_run(sk_process *self)
{
    looper *l = LOOPER(self);
    if (l->count == 0)
        __atomic_fetch_add(&sh->attempts[l->index], 1, __ATOMIC_ACQ_REL);
    l->count++;
    if (l->mode == SCRIBBLE) {
        uint32_t seed = 77;
        for (int i = 0; i < 2000; i++) {
            scribble_slots(&seed);
            skt_sleep(0.0002);
        }
        sk_stop(self);
        return 0;
    }
    skt_sleep(0.002);
    return 0;
}

static int looper_result(sk_process *self)
{
    return sk_return(self, "I", &LOOPER(self)->count);
}

static const sk_class looper_class = {.name = "looper",
                                      .run = looper_run,
                                      .result = looper_result,
                                      .size = sizeof(looper),
                                      .init = looper_init};

static const sk_pool_job job = {.cls = &looper_class,
                                .item_size = 2 * sizeof(int32_t),
                                .result_size = sizeof(int64_t),
                                .result_format = "I"};

/* Retries op until the item runs (SK_ESTATE: not handed to a worker yet). */
static int until_running(int (*op)(sk_pool_call *, size_t), sk_pool_call *call, size_t index)
{
    double deadline = skt_now() + BOUND / 2;
    int rc;
    while ((rc = op(call, index)) == SK_ESTATE && skt_now() < deadline)
        skt_sleep(0.001);
    return rc;
}

#define N 5

static void test_stop_and_kill(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = small_cfg(3);
    cfg.lives = 3; /* a killed item is not tried again */
    sk_pool *pool = new_pool(&cfg);
    int32_t items[N][2] = {{0, LOOP}, {1, LOOP}, {2, FINITE}, {3, FINITE}, {4, FINITE}};
    int64_t results[N] = {0};
    int status[N];
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, N, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(until_running(sk_pool_stop_item, call, 0), SK_OK);
    assert_rc(until_running(sk_pool_kill_item, call, 1), SK_OK);
    assert_rc(sk_pool_get(call, BOUND), SK_EKILLED);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    assert_int_equal(e->item, 1);
    assert_int_equal(status[0], SK_OK);
    assert_int_gt(results[0], 0);
    assert_int_equal(status[1], SK_EKILLED);
    for (int i = 2; i < N; i++) {
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], 3);
    }
    assert_int_equal(sh->attempts[1], 1);
    assert_rc(sk_pool_stop_item(call, 2), SK_ESTATE); /* done */
    assert_rc(sk_pool_kill_item(call, 0), SK_ESTATE);
    assert_rc(sk_pool_stop_item(call, 99), SK_ESTATE); /* no such item */
    assert_rc(sk_pool_stop_item(NULL, 0), SK_EINVAL);
}

static void test_with_an_iterator(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int32_t items[3][2] = {{0, LOOP}, {1, FINITE}, {2, LOOP}};
    sk_pool_call *call;
    assert_rc(sk_pool_unordered_imap(pool, &job, items, 3, &call), SK_OK);
    track_call(call);
    size_t index;
    int64_t r;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK); /* the finite one */
    assert_int_equal(index, 1);
    assert_int_equal(r, 3);
    assert_rc(until_running(sk_pool_kill_item, call, 2), SK_OK);
    assert_rc(until_running(sk_pool_stop_item, call, 0), SK_OK);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        int rc = sk_pool_next(call, BOUND, &index, &r);
        if (index == 0) {
            assert_rc(rc, SK_OK);
            assert_int_gt(r, 0);
        } else {
            assert_int_equal(index, 2);
            assert_rc(rc, SK_EPROCESS);
            assert_int_equal(sk_pool_item_error(call, 2)->reason, SK_EKILLED);
        }
        seen |= 1 << index;
    }
    assert_int_equal(seen, 5);
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
}

static int plain(const void *item, void *result, const void *arg)
{
    (void)arg;
    memcpy(result, item, sizeof(int32_t));
    return 0;
}

static void test_codes(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(1);
    sk_pool_job fn_job = {.fn = plain, .item_size = 4, .result_size = 4};
    int32_t x = 1, y;
    sk_pool_call *call;
    assert_rc(sk_pool_submit(pool, &fn_job, &x, &y, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_stop_item(call, 0), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "cls"));
    assert_rc(sk_pool_kill_item(call, 0), SK_EINVAL);
    assert_rc(sk_pool_get(call, BOUND), SK_OK);

    /* One worker busy with item 0: item 1 has not started. */
    int32_t items[2][2] = {{0, LOOP}, {1, LOOP}};
    int64_t results[2];
    sk_pool_call *loops;
    assert_rc(sk_pool_async_map(pool, &job, items, 2, results, NULL, &loops), SK_OK);
    track_call(loops);
    skt_wait_until(__atomic_load_n(&sh->attempts[0], __ATOMIC_ACQUIRE) == 1, BOUND);
    assert_rc(sk_pool_stop_item(loops, 1), SK_ESTATE); /* not started */
    assert_non_null(strstr(sk_last_error_message(), "not running"));
    assert_rc(until_running(sk_pool_kill_item, loops, 0), SK_OK);
    skt_wait_until(__atomic_load_n(&sh->attempts[1], __ATOMIC_ACQUIRE) == 1, BOUND);
    /* item 0 is done now (killed); item 1 runs */
    assert_rc(sk_pool_stop_item(loops, 0), SK_ESTATE);
    assert_rc(sk_pool_stop_item(loops, 1), SK_OK);
    assert_rc(sk_pool_get(loops, BOUND), SK_EKILLED);
    assert_int_gt(results[1], 0);
}

static void test_scribbled_control_words(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    int32_t items[6][2] = {{0, SCRIBBLE}, {1, LOOP},   {2, FINITE},
                           {3, LOOP},     {4, FINITE}, {5, LOOP}};
    int64_t results[6];
    int status[6];
    sk_pool_call *call;
    assert_rc(sk_pool_async_map(pool, &job, items, 6, results, status, &call), SK_OK);
    track_call(call);
    double deadline = skt_now() + BOUND / 2;
    int rc = SK_ETIMEDOUT;
    size_t probes[] = {0, 1, 2, 3, 4, 5, 6, 1000, SIZE_MAX};
    for (unsigned i = 0; rc == SK_ETIMEDOUT && skt_now() < deadline; i++) {
        size_t index = probes[i % (sizeof probes / sizeof probes[0])];
        int got = (i / 9) % 2 ? sk_pool_kill_item(call, index) : sk_pool_stop_item(call, index);
        assert_true(got == SK_OK || got == SK_ESTATE);
        rc = sk_pool_get(call, 0.001);
    }
    print_message("    get after the scribbles: %s\n", sk_strerror(rc));
    assert_true(rc == SK_OK || rc == SK_EKILLED || rc == SK_EPROCESS);
    for (int i = 0; i < 6; i++)
        assert_true(status[i] == SK_OK || status[i] == SK_EKILLED || status[i] == SK_EPROCESS);

    /* The pool goes on. */
    int32_t more[4][2] = {{10, FINITE}, {11, FINITE}, {12, FINITE}, {13, FINITE}};
    int64_t more_results[4];
    assert_rc(sk_pool_map(pool, &job, more, 4, more_results, NULL), SK_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(more_results[i], 3);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_stop_and_kill),
        SKT_TEST(test_with_an_iterator),
        SKT_TEST(test_codes),
        SKT_TEST(test_scribbled_control_words),
    };
    return skt_run(argc, argv, tests);
}
