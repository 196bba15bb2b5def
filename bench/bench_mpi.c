/* SPDX-License-Identifier: MIT */
/*
 * skproc-mpi's map, run as `mpirun -n 3 bench_mpi` (bench/run.py): rank 0
 * maps, ranks 1 and 2 serve with one worker each (2 workers in all, over
 * TCP on loopback), against rank 0's local pool of 2 workers forked before
 * MPI_Init (the same workers on one machine) and raw_mpi.c's master-worker
 * floor (same run of run.py).
 *
 *   mpi.map.skproc_range  items per second of a map of 10M int32 items
 *                         (quick 2M), f(x) = x * 3 + 1, range form (a loop
 *                         per run of items, as the floor's ranks run it);
 *                         median of 5 maps (quick 3)
 *   mpi.map.skproc        the same, function form (a call per item)
 *   mpi.map.local         the range form on the local pool (2 workers)
 *   mpi.tiny.overhead     ns per item per worker of the function form
 *                         (wall time * 2 workers / items)
 *   mpi.cpu.wall          seconds for 600 items (quick 200) of 1 ms of CPU
 *                         each over the 2 ranks; mpi.cpu.ideal is 600 *
 *                         1 ms / 2 workers: their ratio is the parallel
 *                         efficiency across ranks
 *   mpi.cpu.overhead      microseconds per 1 ms item beyond its 1 ms
 */
#include "common.h"
#include "mpi_map.h"

#include <skproc.h>
#include <skproc/mpi.h>

/* f(x) = x * 3 + 1 over a run of items. */
static int tiny_range(const void *items, void *results, size_t count, const void *arg)
{
    (void)arg;
    const int32_t *in = items;
    int32_t *out = results;
    for (size_t i = 0; i < count; i++)
        out[i] = in[i] * 3 + 1;
    return 0;
}

static int tiny(const void *item, void *result, const void *arg)
{
    (void)arg;
    *(int32_t *)result = *(const int32_t *)item * 3 + 1;
    return 0;
}

/* 1 ms of this process's CPU time. */
static int spin_1ms(const void *item, void *result, const void *arg)
{
    (void)arg;
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    uint64_t x = (uint64_t) * (const int32_t *)item;
    do {
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1000000L);
    *(int64_t *)result = (int64_t)x;
    return 0;
}

static const sk_pool_job range_job = {
    .range = tiny_range, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};
static const sk_pool_job fn_job = {
    .fn = tiny, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};
static const sk_pool_job cpu_job = {
    .fn = spin_1ms, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

/* Items per second of maps of job over items (median of maps). */
static struct bench_stats map_rate(sk_pool *pool, const sk_pool_job *job, struct mpi_map *mm)
{
    double rates[16];
    for (int m = 0; m < mm->maps; m++) {
        int64_t t0 = bench_now_ns();
        BENCH_CHECK(sk_pool_map(pool, job, mm->items, (size_t)mm->n, mm->results, NULL) == SK_OK,
                    "map");
        rates[m] = (double)mm->n * 1e9 / (double)(bench_now_ns() - t0);
        mpi_map_check(mm, "map result");
    }
    return bench_summarize(rates, mm->maps);
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    sk_mpi_register_job("tiny_range", &range_job);
    sk_mpi_register_job("tiny", &fn_job);
    sk_mpi_register_job("spin_1ms", &cpu_job);
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (rank == NULL)
        rank = getenv("PMI_RANK");
    sk_pool *local = NULL;
    if (rank != NULL && strcmp(rank, "0") == 0) {
        sk_pool_config lc = {.workers = 2};
        BENCH_CHECK(sk_pool_create(&local, &lc) == SK_OK, "local pool");
    }
    sk_mpi_config cfg = {.pool = {.workers = 1}};
    sk_pool *pool;
    if (sk_mpi_start(&pool, &cfg, &argc, &argv) != SK_OK) {
        fprintf(stderr, "bench_mpi: %s (run it with mpirun -n 3)\n", sk_last_error_message());
        return 1;
    }
    if (pool == NULL)
        return 0;
    BENCH_CHECK(local != NULL, "rank 0's local pool (launched by mpirun?)");
    bench_print_info("bench_mpi");
    struct mpi_map mm = mpi_map_make(&o);
    int maps = mm.maps;

    struct bench_stats st = map_rate(pool, &range_job, &mm);
    bench_emit("mpi", "mpi.map.skproc_range", "skproc-mpi map, range form (2 ranks x 1 worker)",
               "items/s", st.median, &st, NULL);
    st = map_rate(pool, &fn_job, &mm);
    bench_emit("mpi", "mpi.map.skproc", "skproc-mpi map, a call per item (2 ranks x 1 worker)",
               "items/s", st.median, &st, NULL);
    bench_emit("mpi", "mpi.tiny.overhead", "skproc-mpi per tiny item, per worker", "ns",
               2e9 / st.median, NULL, NULL);
    st = map_rate(local, &range_job, &mm);
    bench_emit("mpi", "mpi.map.local", "local pool map, range form (2 workers)", "items/s",
               st.median, &st, NULL);

    long cpu_n = bench_ops(&o, 600, 200);
    int64_t *out = malloc((size_t)cpu_n * sizeof *out);
    double walls[16];
    for (int m = 0; m < maps; m++) {
        int64_t t0 = bench_now_ns();
        BENCH_CHECK(sk_pool_map(pool, &cpu_job, mm.items, (size_t)cpu_n, out, NULL) == SK_OK,
                    "cpu map");
        walls[m] = (double)(bench_now_ns() - t0) / 1e9;
    }
    st = bench_summarize(walls, maps);
    double ideal = (double)cpu_n * 1e-3 / 2;
    bench_emit("mpi", "mpi.cpu.ideal", "1 ms items: ideal over 2 workers", "s", ideal, NULL, NULL);
    bench_emit("mpi", "mpi.cpu.wall", "1 ms items over 2 ranks x 1 worker", "s", st.median, &st,
               NULL);
    bench_emit("mpi", "mpi.cpu.overhead", "skproc-mpi per 1 ms item beyond its 1 ms", "us",
               (st.median * 2 / (double)cpu_n - 1e-3) * 1e6, NULL, NULL);
    free(out);
    mpi_map_free(&mm);
    sk_pool_release(local);
    return sk_mpi_stop(pool) == SK_OK ? 0 : 1;
}
