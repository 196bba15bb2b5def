/* SPDX-License-Identifier: MIT */
/*
 * Pools at scale: 10 million tiny items with every result checked, an
 * ordered iterator over millions, a pool reused for 1000 calls of every
 * form with no growth of file descriptors, memory or workers, and producer
 * streams of millions of items in constant memory (the producer never runs
 * far ahead of the results taken).
 *
 * Under AddressSanitizer the counts are smaller.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "pool_support.h"

#define BIG_MAP (SKT_SANITIZED ? 1000000 : 10000000)
#define BIG_IMAP (SKT_SANITIZED ? 500000 : 2000000)
#define BIG_STREAM (SKT_SANITIZED ? 500000 : 2000000)
#define REUSE_CALLS 1000
#define REUSE_WARMUP 60
#define REUSE_RSS_SLACK_KB (SKT_SANITIZED ? 16 * 1024 : 4 * 1024)
#define STREAM_RSS_SLACK_KB (SKT_SANITIZED ? 8 * 1024 : 2 * 1024)
#define BOUND 60.0

/* ------------------------------------------------------------ the job */

/* result = item * 3 + 1 */
static int tiny(const void *item, void *result, const void *arg)
{
    (void)arg;
    *(int32_t *)result = *(const int32_t *)item * 3 + 1;
    return 0;
}

static const sk_pool_job tiny_job = {
    .fn = tiny, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};

static int32_t item_at(size_t i, size_t n)
{
    return (int32_t)((int64_t)i - (int64_t)(n / 2)); /* negative ones too */
}

/* ------------------------------------------------------- big map, imap */

static void test_ten_million_items(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(0); /* one per CPU */
    size_t n = BIG_MAP;
    int32_t *items = xmalloc(n * sizeof *items);
    int32_t *results = xmalloc(n * sizeof *results);
    int *status = xmalloc(n * sizeof *status);
    assert_non_null(items);
    assert_non_null(results);
    assert_non_null(status);
    int64_t item_sum = 0;
    for (size_t i = 0; i < n; i++) {
        items[i] = item_at(i, n);
        item_sum += items[i];
        results[i] = INT32_MIN; /* overwritten by every result */
        status[i] = 12345;
    }
    double t0 = skt_now();
    assert_rc(sk_pool_map(pool, &tiny_job, items, n, results, status), SK_OK);
    double took = skt_now() - t0;
    print_message("    map of %zu items: %.3fs (%.0f ns per item)\n", n, took, took / n * 1e9);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (results[i] != items[i] * 3 + 1 || status[i] != SK_OK)
            fail_msg("item %zu: result %d, status %d", i, results[i], status[i]);
        sum += results[i];
    }
    assert_cmp(sum, ==, 3 * item_sum + (int64_t)n);
    sk_pool_counters c;
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, (long)n);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.in_flight, 0);

    /* Again, without a status array, on the same pool. */
    memset(results, 0, n * sizeof *results);
    t0 = skt_now();
    assert_rc(sk_pool_map(pool, &tiny_job, items, n, results, NULL), SK_OK);
    print_message("    again: %.3fs\n", skt_now() - t0);
    sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += results[i];
    assert_cmp(sum, ==, 3 * item_sum + (int64_t)n);
    xfree(items);
    xfree(results);
    xfree(status);
    long rss_idle = skt_rss_kb();
    release_pool(pool);
    print_message("    RSS with the arrays freed: %ld KiB before sk_pool_release, %ld KiB after\n",
                  rss_idle, skt_rss_kb());
    assert_no_children();
}

static void test_millions_through_imap(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(0);
    size_t n = BIG_IMAP;
    int32_t *items = xmalloc(n * sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < n; i++)
        items[i] = item_at(i, n);
    for (int ordered = 1; ordered >= 0; ordered--) {
        sk_pool_call *call = NULL;
        if (ordered)
            assert_rc(sk_pool_imap(pool, &tiny_job, items, n, &call), SK_OK);
        else
            assert_rc(sk_pool_unordered_imap(pool, &tiny_job, items, n, &call), SK_OK);
        track_call(call);
        unsigned char *seen = xcalloc(n, 1);
        assert_non_null(seen);
        double t0 = skt_now();
        for (size_t k = 0; k < n; k++) {
            int32_t r = INT32_MIN;
            size_t index = (size_t)-1;
            int rc = sk_pool_next(call, BOUND, &index, &r);
            if (rc != SK_OK || index >= n || (ordered && index != k) || seen[index]++ ||
                r != items[index] * 3 + 1)
                fail_msg("result %zu: rc %d, index %zu, value %d", k, rc, index, r);
        }
        int32_t r;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
        print_message("    %s of %zu items: %.3fs\n", ordered ? "imap" : "unordered_imap", n,
                      skt_now() - t0);
        xfree(seen);
        free_call(call);
    }
    xfree(items);
    release_pool(pool);
}

/* ----------------------------------------------------------- reuse */

struct counting_producer {
    size_t next, n;
};

static int produce_items(void *state, void *item)
{
    struct counting_producer *p = state;
    if (p->next >= p->n)
        return 0;
    *(int32_t *)item = item_at(p->next, p->n);
    p->next++;
    return 1;
}

/* One call of form k % 5 over items; every result checked. */
static void one_call(sk_pool *pool, int k, const int32_t *items, size_t n, int32_t *results,
                     int *status)
{
    memset(results, 0, n * sizeof *results);
    sk_pool_call *call = NULL;
    int form = k % 5;
    if (form == 0) {
        assert_rc(sk_pool_map(pool, &tiny_job, items, n, results, status), SK_OK);
    } else if (form == 1) {
        assert_rc(sk_pool_async_map(pool, &tiny_job, items, n, results, status, &call), SK_OK);
        track_call(call);
        assert_rc(sk_pool_get(call, BOUND), SK_OK);
        assert_true(sk_pool_ready(call));
        free_call(call);
    } else {
        struct counting_producer prod = {.n = n};
        if (form == 2)
            assert_rc(sk_pool_imap(pool, &tiny_job, items, n, &call), SK_OK);
        else if (form == 3)
            assert_rc(sk_pool_unordered_imap(pool, &tiny_job, items, n, &call), SK_OK);
        else
            assert_rc(sk_pool_imap_stream(pool, &tiny_job, produce_items, &prod, k % 2, &call),
                      SK_OK);
        track_call(call);
        for (size_t j = 0; j < n; j++) {
            size_t index = (size_t)-1;
            int32_t r;
            assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
            assert_cmp(index, <, n);
            results[index] = r;
        }
        size_t index;
        int32_t r;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
        free_call(call);
    }
    for (size_t i = 0; i < n; i++)
        if (results[i] != items[i] * 3 + 1)
            fail_msg("call %d (form %d), item %zu: %d", k, form, i, results[i]);
}

static void test_reuse_for_1000_calls(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 256;
    int32_t *items = xmalloc(n * sizeof *items);
    int32_t *results = xmalloc(n * sizeof *results);
    int *status = xmalloc(n * sizeof *status);
    for (size_t i = 0; i < n; i++)
        items[i] = item_at(i, n);
    /* Warm-up: lazily made state, and every part of the pool's queue used
     * once. */
    for (int k = 0; k < REUSE_WARMUP; k++)
        one_call(pool, k, items, n, results, status);
    int fds = skt_fd_count();
    long rss = skt_rss_kb();
    double t0 = skt_now();
    long max_rss = rss;
    for (int k = 0; k < REUSE_CALLS; k++) {
        one_call(pool, k, items, n, results, status);
        if (k % 100 == 99) {
            assert_int_equal(skt_fd_count(), fds);
            long now = skt_rss_kb();
            max_rss = now > max_rss ? now : max_rss;
        }
    }
    double took = skt_now() - t0;
    long grown = skt_rss_kb() - rss;
    print_message("    %d calls of %zu items: %.3fs (%.0f us per call); RSS %ld KiB after "
                  "warm-up, max %ld, grown %ld KiB\n",
                  REUSE_CALLS, n, took, took / REUSE_CALLS * 1e6, rss, max_rss, grown);
    assert_int_equal(skt_fd_count(), fds);
    if (grown > REUSE_RSS_SLACK_KB)
        fail_msg("RSS grew by %ld KiB over %d calls", grown, REUSE_CALLS);
    sk_pool_counters c;
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, (long)n * (REUSE_WARMUP + REUSE_CALLS));
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.in_flight, 0);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* Pools made and released over and over leave nothing behind. */
static void test_create_release_cycles(void **state)
{
    (void)state;
    int32_t items[64], results[64];
    for (int i = 0; i < 64; i++)
        items[i] = i;
    for (int k = 0; k < 5; k++) { /* warm-up */
        sk_pool *pool = new_small_pool(2);
        assert_rc(sk_pool_map(pool, &tiny_job, items, 64, results, NULL), SK_OK);
        release_pool(pool);
    }
    int fds = skt_fd_count();
    long rss = skt_rss_kb();
    for (int k = 0; k < 100; k++) {
        sk_pool *pool = new_small_pool(1 + k % 3);
        assert_rc(sk_pool_map(pool, &tiny_job, items, 64, results, NULL), SK_OK);
        assert_int_equal(results[63], 63 * 3 + 1);
        release_pool(pool);
        if (!skt_no_children())
            fail_msg("cycle %d: a child is left", k);
    }
    assert_int_equal(skt_fd_count(), fds);
    long grown = skt_rss_kb() - rss;
    print_message("    100 pools: RSS grown %ld KiB\n", grown);
    if (grown > REUSE_RSS_SLACK_KB)
        fail_msg("RSS grew by %ld KiB over 100 pools", grown);
}

/* ---------------------------------------------------------- streams */

struct watched_producer {
    size_t next, n;
    const size_t *taken; /* results the test has taken so far */
    size_t max_ahead;    /* most items produced and not yet taken */
    pid_t parent;
    int wrong_process;
};

static int produce_watched(void *state, void *item)
{
    struct watched_producer *p = state;
    if (getpid() != p->parent)
        p->wrong_process++;
    if (p->next >= p->n)
        return 0;
    *(int32_t *)item = item_at(p->next, p->n);
    p->next++;
    size_t ahead = p->next - *p->taken;
    if (ahead > p->max_ahead)
        p->max_ahead = ahead;
    return 1;
}

static void stream(sk_pool *pool, bool ordered, size_t n)
{
    size_t taken = 0;
    struct watched_producer prod = {.n = n, .taken = &taken, .parent = getpid()};
    unsigned char *seen = xcalloc(n / 8 + 1, 1); /* one bit per item */
    assert_non_null(seen);
    sk_pool_call *call = NULL;
    double t0 = skt_now();
    assert_rc(sk_pool_imap_stream(pool, &tiny_job, produce_watched, &prod, ordered, &call), SK_OK);
    track_call(call);
    long rss_quarter = 0;
    for (size_t k = 0; k < n; k++) {
        int32_t r = INT32_MIN;
        size_t index = (size_t)-1;
        int rc = sk_pool_next(call, BOUND, &index, &r);
        if (rc != SK_OK || index >= n || (ordered && index != k) ||
            (seen[index / 8] & (1u << (index % 8))) || r != item_at(index, n) * 3 + 1)
            fail_msg("result %zu: rc %d, index %zu, value %d", k, rc, index, r);
        seen[index / 8] |= (unsigned char)(1u << (index % 8));
        taken++;
        if (k == n / 4)
            rss_quarter = skt_rss_kb();
    }
    int32_t r;
    size_t index;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    assert_rc(sk_pool_next(call, 0, &index, &r), SK_ECLOSED);
    long grown = skt_rss_kb() - rss_quarter;
    print_message("    %s stream of %zu items: %.3fs; producer at most %zu items ahead; RSS "
                  "grown %ld KiB from a quarter to the end\n",
                  ordered ? "ordered" : "unordered", n, skt_now() - t0, prod.max_ahead, grown);
    assert_int_equal(prod.wrong_process, 0);
    assert_int_equal(prod.next, n);
    /* Constant memory: the producer runs a bounded window ahead. */
    if (prod.max_ahead > 65536)
        fail_msg("the producer ran %zu items ahead of the results taken", prod.max_ahead);
    if (grown > STREAM_RSS_SLACK_KB)
        fail_msg("RSS grew by %ld KiB over the last three quarters of the stream", grown);
    xfree(seen);
    free_call(call);
}

static void test_stream_constant_memory(void **state)
{
    (void)state;
    skt_bound(120); /* about ten times what it takes on an idle machine */
    sk_pool *pool = new_small_pool(2);
    stream(pool, true, BIG_STREAM);
    stream(pool, false, BIG_STREAM);
    release_pool(pool);
    assert_no_children();
}

/* A stream abandoned half-way, then freed: the pool goes on. */
static void test_stream_abandoned(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t taken = 0;
    struct watched_producer prod = {.n = 1000000, .taken = &taken, .parent = getpid()};
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap_stream(pool, &tiny_job, produce_watched, &prod, true, &call), SK_OK);
    track_call(call);
    for (size_t k = 0; k < 5000; k++) {
        int32_t r;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        taken++;
    }
    free_call(call);
    size_t produced = prod.next;
    assert_cmp(produced, <, 100000);
    /* Not called after the free. */
    int32_t items[100], results[100];
    for (int i = 0; i < 100; i++)
        items[i] = i;
    assert_rc(sk_pool_map(pool, &tiny_job, items, 100, results, NULL), SK_OK);
    assert_int_equal(prod.next, produced);
    for (int i = 0; i < 100; i++)
        assert_int_equal(results[i], i * 3 + 1);
    release_pool(pool);
}

/* ------------------------------------------------- memory given back */

/* Big results: an idle pool keeps its warmest batches up to 256 MiB
 * (skproc/pool/pool.c, POOL_WARM_BYTES) and gives the rest back, so after a
 * map of 400 MB of results it holds no more than that. What it holds is
 * measured on its own mapping (the pages of its arena that are in memory,
 * skt_mapping_resident_kb), not the process's RSS, which under a sanitizer
 * also counts the shadow of every page touched. */
typedef struct {
    int32_t words[256];
} kib;

static int fill_kib(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x = *(const int32_t *)item;
    kib *out = result;
    for (int k = 0; k < 256; k++)
        out->words[k] = x + k;
    return 0;
}

static void test_big_results_memory_given_back(void **state)
{
    (void)state;
    skt_bound(120); /* about ten times what it takes on an idle machine */
    sk_pool *pool = new_small_pool(2);
    size_t n = 400000;
    int32_t *items = xmalloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    sk_pool_job job = {.fn = fill_kib, .item_size = sizeof(int32_t), .result_size = sizeof(kib)};
    int mappings = 0;
    long arena0 = skt_mapping_resident_kb(SKT_POOL_MAPPING, &mappings);
    assert_int_equal(mappings, 1); /* this pool's arena, and no other */
    long rss0 = skt_rss_kb();
    kib *results = xmalloc(n * sizeof *results);
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i += 997)
        for (int k = 0; k < 256; k++)
            assert_int_equal(results[i].words[k], (int32_t)i + k);
    xfree(results); /* 400 MB: a mapping of its own, unmapped now */
    long kept = skt_mapping_resident_kb(SKT_POOL_MAPPING, &mappings) - arena0;
    assert_int_equal(mappings, 1);
    print_message("    after a map of %zu KiB of results: the idle pool's arena keeps %ld KiB "
                  "resident (%ld before the map); the process's RSS grew by %ld KiB\n",
                  n * sizeof(kib) / 1024, kept, arena0, skt_rss_kb() - rss0);
    if (kept > (256 + 16) * 1024)
        fail_msg("an idle pool's arena keeps %ld KiB after a map of 400 MB of results (limit "
                 "%d KiB)",
                 kept, (256 + 16) * 1024);
    xfree(items);
    release_pool(pool);
}

/* Single-item batches wrap the queue of batches (1024 entries) many times
 * per map, with the parent posting while workers claim: a batch lost in the
 * hand-off would leave the map waiting forever, so the wait is bounded and
 * its timing out is the failure. It guards the claim hand-off in
 * worker_claim (pool/worker.c), which must read the queue entry before it
 * wins the claim. */
static void test_queue_wraps_lose_nothing(void **state)
{
    (void)state;
    sk_pool_config cfg = small_cfg(6); /* more workers than CPUs: they get preempted */
    cfg.batch = 1;
    sk_pool *pool = new_pool(&cfg);
    size_t n = 20000;
    int maps = SKT_SANITIZED ? 5 : 30;
    int32_t *items = xmalloc(n * sizeof *items);
    int32_t *results = xmalloc(n * sizeof *results);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    sk_pool_job job = {.fn = tiny, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};
    for (int m = 0; m < maps; m++) {
        sk_pool_call *call = NULL;
        assert_rc(sk_pool_async_map(pool, &job, items, n, results, NULL, &call), SK_OK);
        track_call(call);
        int rc = sk_pool_get(call, 60.0);
        if (rc == SK_ETIMEDOUT)
            fail_msg("map %d of %zu single-item batches did not finish in 60 s", m, n);
        assert_rc(rc, SK_OK);
        free_call(call);
        for (size_t i = 0; i < n; i += 101)
            assert_int_equal(results[i], (int32_t)i * 3 + 1);
    }
    xfree(items);
    xfree(results);
    release_pool(pool);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_queue_wraps_lose_nothing), SKT_TEST(test_ten_million_items),
        SKT_TEST(test_millions_through_imap),    SKT_TEST(test_reuse_for_1000_calls),
        SKT_TEST(test_create_release_cycles),    SKT_TEST(test_stream_constant_memory),
        SKT_TEST(test_stream_abandoned),         SKT_TEST(test_big_results_memory_given_back),
    };
    return skt_run(argc, argv, tests);
}
