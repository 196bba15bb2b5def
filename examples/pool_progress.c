/* SPDX-License-Identifier: MIT */
/*
 * pool_progress: a long map, with a progress bar, three ways.
 *
 *   1. Drawn by the program: an unordered_imap over 200 items of about 5 ms
 *      each. sk_pool_next hands over each result as soon as it is ready,
 *      with its item's index; between results (sk_pool_next waits at most
 *      50 ms) the program reads sk_pool_counters_of (items done, failed,
 *      in flight) and redraws its own bar.
 *   2. Reported to the program: a map whose config.progress callback gets
 *      the count, the percentage, the rate and the time left, about ten
 *      times a second, for the program's own UI (here, a line per second).
 *   3. Drawn by the pool: sk_pool_map with config.progress_bar. A map that
 *      takes longer than half a second draws one line on stderr, as wide
 *      as the terminal, redrawn in place and cleared when done, but only
 *      when stderr is a terminal: run this example in a terminal to see it
 *      (redirected, nothing is drawn and the map is the same).
 *
 * Build: gcc -std=c11 pool_progress.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nanosleep */
#endif
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

#define N 200     /* part 1 */
#define N2 1000   /* part 2 */
#define WORKERS 4 /* the items wait rather than compute: more workers than CPUs is fine */

/* Pretend to work on an item for `arg` milliseconds (waiting on a disk, say). */
static int slow_double(const void *item, void *result, const void *arg)
{
    int x, ms;
    memcpy(&x, item, sizeof x);
    memcpy(&ms, arg, sizeof ms);
    struct timespec ts = {0, ms * 1000L * 1000L};
    nanosleep(&ts, NULL);
    x *= 2;
    memcpy(result, &x, sizeof x);
    return 0;
}

static void draw_bar(const sk_pool_counters *c, long total, bool tty)
{
    enum { WIDTH = 40 };
    int filled = (int)(c->done * WIDTH / total);
    if (tty) {
        printf("\r[%.*s%*s] %3ld/%ld  in flight %2ld  failed %ld", filled,
               "########################################", WIDTH - filled, "", c->done, total,
               c->in_flight, c->failed);
    } else {
        /* Not a terminal: a line per tenth instead of redrawing one. */
        static long last = -1;
        long tenth = c->done * 10 / total;
        if (tenth == last)
            return;
        last = tenth;
        printf("[%.*s%*s] %3ld/%ld\n", filled, "########################################",
               WIDTH - filled, "", c->done, total);
    }
    fflush(stdout);
}

/* The pool's report, shown as a line a second (and the last one). */
static void report_progress(const sk_pool_progress *p, void *ctx)
{
    double *next_line = ctx;
    if (!p->finished && p->elapsed < *next_line)
        return;
    *next_line = p->elapsed + 1.0;
    printf("   %5.1f s: %zu/%zu items (%.0f%%), %.0f items/s, %s%.1f s left\n", p->elapsed, p->done,
           p->total, 100.0 * (double)p->done / (double)p->total, p->rate,
           p->finished ? "" : "about ", p->finished ? 0.0 : p->eta);
    fflush(stdout);
}

int main(void)
{
    static int items[N2], doubled[N2];
    for (int i = 0; i < N2; i++)
        items[i] = i;
    int ms = 5; /* the job's argument: copied to the workers with the call */
    sk_pool_job job = {.fn = slow_double,
                       .arg = &ms,
                       .arg_size = sizeof ms,
                       .item_size = sizeof(int),
                       .result_size = sizeof(int)};
    bool tty = isatty(STDOUT_FILENO);
    int ok = 1;

    /* ---- 1. our own bar */
    printf("1. unordered_imap, the program draws the bar:\n");
    sk_pool_config cfg = {.workers = WORKERS};
    sk_pool *pool;
    int rc = sk_pool_create(&pool, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }
    sk_pool_call *call;
    rc = sk_pool_unordered_imap(pool, &job, items, N, &call);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_unordered_imap: %s\n", sk_strerror(rc));
        sk_pool_release(pool);
        return 1;
    }
    long received = 0, first_index = -1;
    for (;;) {
        size_t index;
        int value;
        rc = sk_pool_next(call, 0.05, &index, &value);
        if (rc == SK_OK) {
            received++;
            ok &= value == 2 * items[index];
            if (first_index < 0)
                first_index = (long)index;
        } else if (rc == SK_EPROCESS) {
            received++;
            ok = 0;
        } else if (rc != SK_ETIMEDOUT) {
            break; /* SK_ECLOSED: every result was yielded */
        }
        sk_pool_counters c;
        sk_pool_counters_of(pool, &c);
        draw_bar(&c, N, tty);
    }
    if (tty)
        printf("\n");
    printf("received %ld results (the first one ready was item %ld)\n", received, first_index);
    ok &= rc == SK_ECLOSED && received == N;
    sk_pool_call_free(call);
    sk_pool_release(pool);

    /* ---- 2. the pool reports, the program shows */
    printf("2. sk_pool_map with a progress callback:\n");
    double next_line = 0;
    sk_pool_config reporting = {
        .workers = WORKERS, .progress = report_progress, .progress_ctx = &next_line};
    rc = sk_pool_create(&pool, &reporting);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }
    ms = 3; /* the next call copies the new value */
    rc = sk_pool_map(pool, &job, items, N2, doubled, NULL);
    ok &= rc == SK_OK;
    sk_pool_release(pool);

    /* ---- 3. the pool's bar */
    printf("3. sk_pool_map, the pool draws the bar on stderr%s:\n",
           isatty(STDERR_FILENO) ? "" : " (not here: stderr is not a terminal)");
    sk_pool_config with_bar = {.workers = WORKERS, .progress_bar = true};
    rc = sk_pool_create(&pool, &with_bar);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }
    ms = 3; /* the next call copies the new value */
    rc = sk_pool_map(pool, &job, items, N2, doubled, NULL);
    printf("sk_pool_map of %d items: %s\n", N2, sk_strerror(rc));
    ok &= rc == SK_OK;
    for (int i = 0; i < N2; i++)
        ok &= doubled[i] == 2 * i;
    sk_pool_release(pool);
    return ok ? 0 : 1;
}
