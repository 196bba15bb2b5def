/* SPDX-License-Identifier: MIT */
/*
 * The physical baseline of a pool map: N forked workers (N = online CPUs)
 * fed with batches of items over pipes, with nothing else in the way.
 *
 *   pool.map.raw   map 10M int32 items (quick: 1M) through the workers,
 *                  result = x * 3 + 1, in items per second
 *   pool.one.raw   a map of one item: the round trip of one 8-byte write
 *                  (count + item) to a worker and a 4-byte read back, in
 *                  microseconds (median of 1000 maps, quick 200)
 *
 * Each worker has a pipe in and a pipe out (1 MiB each, F_SETPIPE_SZ). The
 * parent cuts the items into batches of 16384 items (64 KiB) and hands them
 * round-robin: batch b goes to worker b % N as a 4-byte count and the item
 * bytes, the worker applies the function and writes the result bytes back,
 * and the parent reads them straight into the results array at the batch's
 * place. Up to two batches are in flight per worker, and because batches go
 * round-robin and each pipe is FIFO, reading the workers round-robin
 * collects the results in order. Forking the workers and one warm-up map
 * are not timed; the time of a map is from its first write to its last
 * read. The value of a repetition is the median of 5 maps (quick: 3).
 *
 * This is what a hand-written pool costs when it knows everything in
 * advance (item size, uniform work, no failures, no timeouts): one of the
 * three floors skproc's sk_pool_map is compared with (raw_pool_floors.c
 * has the other two: a pool over shared memory, with and without copies).
 */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA "pool"
#define BATCH 16384 /* items per batch: 64 KiB of int32 */
#define DEPTH 2     /* batches in flight per worker */
#define MAX_WORKERS 256

static inline int32_t trivial(int32_t x)
{
    return (int32_t)((uint32_t)x * 3u + 1u);
}

/* The worker: count, items in; results out; count 0 ends it. */
static void worker_main(int in, int out)
{
    static int32_t buf[BATCH];
    for (;;) {
        uint32_t count;
        bench_read_all(in, &count, sizeof count);
        if (count == 0)
            _exit(0);
        bench_read_all(in, buf, count * sizeof buf[0]);
        for (uint32_t i = 0; i < count; i++)
            buf[i] = trivial(buf[i]);
        bench_write_all(out, buf, count * sizeof buf[0]);
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
        /* Room for DEPTH batches each way (best effort: the default 64 KiB
         * still works, the parent just waits more). */
        (void)fcntl(down[1], F_SETPIPE_SZ, 1 << 20);
        (void)fcntl(up[1], F_SETPIPE_SZ, 1 << 20);
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
        uint32_t zero = 0;
        bench_write_all(workers[w].to, &zero, sizeof zero);
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

/* One map: results[i] = trivial(items[i]) for i < n, in order. */
static void raw_map(const int32_t *items, int32_t *results, size_t n)
{
    size_t nbatches = (n + BATCH - 1) / BATCH;
    size_t sent = 0, got = 0; /* batches */
    while (got < nbatches) {
        /* Send while the next batch's worker has room. */
        while (sent < nbatches && sent - got < (size_t)nworkers * DEPTH) {
            raw_worker *w = &workers[sent % (size_t)nworkers];
            size_t first = sent * BATCH;
            uint32_t count = (uint32_t)(n - first < BATCH ? n - first : BATCH);
            struct {
                uint32_t count;
                int32_t items[BATCH];
            } msg;
            msg.count = count;
            memcpy(msg.items, items + first, count * sizeof items[0]);
            bench_write_all(w->to, &msg, sizeof count + count * sizeof items[0]);
            sent++;
        }
        /* Collect the oldest batch in flight (in order). */
        raw_worker *w = &workers[got % (size_t)nworkers];
        size_t first = got * BATCH;
        size_t count = n - first < BATCH ? n - first : BATCH;
        bench_read_all(w->from, results + first, count * sizeof results[0]);
        got++;
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    long n = bench_ops(&o, 10000000, 1000000);
    int maps = o.quick ? 3 : 5;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nw = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;

    bench_print_info("raw_pool");
    signal(SIGPIPE, SIG_IGN);
    start_workers(nw);

    int32_t *items = malloc((size_t)n * sizeof *items);
    int32_t *results = malloc((size_t)n * sizeof *results);
    BENCH_CHECK(items != NULL && results != NULL, "malloc");
    for (long i = 0; i < n; i++)
        items[i] = (int32_t)i;

    raw_map(items, results, (size_t)(n < 100000 ? n : 100000)); /* warm up */

    double rates[16];
    for (int m = 0; m < maps; m++) {
        memset(results, 0, (size_t)n * sizeof *results);
        int64_t t0 = bench_now_ns();
        raw_map(items, results, (size_t)n);
        int64_t t1 = bench_now_ns();
        for (long i = 0; i < n; i++)
            BENCH_CHECK(results[i] == trivial(items[i]), "a result");
        rates[m] = (double)n / ((double)(t1 - t0) / 1e9);
    }

    long ones = o.quick ? 200 : 1000;
    double *us = malloc((size_t)ones * sizeof *us);
    BENCH_CHECK(us != NULL, "malloc");
    for (long k = 0; k < ones + 20; k++) { /* the first 20 warm up */
        int32_t x = (int32_t)k, y = 0;
        int64_t t0 = bench_now_ns();
        raw_map(&x, &y, 1);
        int64_t t1 = bench_now_ns();
        BENCH_CHECK(y == trivial(x), "a one-item result");
        if (k >= 20)
            us[k - 20] = (double)(t1 - t0) / 1e3;
    }
    stop_workers();

    struct bench_stats one = bench_summarize(us, ones);
    struct bench_stats st = bench_summarize(rates, maps);
    char extra[128];
    snprintf(extra, sizeof extra,
             "\"short\":\"raw pool\",\"items\":%ld,\"workers\":%d,\"batch\":%d", n, nw, BATCH);
    bench_emit(AREA, "pool.map.raw", "raw batched pipe pool, map of 4-byte items", "items/s",
               st.median, &st, extra);
    bench_emit(AREA, "pool.one.raw", "raw pipe pool, map of one item", "us", one.median, &one,
               "\"short\":\"raw one-item map\"");
    free(us);
    free(items);
    free(results);
    return 0;
}
