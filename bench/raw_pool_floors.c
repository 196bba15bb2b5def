/* SPDX-License-Identifier: MIT */
/*
 * The floors of a pool map over shared memory (issue 12 item 1): N forked
 * workers (N = online CPUs, as in raw_pool.c and bench_pool.c) that read
 * and write one MAP_SHARED | MAP_ANONYMOUS mapping created before the fork,
 * fed index ranges over pipes. The same workload as raw_pool.c's
 * pool.map.raw and bench_pool.c's pool.map.skproc: 10M int32 items (quick:
 * 1M) to int32 results, f(x) = x * 3 + 1.
 *
 *   pool.map.raw_copy   the raw copying floor, in items per second: the
 *                       caller's items and results are PRIVATE arrays
 *                       (malloc); the parent copies the items into the
 *                       shared mapping and the results back out of it into
 *                       the caller's array. Timed from the first copy in to
 *                       the last copy back.
 *   pool.map.raw_zero   the raw zero-copy floor, in items per second: the
 *                       same map with items and results already in the
 *                       shared mapping, so nothing is copied. Timed from the
 *                       first range sent to the last one done.
 *
 * Each worker has a pipe in (ranges: first index and count, 16 bytes) and a
 * pipe out (an 8-byte "done" per range). A map is cut into SPLIT ranges
 * per worker, range r going to worker r % N; the parent sends them all,
 * then collects them in order (each pipe is FIFO). In the copying floor
 * the parent copies a range in just before sending it and copies it back
 * out right after its "done", so the copies overlap the workers' work, as
 * a good pool would do it. SPLIT = 4 was the best compromise measured on a
 * 2-CPU machine: one range per worker leaves the workers idle while the
 * parent copies, and many small ranges pay a wake-up each (16384-item
 * ranges, raw_pool.c's batch, made the zero-copy floor several times
 * slower).
 *
 * Forking the workers is not timed, nor is one warm-up map of the full
 * size per floor: a persistent pool keeps its mapping, so its pages are
 * faulted in (in the parent and, since a forked child of a shared mapping
 * starts without its page-table entries, in every worker) before the timed
 * maps; ranges go to the same worker in every map, so a timed map takes no
 * page fault in the mapping. The results array (the caller's private one,
 * or the shared one for the zero-copy floor) is zeroed before each map (not
 * timed), as raw_pool.c and bench_pool.c do.
 * The value of a repetition is the median of 5 maps (quick: 3). Like
 * raw_pool.c and bench_pool.c, nothing is pinned: the workers and the
 * parent go where the scheduler puts them. Every result is checked after
 * each map (not timed).
 *
 * These are what a hand-written pool over shared memory costs when it
 * knows everything in advance (item size, uniform work, no failures, no
 * timeouts): the floors skproc's sk_pool_map is compared with, next to the
 * batched pipe pool of raw_pool.c.
 */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA "pool"
#define SPLIT 4 /* ranges per worker in a map */
#define MAX_WORKERS 256

static inline int32_t trivial(int32_t x)
{
    return (int32_t)((uint32_t)x * 3u + 1u);
}

typedef struct {
    uint64_t first, count; /* count 0 ends the worker */
} range_msg;

/* The shared mapping: shm_in[n] then shm_out[n]. */
static int32_t *shm_in, *shm_out;

/* The worker: a range in, its results into the mapping, "done" out. */
static void worker_main(int in, int out)
{
    for (;;) {
        range_msg r;
        bench_read_all(in, &r, sizeof r);
        if (r.count == 0)
            _exit(0);
        const int32_t *x = shm_in + r.first;
        int32_t *y = shm_out + r.first;
        for (uint64_t i = 0; i < r.count; i++)
            y[i] = trivial(x[i]);
        uint64_t done = r.count;
        bench_write_all(out, &done, sizeof done);
    }
}

typedef struct {
    pid_t pid;
    int to, from; /* the parent's ends */
} raw_worker;

static raw_worker workers[MAX_WORKERS];
static int nworkers;

static void start_workers(int n)
{
    nworkers = n;
    for (int w = 0; w < n; w++) {
        int down[2], up[2];
        BENCH_CHECK(pipe2(down, O_CLOEXEC) == 0 && pipe2(up, O_CLOEXEC) == 0, "pipe2");
        pid_t pid = fork();
        BENCH_CHECK(pid >= 0, "fork");
        if (pid == 0) {
            for (int k = 0; k < w; k++) {
                close(workers[k].to);
                close(workers[k].from);
            }
            close(down[1]);
            close(up[0]);
            worker_main(down[0], up[1]);
        }
        close(down[0]);
        close(up[1]);
        workers[w] = (raw_worker){pid, down[1], up[0]};
    }
}

static void stop_workers(void)
{
    for (int w = 0; w < nworkers; w++) {
        range_msg end = {0, 0};
        bench_write_all(workers[w].to, &end, sizeof end);
        close(workers[w].to);
        close(workers[w].from);
    }
    for (int w = 0; w < nworkers; w++) {
        int status;
        while (waitpid(workers[w].pid, &status, 0) < 0)
            BENCH_CHECK(errno == EINTR, "waitpid");
        BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a worker's exit");
    }
}

/* One map of shm_in[0, n) into shm_out[0, n). With items and results (the
 * copying floor), items are copied into shm_in range by range before the
 * range is sent, and each range's results out of shm_out into results
 * once it is done; with NULL (the zero-copy floor), nothing is copied. */
static void floor_map(const int32_t *items, int32_t *results, size_t n)
{
    size_t nranges = (size_t)nworkers * SPLIT;
    size_t range = (n + nranges - 1) / nranges; /* items per range */
    /* Send every range: nranges 16-byte messages fit in the pipes. */
    for (size_t r = 0; r < nranges && r * range < n; r++) {
        range_msg m = {r * range, n - r * range < range ? n - r * range : range};
        if (items != NULL)
            memcpy(shm_in + m.first, items + m.first, m.count * sizeof items[0]);
        bench_write_all(workers[r % (size_t)nworkers].to, &m, sizeof m);
    }
    /* Collect them in order (each worker's pipe is FIFO). */
    for (size_t r = 0; r < nranges && r * range < n; r++) {
        size_t first = r * range;
        size_t count = n - first < range ? n - first : range;
        uint64_t done;
        bench_read_all(workers[r % (size_t)nworkers].from, &done, sizeof done);
        BENCH_CHECK(done == count, "a range's done");
        if (results != NULL)
            memcpy(results + first, shm_out + first, count * sizeof results[0]);
    }
}

/* Median items/s of `maps` timed maps after one untimed warm-up map of
 * the same size; checks every result. */
static struct bench_stats measure(const int32_t *items, int32_t *results, long n, int maps,
                                  bool copy)
{
    double rates[16];
    for (int m = -1; m < maps; m++) { /* m = -1: the warm-up */
        int32_t *check = copy ? results : shm_out;
        memset(check, 0, (size_t)n * sizeof *check);
        int64_t t0 = bench_now_ns();
        floor_map(copy ? items : NULL, copy ? results : NULL, (size_t)n);
        int64_t t1 = bench_now_ns();
        for (long i = 0; i < n; i++)
            BENCH_CHECK(check[i] == trivial(items[i]), "a result");
        if (m >= 0)
            rates[m] = (double)n / ((double)(t1 - t0) / 1e9);
    }
    return bench_summarize(rates, maps);
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    long n = bench_ops(&o, 10000000, 1000000);
    int maps = o.quick ? 3 : 5;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nw = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;

    bench_print_info("raw_pool_floors");
    signal(SIGPIPE, SIG_IGN);

    /* The shared mapping exists before the fork, as a pool's arena does. */
    size_t bytes = (size_t)n * sizeof(int32_t);
    void *shm = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(shm != MAP_FAILED, "mmap");
    shm_in = shm;
    shm_out = shm_in + n;
    start_workers(nw);

    int32_t *items = malloc(bytes);
    int32_t *results = malloc(bytes);
    BENCH_CHECK(items != NULL && results != NULL, "malloc");
    for (long i = 0; i < n; i++)
        items[i] = (int32_t)i;

    /* The copying floor first: its warm-up faults the whole mapping in. */
    struct bench_stats copy = measure(items, results, n, maps, true);
    /* The zero-copy floor: the caller's items already sit in shm_in. */
    memcpy(shm_in, items, bytes);
    struct bench_stats zero = measure(items, results, n, maps, false);
    stop_workers();

    char extra[160];
    snprintf(extra, sizeof extra,
             "\"short\":\"raw copying floor\",\"items\":%ld,\"workers\":%d,\"split\":%d", n, nw,
             SPLIT);
    bench_emit(AREA, "pool.map.raw_copy",
               "raw copying floor (shared memory, private arrays copied in and out), map of "
               "4-byte items",
               "items/s", copy.median, &copy, extra);
    snprintf(extra, sizeof extra,
             "\"short\":\"raw zero-copy floor\",\"items\":%ld,\"workers\":%d,\"split\":%d", n, nw,
             SPLIT);
    bench_emit(AREA, "pool.map.raw_zero",
               "raw zero-copy floor (items and results in shared memory), map of 4-byte items",
               "items/s", zero.median, &zero, extra);
    munmap(shm, 2 * bytes);
    free(items);
    free(results);
    return 0;
}
