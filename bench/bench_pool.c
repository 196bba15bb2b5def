/* SPDX-License-Identifier: MIT */
/*
 * Pools: what sk_pool_map costs, on pools whose workers already run.
 *
 *   pool.map.skproc     sk_pool_map of 10M int32 items (quick: 1M) to int32
 *                       results, f(x) = x * 3 + 1, one worker per CPU, in
 *                       items per second (median of 5 maps, quick 3); its
 *                       baseline is raw_pool.c's pool.map.raw
 *   pool.map.skproc_vs_copy, pool.map.skproc_vs_zero
 *                       the same measurement again under two more keys, so
 *                       that the report compares it with the other two
 *                       floors too (bench/run.py gives a row one baseline):
 *                       raw_pool_floors.c's pool.map.raw_copy and
 *                       pool.map.raw_zero
 *   pool.map.skproc_zero
 *                       the same map on the same pool, with items and
 *                       results in arrays of sk_pool_alloc (zero-copy
 *                       arrays, issue 12 item 3): nothing is copied; its
 *                       baseline is raw_pool_floors.c's pool.map.raw_zero.
 *                       The arrays are filled and one warm-up map runs
 *                       before the timed ones, as for the floor
 *   pool.map.skproc_range, pool.map.skproc_zero_range
 *                       the same two maps with the range form of the job
 *                       (sk_pool_job.range): one call per run of items, a
 *                       loop the compiler vectorizes, as the floors'
 *                       workers do; baselines pool.map.raw_copy and
 *                       pool.map.raw_zero
 *   pool.map.first      the first of those maps alone: the pool's batch
 *                       memory is still untouched (page faults)
 *   pool.one.skproc     sk_pool_map of one item on a warm pool, in
 *                       microseconds (median of 1000 calls, quick 200)
 *   pool.cpu.*          a map of CPU-heavy items, about 1 ms of pure
 *                       computation each (a calibrated spin loop), 40 items
 *                       per worker. The same items are first computed one
 *                       after the other in the parent (the sequential
 *                       time); parallel efficiency = sequential time /
 *                       (workers x the map's wall time). pool.cpu.wall is
 *                       the map's wall time, pool.cpu.ideal the sequential
 *                       time / workers, so wall / ideal < 1.11 is an
 *                       efficiency of 90% or more. Median of 5 (quick 3).
 *   pool.batch.*        throughput of the 10M-item map (quick 1M) against
 *                       config.batch (64 ... 16384, and the automatic choice),
 *                       median of 5 maps (quick 3) on a fresh pool each
 *   pool.workers.*      the same against config.workers (1 ... CPUs), with
 *                       the automatic batch
 *
 * Every pool is created and warmed up (one small map) before it is timed.
 */
#include "common.h"

#include <skproc.h>

#include <unistd.h>

#define AREA "pool"

static inline int32_t triple(int32_t x)
{
    return (int32_t)((uint32_t)x * 3u + 1u);
}

static int triple_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    int32_t y = triple(x);
    memcpy(result, &y, sizeof y);
    return 0;
}

static const sk_pool_job triple_job = {
    .fn = triple_fn, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};

/* The range form: the same function over a run of items, a loop the
 * compiler vectorizes, as the floors' workers run it. */
static int triple_range(const void *items, void *results, size_t count, const void *arg)
{
    (void)arg;
    const int32_t *in = items;
    int32_t *out = results;
    for (size_t i = 0; i < count; i++)
        out[i] = triple(in[i]);
    return 0;
}

static const sk_pool_job triple_range_job = {
    .range = triple_range, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};

/* About 1 ms of computation that the compiler cannot fold: a chain of
 * xorshift steps, each depending on the last. */
static uint64_t spin(uint64_t seed, long iters)
{
    uint64_t x = seed | 1;
    for (long i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* item: a uint64 seed; arg: the iteration count; result: the uint64. */
static int spin_fn(const void *item, void *result, const void *arg)
{
    uint64_t seed, out;
    long iters;
    memcpy(&seed, item, sizeof seed);
    memcpy(&iters, arg, sizeof iters);
    out = spin(seed, iters);
    memcpy(result, &out, sizeof out);
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc != SK_OK) {
        fprintf(stderr, "bench_pool: %s: %s\n", what, sk_strerror(rc));
        exit(1);
    }
}

static sk_pool *make_pool(int workers, long batch)
{
    sk_pool_config cfg = {.workers = workers, .batch = batch, .no_progress = true};
    sk_pool *pool = NULL;
    check(sk_pool_create(&pool, &cfg), "sk_pool_create");
    return pool;
}

/* Items per second of one map of n items with `job`; checks every result. */
static double job_rate(sk_pool *pool, const sk_pool_job *job, const int32_t *items,
                       int32_t *results, long n)
{
    memset(results, 0, (size_t)n * sizeof *results);
    int64_t t0 = bench_now_ns();
    check(sk_pool_map(pool, job, items, (size_t)n, results, NULL), "sk_pool_map");
    int64_t t1 = bench_now_ns();
    for (long i = 0; i < n; i++)
        BENCH_CHECK(results[i] == triple(items[i]), "a result");
    return (double)n / ((double)(t1 - t0) / 1e9);
}

static double map_rate(sk_pool *pool, const int32_t *items, int32_t *results, long n)
{
    return job_rate(pool, &triple_job, items, results, n);
}

/* The median of `maps` maps with `job`. */
static struct bench_stats job_median(sk_pool *pool, const sk_pool_job *job, const int32_t *items,
                                     int32_t *results, long n, int maps)
{
    double rates[16];
    for (int m = 0; m < maps; m++)
        rates[m] = job_rate(pool, job, items, results, n);
    return bench_summarize(rates, maps);
}

static void warm_up(sk_pool *pool, const int32_t *items, int32_t *results, long n)
{
    map_rate(pool, items, results, n < 100000 ? n : 100000);
}

/* Median items/s of `maps` maps on a fresh pool of that shape. */
static struct bench_stats sweep_point(int workers, long batch, const int32_t *items,
                                      int32_t *results, long n, int maps)
{
    sk_pool *pool = make_pool(workers, batch);
    warm_up(pool, items, results, n);
    double rates[16];
    for (int m = 0; m < maps; m++)
        rates[m] = map_rate(pool, items, results, n);
    sk_pool_release(pool);
    return bench_summarize(rates, maps);
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    long n = bench_ops(&o, 10000000, 1000000);
    int maps = o.quick ? 3 : 5;
    long ones = o.quick ? 200 : 1000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;

    bench_print_info("bench_pool");

    int32_t *items = malloc((size_t)n * sizeof *items);
    int32_t *results = malloc((size_t)n * sizeof *results);
    BENCH_CHECK(items != NULL && results != NULL, "malloc");
    for (long i = 0; i < n; i++)
        items[i] = (int32_t)i;

    /* ---- the 10M-item map and the one-item map, on one default pool */
    sk_pool *pool = make_pool(0, 0);
    warm_up(pool, items, results, n);
    double rates[16];
    for (int m = 0; m < maps; m++)
        rates[m] = map_rate(pool, items, results, n);
    double first = rates[0];
    struct bench_stats st = bench_summarize(rates, maps);
    char extra[160];
    snprintf(extra, sizeof extra, "\"short\":\"skproc map\",\"items\":%ld,\"workers\":%ld", n,
             cpus);
    bench_emit(AREA, "pool.map.skproc", "skproc sk_pool_map of 4-byte items", "items/s", st.median,
               &st, extra);
    snprintf(extra, sizeof extra, "\"items\":%ld,\"workers\":%ld", n, cpus);
    bench_emit(AREA, "pool.map.skproc_vs_copy",
               "skproc sk_pool_map of 4-byte items, against the raw copying floor", "items/s",
               st.median, &st, extra);
    bench_emit(AREA, "pool.map.skproc_vs_zero",
               "skproc sk_pool_map of 4-byte items, against the raw zero-copy floor", "items/s",
               st.median, &st, extra);
    bench_emit(AREA, "pool.map.first", "skproc sk_pool_map of 4-byte items, first map of a pool",
               "items/s", first, NULL, extra);

    /* ---- the range form over the same private arrays */
    struct bench_stats rst = job_median(pool, &triple_range_job, items, results, n, maps);
    bench_emit(AREA, "pool.map.skproc_range",
               "skproc sk_pool_map of 4-byte items, range form (a call per run of items)",
               "items/s", rst.median, &rst, extra);

    /* ---- the same map over zero-copy arrays (sk_pool_alloc) */
    int32_t *zitems = sk_pool_alloc(pool, (size_t)n * sizeof *zitems);
    int32_t *zresults = sk_pool_alloc(pool, (size_t)n * sizeof *zresults);
    BENCH_CHECK(zitems != NULL && zresults != NULL, "sk_pool_alloc");
    memcpy(zitems, items, (size_t)n * sizeof *zitems);
    map_rate(pool, zitems, zresults, n); /* warm-up: the workers map the pages */
    struct bench_stats zst = job_median(pool, &triple_job, zitems, zresults, n, maps);
    bench_emit(AREA, "pool.map.skproc_zero",
               "skproc sk_pool_map of 4-byte items over zero-copy arrays (sk_pool_alloc)",
               "items/s", zst.median, &zst, extra);
    zst = job_median(pool, &triple_range_job, zitems, zresults, n, maps);
    bench_emit(AREA, "pool.map.skproc_zero_range",
               "skproc sk_pool_map of 4-byte items over zero-copy arrays, range form", "items/s",
               zst.median, &zst, extra);
    check(sk_pool_free(pool, zitems), "sk_pool_free");
    check(sk_pool_free(pool, zresults), "sk_pool_free");

    double *us = malloc((size_t)ones * sizeof *us);
    BENCH_CHECK(us != NULL, "malloc");
    for (long k = 0; k < ones + 20; k++) { /* the first 20 warm up */
        int32_t x = (int32_t)k, y = 0;
        int64_t t0 = bench_now_ns();
        check(sk_pool_map(pool, &triple_job, &x, 1, &y, NULL), "sk_pool_map of one item");
        int64_t t1 = bench_now_ns();
        BENCH_CHECK(y == triple(x), "a one-item result");
        if (k >= 20)
            us[k - 20] = (double)(t1 - t0) / 1e3;
    }
    struct bench_stats one = bench_summarize(us, ones);
    bench_emit(AREA, "pool.one.skproc", "skproc sk_pool_map of one item (warm pool)", "us",
               one.median, &one, NULL);
    free(us);

    /* ---- CPU-heavy items: parallel efficiency */
    long iters = 1000000;
    {
        /* Calibrate: iterations for about 1 ms, from the fastest of a few tries. */
        double best = 1e30;
        for (int k = 0; k < 5; k++) {
            int64_t t0 = bench_now_ns();
            volatile uint64_t sink = spin((uint64_t)k, iters);
            (void)sink;
            double ns = (double)(bench_now_ns() - t0);
            if (ns < best)
                best = ns;
        }
        iters = (long)((double)iters * 1e6 / best);
        if (iters < 1)
            iters = 1;
    }
    long nheavy = 40 * cpus;
    uint64_t *seeds = malloc((size_t)nheavy * sizeof *seeds);
    uint64_t *expect = malloc((size_t)nheavy * sizeof *expect);
    uint64_t *got = malloc((size_t)nheavy * sizeof *got);
    BENCH_CHECK(seeds != NULL && expect != NULL && got != NULL, "malloc");
    for (long i = 0; i < nheavy; i++)
        seeds[i] = (uint64_t)i * 0x9e3779b97f4a7c15u;
    sk_pool_job spin_job = {.fn = spin_fn,
                            .arg = &iters,
                            .arg_size = sizeof iters,
                            .item_size = sizeof(uint64_t),
                            .result_size = sizeof(uint64_t)};
    check(sk_pool_map(pool, &spin_job, seeds, (size_t)(cpus < nheavy ? cpus : nheavy), got, NULL),
          "warm-up map of CPU-heavy items");
    double eff[16], wall_ms[16], ideal_ms[16], item_ms[16];
    for (int m = 0; m < maps; m++) {
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < nheavy; i++)
            expect[i] = spin(seeds[i], iters);
        int64_t t1 = bench_now_ns();
        memset(got, 0, (size_t)nheavy * sizeof *got);
        check(sk_pool_map(pool, &spin_job, seeds, (size_t)nheavy, got, NULL),
              "map of CPU-heavy items");
        int64_t t2 = bench_now_ns();
        BENCH_CHECK(memcmp(got, expect, (size_t)nheavy * sizeof *got) == 0, "a CPU-heavy result");
        double seq = (double)(t1 - t0), wall = (double)(t2 - t1);
        eff[m] = 100.0 * seq / ((double)cpus * wall);
        wall_ms[m] = wall / 1e6;
        ideal_ms[m] = seq / (double)cpus / 1e6;
        item_ms[m] = seq / (double)nheavy / 1e6;
    }
    /* The wall and ideal rows must come from the same maps: emit the map
     * whose efficiency is the median one. */
    double sorted[16];
    memcpy(sorted, eff, (size_t)maps * sizeof eff[0]);
    struct bench_stats est = bench_summarize(sorted, maps);
    int mid = 0;
    for (int m = 0; m < maps; m++)
        if (eff[m] == sorted[maps / 2])
            mid = m;
    snprintf(extra, sizeof extra,
             "\"items\":%ld,\"workers\":%ld,\"item_ms\":%.4f,\"spin_iterations\":%ld", nheavy, cpus,
             item_ms[mid], iters);
    bench_emit(AREA, "pool.cpu.efficiency", "parallel efficiency, ~1 ms CPU-bound items", "%",
               eff[mid], &est, extra);
    bench_emit(AREA, "pool.cpu.ideal", "ideal wall time of the ~1 ms items (sequential / workers)",
               "ms", ideal_ms[mid], NULL, "\"short\":\"ideal\"");
    bench_emit(AREA, "pool.cpu.wall", "skproc wall time of the ~1 ms items", "ms", wall_ms[mid],
               NULL, "\"baseline\":\"pool.cpu.ideal\"");
    free(seeds);
    free(expect);
    free(got);
    sk_pool_release(pool);

    /* ---- throughput against config.batch */
    static const long batches[] = {64, 256, 1024, 4096, 16384, 0};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        struct bench_stats s = sweep_point(0, batches[b], items, results, n, maps);
        char key[64], name[96];
        if (batches[b] > 0) {
            snprintf(key, sizeof key, "pool.batch.%ld", batches[b]);
            snprintf(name, sizeof name, "sk_pool_map, batch = %ld", batches[b]);
        } else {
            snprintf(key, sizeof key, "pool.batch.auto");
            snprintf(name, sizeof name, "sk_pool_map, batch automatic");
        }
        snprintf(extra, sizeof extra,
                 "\"table\":\"batch size\",\"baseline\":\"pool.map.raw\",\"items\":%ld,"
                 "\"workers\":%ld,\"batch\":%ld",
                 n, cpus, batches[b]);
        bench_emit(AREA, key, name, "items/s", s.median, &s, extra);
    }

    /* ---- throughput against config.workers */
    for (long w = 1; w <= cpus; w++) {
        struct bench_stats s = sweep_point((int)w, 0, items, results, n, maps);
        char key[64], name[96];
        snprintf(key, sizeof key, "pool.workers.%ld", w);
        snprintf(name, sizeof name, "sk_pool_map, %ld worker%s", w, w == 1 ? "" : "s");
        snprintf(extra, sizeof extra, "\"table\":\"workers\",\"items\":%ld,\"workers\":%ld%s", n, w,
                 w == 1 ? ",\"short\":\"1 worker\"" : ",\"baseline\":\"pool.workers.1\"");
        bench_emit(AREA, key, name, "items/s", s.median, &s, extra);
    }

    free(items);
    free(results);
    return 0;
}
