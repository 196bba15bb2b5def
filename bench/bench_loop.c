/* SPDX-License-Identifier: MIT */
/*
 * Run loop: what one iteration of skproc's timed lifecycle loop costs when
 * the hooks do nothing.
 *
 *   loop.raw          the physical floor of a timed call, in a forked child:
 *                     clock_gettime(CLOCK_MONOTONIC), an empty function
 *                     called through a function pointer, clock_gettime
 *   loop.skproc       a class with only run (returns 0), runs = 10,000,000
 *                     (quick: 1,000,000); the wall time from sk_start to
 *                     sk_wait's return, minus the start cost measured
 *                     separately (the median of runs = 1 processes), divided
 *                     by runs
 *   loop.skproc.timer the run timer's own mean (sk_timer_mean of SK_RUN):
 *                     the time inside the hook as skproc measures it
 *
 * Both loops are timed from the parent the same way: wall time around
 * start-to-reaped, minus the median start-to-reaped of an empty child.
 */
#include "common.h"

#include <skproc.h>

#include <sys/wait.h>
#include <unistd.h>

#define AREA "run loop"

/* ------------------------------------------------------ the raw floor */

__attribute__((noinline)) static void empty_function(void)
{
    __asm__ volatile("" ::: "memory");
}

/* volatile: the call must stay an indirect call the compiler cannot see
 * through, as a hook call is. */
static void (*volatile call_target)(void) = empty_function;

static volatile int64_t raw_sink;

/* Forks a child that does iterations timed calls, and waits for it. */
static void raw_child(long iterations)
{
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int64_t total = 0;
        void (*fn)(void) = call_target;
        for (long i = 0; i < iterations; i++) {
            int64_t t0 = bench_now_ns();
            fn();
            total += bench_now_ns() - t0;
        }
        raw_sink = total;
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        BENCH_CHECK(errno == EINTR, "waitpid");
    BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's exit");
}

/* ----------------------------------------------------------- skproc */

static int empty_run(sk_process *self)
{
    (void)self;
    return 0;
}

static const sk_class empty_class = {.name = "empty", .run = empty_run};

/* Starts a process of runs iterations and waits for it. Returns the wall
 * time in ns; fills *timer_mean_ns with the run timer's mean when asked. */
static int64_t skproc_child(long runs, double *timer_mean_ns)
{
    sk_process p;
    BENCH_CHECK(sk_init(&p, &empty_class) == SK_OK, "sk_init");
    p.config.runs = runs;
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(sk_start(&p) == SK_OK, "sk_start");
    BENCH_CHECK(sk_wait(&p, -1) == SK_OK, "sk_wait");
    int64_t t1 = bench_now_ns();
    if (sk_error_of(&p) != NULL || sk_current_run(&p) != runs) {
        fprintf(stderr, "bench: the loop ended at run %ld of %ld (%s)\n", sk_current_run(&p), runs,
                sk_error_of(&p) ? sk_error_of(&p)->message : "no error");
        exit(1);
    }
    if (timer_mean_ns != NULL) {
        const sk_timer *t = sk_timer_of(&p, SK_RUN);
        BENCH_CHECK(t != NULL && sk_timer_count(t) == runs, "the run timer");
        *timer_mean_ns = sk_timer_mean(t) * 1e9;
    }
    sk_release(&p);
    return t1 - t0;
}

/* ------------------------------------------------------------ measuring */

static void raw_empty(void)
{
    raw_child(1);
}

static void skproc_empty(void)
{
    skproc_child(1, NULL);
}

/* The median wall time of ops empty starts, in ns. */
static double start_cost_ns(void (*op)(void), long ops)
{
    for (int i = 0; i < 3; i++)
        op();
    double *ns = malloc((size_t)ops * sizeof *ns);
    BENCH_CHECK(ns != NULL, "malloc");
    for (long i = 0; i < ops; i++) {
        int64_t t0 = bench_now_ns();
        op();
        ns[i] = (double)(bench_now_ns() - t0);
    }
    struct bench_stats st = bench_summarize(ns, ops);
    free(ns);
    return st.median;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("bench_loop");
    long runs = bench_ops(&o, 10000000, 1000000);
    long start_ops = o.quick ? 30 : 100;
    char extra[160];

    double raw_start = start_cost_ns(raw_empty, start_ops);
    int64_t t0 = bench_now_ns();
    raw_child(runs);
    double raw_wall = (double)(bench_now_ns() - t0);
    double raw_per = (raw_wall - raw_start) / (double)runs;
    snprintf(extra, sizeof extra,
             "\"short\":\"raw timed call\",\"n\":%ld,\"start_ns\":%.0f,\"wall_ns\":%.0f", runs,
             raw_start, raw_wall);
    bench_emit(AREA, "loop.raw", "raw timed call (fn pointer + 2 clock_gettime)", "ns", raw_per,
               NULL, extra);

    double sk_start_ns = start_cost_ns(skproc_empty, start_ops);
    double timer_mean = 0;
    double sk_wall = (double)skproc_child(runs, &timer_mean);
    double sk_per = (sk_wall - sk_start_ns) / (double)runs;
    snprintf(extra, sizeof extra,
             "\"short\":\"skproc loop\",\"baseline\":\"loop.raw\",\"n\":%ld,"
             "\"start_ns\":%.0f,\"wall_ns\":%.0f",
             runs, sk_start_ns, sk_wall);
    bench_emit(AREA, "loop.skproc", "skproc empty run loop, per iteration", "ns", sk_per, NULL,
               extra);
    snprintf(extra, sizeof extra, "\"n\":%ld", runs);
    bench_emit(AREA, "loop.skproc.timer", "skproc run timer mean (time inside the hook)", "ns",
               timer_mean, NULL, extra);
    return 0;
}
