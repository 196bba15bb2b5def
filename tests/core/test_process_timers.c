/* SPDX-License-Identifier: MIT */
/*
 * The timers of real processes: what each counts (one sample per successful
 * call, SK_FULL_RUN per completed iteration), which exist, their statistics
 * on real sleeps, the NAN rules, and where they can be read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <math.h>

typedef struct {
    sk_process base;
    int64_t count;
    int64_t target;
    useconds_t nap;
} timed;

#define TIMED(p) SK_CONTAINER_OF(p, timed, base)

static int timed_noop(sk_process *self)
{
    (void)self;
    return 0;
}

static int timed_run(sk_process *self)
{
    timed *t = TIMED(self);
    if (t->nap)
        usleep(t->nap);
    if (++t->count == t->target)
        sk_stop(self);
    return 0;
}

/* "IIII": the run, full_run, prerun and onfinish counts as the child sees
 * them from inside its result hook. */
static int timed_result(sk_process *self)
{
    int64_t run = sk_timer_count(sk_timer_of(self, SK_RUN));
    int64_t full = sk_timer_count(sk_timer_of(self, SK_FULL_RUN));
    int64_t pre = sk_timer_count(sk_timer_of(self, SK_PRERUN));
    int64_t fin = sk_timer_count(sk_timer_of(self, SK_ONFINISH));
    return sk_return(self, "IIII", &run, &full, &pre, &fin);
}

/* Every hook but error. */
static const sk_class timed_class = {
    .name = "timed",
    .prerun = timed_noop,
    .run = timed_run,
    .postrun = timed_noop,
    .onfinish = timed_noop,
    .result = timed_result,
};

/* Every hook, error included (it never runs here). */
static const sk_class timed_all_class = {
    .name = "timed_all",
    .prerun = timed_noop,
    .run = timed_run,
    .postrun = timed_noop,
    .onfinish = timed_noop,
    .result = timed_result,
    .error = timed_noop,
};

static const sk_class run_only_class = {.name = "run_only", .run = timed_run};

static timed *timed_start(const sk_class *cls, long runs, int64_t target, useconds_t nap)
{
    timed *t = skt_new(timed);
    assert_rc(sk_init(&t->base, cls), SK_OK);
    t->base.config.runs = runs;
    t->target = target;
    t->nap = nap;
    assert_rc(sk_start(&t->base), SK_OK);
    return t;
}

static long count_of(timed *t, sk_section s)
{
    const sk_timer *tm = sk_timer_of(&t->base, s);
    assert_non_null(tm);
    return sk_timer_count(tm);
}

/* --------------------------------------------------------------- counts */

static void test_counts_per_hook(void **state)
{
    (void)state;
    timed *t = timed_start(&timed_class, 5, 0, 200);
    assert_rc(sk_wait(&t->base, 10.0), SK_OK);
    assert_no_error(&t->base);
    assert_int_equal(count_of(t, SK_PRERUN), 5);
    assert_int_equal(count_of(t, SK_RUN), 5);
    assert_int_equal(count_of(t, SK_POSTRUN), 5);
    assert_int_equal(count_of(t, SK_FULL_RUN), 5);
    assert_int_equal(count_of(t, SK_ONFINISH), 1);
    assert_int_equal(count_of(t, SK_RESULT), 1);
    assert_null(sk_timer_of(&t->base, SK_ERROR)); /* no error hook */

    /* A full run is prerun + run + postrun of the same iteration. */
    double pre = sk_timer_total(sk_timer_of(&t->base, SK_PRERUN));
    double run = sk_timer_total(sk_timer_of(&t->base, SK_RUN));
    double post = sk_timer_total(sk_timer_of(&t->base, SK_POSTRUN));
    double full = sk_timer_total(sk_timer_of(&t->base, SK_FULL_RUN));
    assert_cmp(run, >=, 5 * 200e-6);
    assert_cmp(full, >=, run);
    assert_cmp(fabs(full - (pre + run + post)), <, 1e-6);
    sk_release(&t->base);
}

static void test_counts_seen_inside_the_child(void **state)
{
    (void)state;
    timed *t = timed_start(&timed_class, 7, 0, 0);
    int64_t run = 0, full = 0, pre = 0, fin = 0;
    assert_rc(sk_result(&t->base, "IIII", &run, &full, &pre, &fin), SK_OK);
    assert_int_equal(run, 7);
    assert_int_equal(full, 7);
    assert_int_equal(pre, 7);
    assert_int_equal(fin, 1); /* onfinish is over when result runs */
    sk_release(&t->base);
}

/* A stop inside run: that run is timed, the iteration is not complete. */
static void test_stopped_iteration_not_a_full_run(void **state)
{
    (void)state;
    timed *t = timed_start(&timed_class, 0, 6, 0);
    assert_rc(sk_wait(&t->base, 10.0), SK_OK);
    assert_no_error(&t->base);
    assert_int_equal(count_of(t, SK_PRERUN), 6);
    assert_int_equal(count_of(t, SK_RUN), 6);
    assert_int_equal(count_of(t, SK_POSTRUN), 5);
    assert_int_equal(count_of(t, SK_FULL_RUN), 5);
    assert_int_equal(sk_current_run(&t->base), 5);
    sk_release(&t->base);
}

static void test_undefined_hooks_have_no_timer(void **state)
{
    (void)state;
    timed *t = timed_start(&run_only_class, 3, 0, 0);
    assert_rc(sk_wait(&t->base, 10.0), SK_OK);
    assert_null(sk_timer_of(&t->base, SK_PRERUN));
    assert_null(sk_timer_of(&t->base, SK_POSTRUN));
    assert_null(sk_timer_of(&t->base, SK_ONFINISH));
    assert_null(sk_timer_of(&t->base, SK_RESULT));
    assert_null(sk_timer_of(&t->base, SK_ERROR));
    assert_null(sk_timer_of(&t->base, (sk_section)42));
    assert_int_equal(count_of(t, SK_RUN), 3);
    assert_int_equal(count_of(t, SK_FULL_RUN), 3);
    /* Without prerun and postrun, a full run is just the run. */
    assert_cmp(fabs(sk_timer_total(sk_timer_of(&t->base, SK_FULL_RUN)) -
                    sk_timer_total(sk_timer_of(&t->base, SK_RUN))),
               <, 1e-9);
    sk_release(&t->base);
}

static void test_timers_until_release(void **state)
{
    (void)state;
    timed *t = skt_new(timed);
    assert_rc(sk_init(&t->base, &timed_class), SK_OK);
    assert_null(sk_timer_of(&t->base, SK_RUN)); /* not started */
    t->base.config.runs = 2;
    assert_rc(sk_start(&t->base), SK_OK);
    assert_rc(sk_wait(&t->base, 10.0), SK_OK);
    const sk_timer *run = sk_timer_of(&t->base, SK_RUN);
    assert_non_null(run);
    assert_int_equal(sk_timer_count(run), 2);
    assert_int_equal(sk_timer_count(run), 2); /* reading changes nothing */
    sk_release(&t->base);
    assert_null(sk_timer_of(&t->base, SK_RUN));
}

/* ----------------------------------------------------------- statistics */

static void test_stats_of_sleeping_run(void **state)
{
    (void)state;
    timed *t = timed_start(&timed_class, 10, 0, 2000);
    assert_rc(sk_wait(&t->base, 20.0), SK_OK);
    assert_no_error(&t->base);
    const sk_timer *r = sk_timer_of(&t->base, SK_RUN);
    assert_non_null(r);
    assert_int_equal(sk_timer_count(r), 10);
    double mean = sk_timer_mean(r), median = sk_timer_median(r);
    double mn = sk_timer_min(r), mx = sk_timer_max(r);
    double sd = sk_timer_stdev(r), var = sk_timer_variance(r);
    double total = sk_timer_total(r), last = sk_timer_last(r);
    /* A 2 ms sleep: never shorter, and never absurdly longer. */
    assert_cmp(mn, >=, 0.0019);
    assert_cmp(mean, >=, 0.001);
    assert_cmp(mean, <=, 0.5);
    assert_cmp(median, >=, 0.001);
    assert_cmp(median, <=, 0.5);
    assert_cmp(mn, <=, median);
    assert_cmp(median, <=, mx);
    assert_cmp(mn, <=, mean);
    assert_cmp(mean, <=, mx);
    assert_cmp(mn, <=, last);
    assert_cmp(last, <=, mx);
    assert_true(isfinite(sd));
    assert_cmp(sd, >=, 0);
    assert_true(isfinite(var));
    assert_cmp(var, >=, 0);
    assert_cmp(fabs(sd * sd - var), <=, 1e-9 + 1e-6 * var);
    assert_cmp(fabs(total - mean * 10), <, 1e-9);
    assert_cmp(sk_timer_percentile(r, 0), ==, mn);
    assert_cmp(sk_timer_percentile(r, 100), ==, mx);
    assert_cmp(sk_timer_percentile(r, 50), ==, median);
    assert_true(isnan(sk_timer_percentile(r, 101)));
    assert_true(isnan(sk_timer_percentile(r, -1)));
    sk_release(&t->base);
}

static void test_one_sample(void **state)
{
    (void)state;
    timed *t = timed_start(&timed_class, 3, 0, 0);
    assert_rc(sk_wait(&t->base, 10.0), SK_OK);
    const sk_timer *f = sk_timer_of(&t->base, SK_ONFINISH);
    assert_non_null(f);
    assert_int_equal(sk_timer_count(f), 1);
    double v = sk_timer_total(f);
    assert_true(isfinite(v));
    assert_cmp(v, >=, 0);
    assert_cmp(sk_timer_mean(f), ==, v);
    assert_cmp(sk_timer_min(f), ==, v);
    assert_cmp(sk_timer_max(f), ==, v);
    assert_cmp(sk_timer_median(f), ==, v);
    assert_cmp(sk_timer_last(f), ==, v);
    assert_true(isnan(sk_timer_stdev(f))); /* a sample stdev needs two */
    assert_true(isnan(sk_timer_variance(f)));
    sk_release(&t->base);
}

static void test_no_samples(void **state)
{
    (void)state;
    /* The error hook is defined but never runs. */
    timed *t = timed_start(&timed_all_class, 2, 0, 0);
    assert_rc(sk_wait(&t->base, 10.0), SK_OK);
    assert_no_error(&t->base);
    const sk_timer *e = sk_timer_of(&t->base, SK_ERROR);
    assert_non_null(e);
    assert_int_equal(sk_timer_count(e), 0);
    assert_cmp(sk_timer_total(e), ==, 0.0);
    assert_true(isnan(sk_timer_mean(e)));
    assert_true(isnan(sk_timer_median(e)));
    assert_true(isnan(sk_timer_min(e)));
    assert_true(isnan(sk_timer_max(e)));
    assert_true(isnan(sk_timer_stdev(e)));
    assert_true(isnan(sk_timer_variance(e)));
    assert_true(isnan(sk_timer_last(e)));
    assert_true(isnan(sk_timer_percentile(e, 50)));
    sk_release(&t->base);
}

/* Past the exact store (4096 samples) into the histogram. */
static void test_many_runs(void **state)
{
    (void)state;
    timed *t = timed_start(&timed_class, 10000, 0, 0);
    assert_rc(sk_wait(&t->base, 30.0), SK_OK);
    assert_no_error(&t->base);
    const sk_timer *r = sk_timer_of(&t->base, SK_RUN);
    assert_int_equal(sk_timer_count(r), 10000);
    assert_int_equal(count_of(t, SK_FULL_RUN), 10000);
    double mn = sk_timer_min(r), mx = sk_timer_max(r);
    double p10 = sk_timer_percentile(r, 10), p50 = sk_timer_median(r);
    double p90 = sk_timer_percentile(r, 90);
    assert_true(isfinite(p50));
    assert_cmp(mn, <=, p10 * 1.01);
    assert_cmp(p10, <=, p50);
    assert_cmp(p50, <=, p90);
    assert_cmp(p90, <=, mx * 1.01);
    assert_true(isfinite(sk_timer_stdev(r)));
    assert_cmp(sk_timer_total(r), >, 0);
    sk_release(&t->base);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_counts_per_hook),
        SKT_TEST(test_counts_seen_inside_the_child),
        SKT_TEST(test_stopped_iteration_not_a_full_run),
        SKT_TEST(test_undefined_hooks_have_no_timer),
        SKT_TEST(test_timers_until_release),
        SKT_TEST(test_stats_of_sleeping_run),
        SKT_TEST(test_one_sample),
        SKT_TEST(test_no_samples),
        SKT_TEST(test_many_runs),
    };
    return skt_run(argc, argv, tests);
}
