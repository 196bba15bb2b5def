/* SPDX-License-Identifier: MIT */
/*
 * demo: a tour of skproc in about a second (`scons demo` runs it).
 *
 * Six processes run at the same time:
 *
 *   - four workers count the primes below LIMIT, each taking every fourth
 *     chunk of the range, one chunk per run; their results are added up in
 *     the parent and checked against a sieve;
 *   - an open-ended Monte Carlo estimate of pi (no run limit) that the parent
 *     stops with sk_stop once the workers are done; onfinish and result
 *     still run, so it publishes its estimate;
 *   - a process whose run hook hangs on run 3: the supervisor ends it at the
 *     run timeout, restarts it once (lives = 2), and reports the second
 *     timeout as a ProcessTimeoutError.
 *
 * The parent then prints the results, the formatted error and the timers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* usleep, pause */
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

#define LIMIT 6000000 /* count the primes below this */
#define CHUNK 50000   /* numbers per run */
#define WORKERS 4

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------- prime counter */

typedef struct {
    sk_process base;
    int first;     /* first chunk of this worker */
    int stride;    /* chunks between two of ours */
    int64_t found; /* primes found so far */
} primes;

#define PRIMES(p) SK_CONTAINER_OF(p, primes, base)

static bool is_prime(int64_t n)
{
    if (n < 2)
        return false;
    if (n % 2 == 0)
        return n == 2;
    for (int64_t d = 3; d * d <= n; d += 2)
        if (n % d == 0)
            return false;
    return true;
}

/* One chunk per run; the run index says which one. */
static int primes_run(sk_process *self)
{
    primes *w = PRIMES(self);
    int64_t chunk = w->first + (int64_t)w->stride * sk_current_run(self);
    int64_t lo = chunk * CHUNK, hi = lo + CHUNK < LIMIT ? lo + CHUNK : LIMIT;
    for (int64_t n = lo; n < hi; n++)
        w->found += is_prime(n);
    return 0;
}

static int primes_result(sk_process *self)
{
    return sk_return(self, "I", &PRIMES(self)->found);
}

static const sk_class primes_class = {
    .name = "primes",
    .run = primes_run,
    .result = primes_result,
};

/* ------------------------------------------------------ pi by sampling */

typedef struct {
    sk_process base;
    uint64_t state;
    int64_t inside, total;
    double estimate;
} pi;

#define PI(p) SK_CONTAINER_OF(p, pi, base)

static double uniform(uint64_t *s) /* xorshift64*, in [0, 1) */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int pi_run(sk_process *self)
{
    pi *p = PI(self);
    for (int i = 0; i < 10000; i++) {
        double x = uniform(&p->state), y = uniform(&p->state);
        p->inside += x * x + y * y < 1.0;
    }
    p->total += 10000;
    return 0;
}

static int pi_onfinish(sk_process *self)
{
    pi *p = PI(self);
    p->estimate = 4.0 * (double)p->inside / (double)p->total;
    return 0;
}

static int pi_result(sk_process *self)
{
    return sk_return(self, "fI", &PI(self)->estimate, &PI(self)->total);
}

static const sk_class pi_class = {
    .name = "pi",
    .run = pi_run,
    .onfinish = pi_onfinish,
    .result = pi_result,
};

/* ------------------------------------------------------- a stuck fetch */

typedef struct {
    sk_process base;
} fetch;

static int fetch_run(sk_process *self)
{
    if (sk_current_run(self) == 3)
        for (;;) /* waits for an answer that never comes */
            pause();
    usleep(2000);
    return 0;
}

static const sk_class fetch_class = {
    .name = "fetch",
    .run = fetch_run,
};

/* ---------------------------------------------------------------- main */

static int64_t sieve_count(int limit)
{
    char *composite = calloc((size_t)limit, 1);
    if (composite == NULL)
        return -1;
    int64_t count = 0;
    for (int64_t i = 2; i < limit; i++) {
        if (composite[i])
            continue;
        count++;
        for (int64_t j = i * i; j < limit; j += i)
            composite[j] = 1;
    }
    free(composite);
    return count;
}

static void timer_row(const char *label, const sk_timer *t)
{
    if (t == NULL)
        return;
    printf("   %-14s %6ld %9.1f %9.1f %9.1f %9.1f\n", label, sk_timer_count(t),
           sk_timer_mean(t) * 1e6, sk_timer_median(t) * 1e6, sk_timer_percentile(t, 95) * 1e6,
           sk_timer_max(t) * 1e6);
}

int main(void)
{
    int failures = 0;
    double t0 = now();
    int chunks = (LIMIT + CHUNK - 1) / CHUNK;

    primes workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (primes){.first = i, .stride = WORKERS};
        sk_init(&workers[i].base, &primes_class);
        /* chunks i, i + 4, i + 8, ... below the total */
        workers[i].base.config.runs = (chunks - i + WORKERS - 1) / WORKERS;
    }
    pi est = {.state = 0x9E3779B97F4A7C15ULL};
    sk_init(&est.base, &pi_class); /* no run limit: runs until stopped */
    fetch stuck = {0};
    sk_init(&stuck.base, &fetch_class);
    stuck.base.config.timeouts.run = 0.05;
    stuck.base.config.lives = 2;

    printf("skproc demo: %d processes started at once\n\n", WORKERS + 2);
    bool started = true;
    for (int i = 0; i < WORKERS; i++)
        started &= sk_start(&workers[i].base) == SK_OK;
    started &= sk_start(&est.base) == SK_OK;
    started &= sk_start(&stuck.base) == SK_OK;
    if (!started) {
        perror("sk_start"); /* the processes already started die with us */
        return 1;
    }

    /* The open-ended process does not end by itself: waiting times out. */
    int rc = sk_wait(&est.base, 0.1);

    /* 1. the prime workers */
    printf("1. %d workers count the primes below %d, %d numbers per run\n", WORKERS, LIMIT, CHUNK);
    printf("   %-6s %5s %8s %14s\n", "worker", "runs", "primes", "run mean (ms)");
    int64_t total = 0;
    for (int i = 0; i < WORKERS; i++) {
        int64_t found = 0;
        if (sk_result(&workers[i].base, "I", &found) != SK_OK)
            failures++;
        total += found;
        printf("   %-6d %5ld %8" PRId64 " %14.3f\n", i, sk_current_run(&workers[i].base), found,
               sk_timer_mean(sk_timer_of(&workers[i].base, SK_RUN)) * 1e3);
    }
    int64_t expected = sieve_count(LIMIT);
    printf("   total %" PRId64 " primes; a sieve in the parent says %" PRId64 ": %s\n\n", total,
           expected, total == expected ? "ok" : "MISMATCH");
    failures += total != expected;

    /* The workers are done: stop the open-ended process. */
    long runs_at_stop = sk_current_run(&est.base); /* live, read from the parent */
    bool alive_at_stop = sk_alive(&est.base);
    sk_stop(&est.base); /* returns at once */

    /* 2. the stopped process */
    double estimate = 0;
    int64_t samples = 0;
    int prc = sk_result(&est.base, "fI", &estimate, &samples);
    printf("2. an open-ended process, stopped by the parent\n");
    printf("   sk_wait(p, 0.1): %s\n", sk_strerror(rc));
    printf("   once the workers were done: alive: %s, current_run: %ld, sk_stop\n",
           alive_at_stop ? "yes" : "no", runs_at_stop);
    printf("   sk_result: %s; pi ~ %.5f from %" PRId64 " samples; current_run: %ld\n\n",
           sk_strerror(prc), estimate, samples, sk_current_run(&est.base));
    failures += prc != SK_OK || rc != SK_ETIMEDOUT || !alive_at_stop;

    /* 3. the failing process */
    int frc = sk_result(&stuck.base, NULL);
    const sk_error *e = sk_error_of(&stuck.base);
    printf("3. a run that hangs on run 3, timeouts.run = 0.05 s, lives = 2\n");
    printf("   sk_result: %s; sk_error_name: %s\n\n", sk_strerror(frc),
           e ? sk_error_name(e->kind) : "(none)");
    if (e != NULL) {
        char report[2048];
        sk_error_format(e, report, sizeof report);
        for (const char *line = report; *line != '\0';) { /* indent every line */
            size_t n = strcspn(line, "\n");
            printf("   |%s%.*s\n", n ? " " : "", (int)n, line);
            line += n + (line[n] == '\n');
        }
    }
    printf("\n");
    failures += frc != SK_EPROCESS || e == NULL || e->kind != SK_TIMEOUT_ERROR;

    /* 4. timers */
    printf("4. timers, in microseconds\n");
    printf("   %-14s %6s %9s %9s %9s %9s\n", "timer", "count", "mean", "median", "p95", "max");
    timer_row("worker 0 run", sk_timer_of(&workers[0].base, SK_RUN));
    timer_row("pi run", sk_timer_of(&est.base, SK_RUN));
    timer_row("pi full_run", sk_timer_of(&est.base, SK_FULL_RUN));
    timer_row("pi onfinish", sk_timer_of(&est.base, SK_ONFINISH));
    timer_row("fetch run", sk_timer_of(&stuck.base, SK_RUN));
    if (sk_timer_count(sk_timer_of(&est.base, SK_RUN)) >
        sk_timer_count(sk_timer_of(&est.base, SK_FULL_RUN)))
        printf("   pi: the stop arrived during a run call; that call is timed, but its\n"
               "   iteration is not counted in current_run or full_run\n");

    for (int i = 0; i < WORKERS; i++)
        sk_release(&workers[i].base);
    sk_release(&est.base);
    sk_release(&stuck.base);

    printf("\n%s in %.2f s\n", failures ? "FAILED" : "done", now() - t0);
    return failures ? 1 : 0;
}
