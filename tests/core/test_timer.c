/* SPDX-License-Identifier: MIT */
/*
 * Timers: exact statistics on small sets, the switch to the histogram at
 * SK_TIMER_EXACT samples, accuracy on 10 million samples, bounded memory and
 * no allocation on the recording path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timer.h"

/* ------------------------------------------------------------ helpers */

/* A malloc that counts its calls, to show that sk_timer_add never allocates.
 * It forwards to glibc's own allocator (glibc supports replacing malloc in the
 * executable), and is left out under sanitizers and valgrind-style tools that
 * replace malloc themselves; define SK_TEST_NO_MALLOC_COUNTER to leave it out
 * by hand. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__GLIBC__) && !defined(SK_TEST_NO_MALLOC_COUNTER) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) && !__has_feature(address_sanitizer) &&                          \
    !__has_feature(thread_sanitizer) && !__has_feature(memory_sanitizer)
#define HAVE_MALLOC_COUNTER 1
extern void *__libc_malloc(size_t size);
static volatile long malloc_calls;
void *malloc(size_t size)
{
    malloc_calls++;
    return __libc_malloc(size);
}
#endif

/* splitmix64: a fixed-seed generator, so every run sees the same samples. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed;
}

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1), never 0 so that log() is safe. */
static double rng_unit(void)
{
    return ((double)(rng_next() >> 11) + 0.5) * 0x1.0p-53;
}

/* Log-normal durations in ns: median exp(mu), spread sigma (Box-Muller). */
static int64_t rng_lognormal_ns(double mu, double sigma)
{
    double z = sqrt(-2.0 * log(rng_unit())) * cos(2.0 * 3.14159265358979323846 * rng_unit());
    return (int64_t)llround(exp(mu + sigma * z));
}

static struct sk_timer *new_timer(void)
{
    struct sk_timer *t = calloc(1, sizeof *t);
    assert_non_null(t);
    sk_timer_init(t);
    return t;
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile(sorted, pct) with the default 'linear' method, in ns. */
static double true_percentile_ns(const int64_t *sorted, size_t n, double pct)
{
    double rank = pct / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    double frac = rank - (double)lo;
    if (lo + 1 >= n)
        return (double)sorted[n - 1];
    return (double)sorted[lo] + frac * (double)(sorted[lo + 1] - sorted[lo]);
}

static double relative_error(double actual, double expected)
{
    if (expected == 0.0)
        return actual == 0.0 ? 0.0 : INFINITY;
    return fabs(actual - expected) / fabs(expected);
}

#define assert_close(actual, expected, rel)                                                        \
    do {                                                                                           \
        double actual_ = (actual), expected_ = (expected);                                         \
        if (!(relative_error(actual_, expected_) <= (rel)))                                        \
            fail_msg("%s = %.17g, expected %.17g (relative tolerance %g)", #actual, actual_,       \
                     expected_, (double)(rel));                                                    \
    } while (0)

#define assert_nan(x) assert_true(isnan(x))

/* Compares every percentile in pcts to the truth; returns the worst error. */
static double worst_percentile_error(const struct sk_timer *t, const int64_t *sorted, size_t n,
                                     const double *pcts, size_t npcts)
{
    double worst = 0.0;
    for (size_t i = 0; i < npcts; i++) {
        double truth = true_percentile_ns(sorted, n, pcts[i]) / 1e9;
        double err = relative_error(sk_timer_percentile(t, pcts[i]), truth);
        if (err > worst)
            worst = err;
    }
    return worst;
}

static const double many_pcts[] = {0, 0.1, 1, 5, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.9, 100};
#define N_MANY_PCTS (sizeof many_pcts / sizeof many_pcts[0])

/* -------------------------------------------------------------- tests */

static void test_empty_timer(void **state)
{
    (void)state;
    struct sk_timer *t = malloc(sizeof *t);
    assert_non_null(t);
    memset(t, 0xab, sizeof *t); /* init must not depend on what was there */
    sk_timer_init(t);

    assert_int_equal(sk_timer_count(t), 0);
    assert_cmp(sk_timer_total(t), ==, 0.0);
    assert_nan(sk_timer_mean(t));
    assert_nan(sk_timer_median(t));
    assert_nan(sk_timer_min(t));
    assert_nan(sk_timer_max(t));
    assert_nan(sk_timer_stdev(t));
    assert_nan(sk_timer_variance(t));
    assert_nan(sk_timer_last(t));
    assert_nan(sk_timer_percentile(t, 0));
    assert_nan(sk_timer_percentile(t, 50));
    assert_nan(sk_timer_percentile(t, 100));
    free(t);
}

static void test_zero_filled_memory_is_an_empty_timer(void **state)
{
    (void)state;
    struct sk_timer *t = calloc(1, sizeof *t); /* as a fresh anonymous mapping */
    assert_non_null(t);
    assert_int_equal(sk_timer_count(t), 0);
    assert_cmp(sk_timer_total(t), ==, 0.0);
    assert_nan(sk_timer_mean(t));

    sk_timer_add(t, 42); /* and usable without sk_timer_init */
    assert_int_equal(sk_timer_count(t), 1);
    assert_close(sk_timer_min(t), 42e-9, 1e-15);
    assert_close(sk_timer_max(t), 42e-9, 1e-15);
    free(t);
}

static void test_null_timer(void **state)
{
    (void)state;
    sk_timer_init(NULL);
    assert_int_equal(sk_timer_count(NULL), 0);
    assert_nan(sk_timer_total(NULL));
    assert_nan(sk_timer_mean(NULL));
    assert_nan(sk_timer_median(NULL));
    assert_nan(sk_timer_min(NULL));
    assert_nan(sk_timer_max(NULL));
    assert_nan(sk_timer_stdev(NULL));
    assert_nan(sk_timer_variance(NULL));
    assert_nan(sk_timer_last(NULL));
    assert_nan(sk_timer_percentile(NULL, 50));
}

static void test_one_sample(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    sk_timer_add(t, 1500);

    assert_int_equal(sk_timer_count(t), 1);
    assert_close(sk_timer_total(t), 1.5e-6, 1e-15);
    assert_close(sk_timer_mean(t), 1.5e-6, 1e-15);
    assert_close(sk_timer_median(t), 1.5e-6, 1e-15);
    assert_close(sk_timer_min(t), 1.5e-6, 1e-15);
    assert_close(sk_timer_max(t), 1.5e-6, 1e-15);
    assert_close(sk_timer_last(t), 1.5e-6, 1e-15);
    assert_close(sk_timer_percentile(t, 0), 1.5e-6, 1e-15);
    assert_close(sk_timer_percentile(t, 100), 1.5e-6, 1e-15);
    assert_nan(sk_timer_stdev(t));
    assert_nan(sk_timer_variance(t));
    free(t);
}

/* 1..10 ns in shuffled order; numpy.percentile(range(1, 11), [0, 25, 50, 90,
 * 100]) = [1, 3.25, 5.5, 9.1, 10]; statistics.variance = 55/6. */
static void test_one_to_ten(void **state)
{
    (void)state;
    static const int64_t shuffled[] = {7, 3, 10, 1, 5, 9, 2, 8, 4, 6};
    struct sk_timer *t = new_timer();
    for (size_t i = 0; i < 10; i++)
        sk_timer_add(t, shuffled[i]);

    assert_int_equal(sk_timer_count(t), 10);
    assert_close(sk_timer_total(t), 55e-9, 1e-15);
    assert_close(sk_timer_mean(t), 5.5e-9, 1e-15);
    assert_close(sk_timer_median(t), 5.5e-9, 1e-15);
    assert_close(sk_timer_min(t), 1e-9, 1e-15);
    assert_close(sk_timer_max(t), 10e-9, 1e-15);
    assert_close(sk_timer_last(t), 6e-9, 1e-15);
    assert_close(sk_timer_variance(t), 55.0 / 6.0 * 1e-18, 1e-12);
    assert_close(sk_timer_stdev(t), sqrt(55.0 / 6.0) * 1e-9, 1e-12);
    assert_close(sk_timer_percentile(t, 0), 1e-9, 1e-15);
    assert_close(sk_timer_percentile(t, 25), 3.25e-9, 1e-12);
    assert_close(sk_timer_percentile(t, 50), 5.5e-9, 1e-12);
    assert_close(sk_timer_percentile(t, 90), 9.1e-9, 1e-12);
    assert_close(sk_timer_percentile(t, 100), 10e-9, 1e-15);
    free(t);
}

/* Odd counts and ties: statistics.median([5, 1, 3]) = 3,
 * numpy.percentile([5, 1, 3], 25) = 2; numpy.percentile([2, 7, 2, 2], 75)
 * = 3.25 and the median of [2, 7, 2, 2] is 2. */
static void test_odd_count_and_ties(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    sk_timer_add(t, 5);
    sk_timer_add(t, 1);
    sk_timer_add(t, 3);
    assert_close(sk_timer_median(t), 3e-9, 1e-15);
    assert_close(sk_timer_percentile(t, 25), 2e-9, 1e-12);
    assert_close(sk_timer_variance(t), 4e-18, 1e-12);

    sk_timer_init(t);
    sk_timer_add(t, 2);
    sk_timer_add(t, 7);
    sk_timer_add(t, 2);
    sk_timer_add(t, 2);
    assert_close(sk_timer_median(t), 2e-9, 1e-15);
    assert_close(sk_timer_percentile(t, 75), 3.25e-9, 1e-12);
    free(t);
}

static void test_percentile_out_of_range(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    for (int64_t i = 1; i <= 10; i++)
        sk_timer_add(t, i);
    assert_nan(sk_timer_percentile(t, -0.001));
    assert_nan(sk_timer_percentile(t, 100.001));
    assert_nan(sk_timer_percentile(t, NAN));
    assert_nan(sk_timer_percentile(t, INFINITY));
    assert_nan(sk_timer_percentile(t, -INFINITY));
    assert_close(sk_timer_percentile(t, 0), 1e-9, 1e-15);
    assert_close(sk_timer_percentile(t, 100), 10e-9, 1e-15);
    free(t);
}

/* Sorted, reversed, constant and two-valued inputs: the shapes that break a
 * careless quickselect. */
static void test_exact_percentiles_on_awkward_orders(void **state)
{
    (void)state;
    enum { N = SK_TIMER_EXACT };
    int64_t *samples = malloc(N * sizeof *samples);
    int64_t *sorted = malloc(N * sizeof *sorted);
    assert_non_null(samples);
    assert_non_null(sorted);
    struct sk_timer *t = new_timer();

    for (int shape = 0; shape < 4; shape++) {
        sk_timer_init(t);
        for (size_t i = 0; i < N; i++) {
            switch (shape) {
            case 0:
                samples[i] = (int64_t)i * 10;
                break;
            case 1:
                samples[i] = (int64_t)(N - i) * 10;
                break;
            case 2:
                samples[i] = 777;
                break;
            default:
                samples[i] = (i % 3 == 0) ? 100 : 5;
                break;
            }
            sk_timer_add(t, samples[i]);
        }
        memcpy(sorted, samples, N * sizeof *sorted);
        qsort(sorted, N, sizeof *sorted, compare_i64);
        assert_cmp(worst_percentile_error(t, sorted, N, many_pcts, N_MANY_PCTS), <, 1e-12);
    }
    free(t);
    free(sorted);
    free(samples);
}

/* SK_TIMER_EXACT samples: exact. One more: the histogram takes over, and
 * every percentile is still within 1% (the design aims at 0.4%). */
static void test_exactness_boundary(void **state)
{
    (void)state;
    enum { N = SK_TIMER_EXACT + 1 };
    int64_t *samples = malloc(N * sizeof *samples);
    int64_t *sorted = malloc(N * sizeof *sorted);
    assert_non_null(samples);
    assert_non_null(sorted);
    struct sk_timer *t = new_timer();
    rng_seed(1);

    int64_t total = 0;
    for (size_t i = 0; i < N; i++) {
        samples[i] = rng_lognormal_ns(log(2e4), 1.0);
        total += samples[i];
    }
    for (size_t i = 0; i < N - 1; i++)
        sk_timer_add(t, samples[i]);
    memcpy(sorted, samples, (N - 1) * sizeof *sorted);
    qsort(sorted, N - 1, sizeof *sorted, compare_i64);
    assert_int_equal(sk_timer_count(t), SK_TIMER_EXACT);
    double exact_error = worst_percentile_error(t, sorted, N - 1, many_pcts, N_MANY_PCTS);
    assert_cmp(exact_error, <, 1e-12);

    sk_timer_add(t, samples[N - 1]);
    memcpy(sorted, samples, N * sizeof *sorted);
    qsort(sorted, N, sizeof *sorted, compare_i64);
    assert_int_equal(sk_timer_count(t), N);
    double hist_error = worst_percentile_error(t, sorted, N, many_pcts, N_MANY_PCTS);
    print_message("SK_TIMER_EXACT + 1 samples: worst percentile error %.4f%%\n", hist_error * 100);
    assert_cmp(hist_error, <=, 0.01);
    assert_close(sk_timer_total(t), (double)total / 1e9, 1e-15);
    assert_close(sk_timer_min(t), (double)sorted[0] / 1e9, 1e-15);
    assert_close(sk_timer_max(t), (double)sorted[N - 1] / 1e9, 1e-15);
    assert_close(sk_timer_last(t), (double)samples[N - 1] / 1e9, 1e-15);

    free(t);
    free(sorted);
    free(samples);
}

/* 10 million log-normal durations (median 100 us, spanning about 20 ns to
 * 0.5 s): quantiles within 1% of the truth, everything else exact or close
 * to the last bits. */
static void test_ten_million_lognormal(void **state)
{
    (void)state;
    skt_bound(120); /* about ten times what it takes on an idle machine */
    enum { N = 10 * 1000 * 1000 };
    int64_t *samples = malloc((size_t)N * sizeof *samples);
    assert_non_null(samples);
    struct sk_timer *t = new_timer();
    rng_seed(20240601);

    int64_t total = 0;
    for (size_t i = 0; i < N; i++) {
        samples[i] = rng_lognormal_ns(log(1e5), 1.5);
        total += samples[i];
        sk_timer_add(t, samples[i]);
    }
    int64_t last = samples[N - 1];
    qsort(samples, N, sizeof *samples, compare_i64);

    static const double checked[] = {1, 10, 25, 50, 75, 90, 99, 99.9};
    double worst = 0.0;
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
        double truth = true_percentile_ns(samples, N, checked[i]) / 1e9;
        double got = sk_timer_percentile(t, checked[i]);
        double err = relative_error(got, truth);
        print_message("  p%-5g true %.6e s  timer %.6e s  error %.4f%%\n", checked[i], truth, got,
                      err * 100);
        assert_cmp(err, <=, 0.01);
        if (err > worst)
            worst = err;
    }
    print_message("10M log-normal samples: worst percentile error %.4f%%\n", worst * 100);
    assert_close(sk_timer_median(t), sk_timer_percentile(t, 50), 0);

    /* Two-pass variance in long double as the reference for Welford. */
    long double mean = (long double)total / N, m2 = 0;
    for (size_t i = 0; i < N; i++) {
        long double d = (long double)samples[i] - mean;
        m2 += d * d;
    }
    assert_int_equal(sk_timer_count(t), N);
    assert_close(sk_timer_total(t), (double)total / 1e9, 1e-15);
    assert_close(sk_timer_mean(t), (double)(mean / 1e9L), 1e-14);
    assert_close(sk_timer_variance(t), (double)(m2 / (N - 1) / 1e18L), 1e-9);
    assert_close(sk_timer_min(t), (double)samples[0] / 1e9, 1e-15);
    assert_close(sk_timer_max(t), (double)samples[N - 1] / 1e9, 1e-15);
    assert_close(sk_timer_last(t), (double)last / 1e9, 1e-15);
    assert_close(sk_timer_percentile(t, 0), (double)samples[0] / 1e9, 1e-15);
    assert_close(sk_timer_percentile(t, 100), (double)samples[N - 1] / 1e9, 1e-15);

    free(t);
    free(samples);
}

/* The timer is one fixed block: nothing grows with the count, and recording
 * (including the switch to the histogram) never calls malloc. */
static void test_bounded_memory_and_no_allocation(void **state)
{
    (void)state;
    print_message("sizeof(struct sk_timer) = %zu bytes\n", sizeof(struct sk_timer));
    assert_cmp(sizeof(struct sk_timer), <, 80 * 1024);

#ifdef HAVE_MALLOC_COUNTER
    struct sk_timer *t = new_timer();

    /* First make sure the counter sees allocations (the exact-phase getters
     * make one): valgrind, for one, replaces even this malloc. */
    sk_timer_add(t, 1);
    long before = malloc_calls;
    (void)sk_timer_median(t);
    if (malloc_calls == before) {
        print_message("malloc is replaced by a tool: cannot count allocations\n");
        free(t);
        skip();
    }

    sk_timer_init(t);
    before = malloc_calls;
    for (int64_t i = 0; i < 10 * 1000 * 1000; i++)
        sk_timer_add(t, (i * 7919) % 1000003);
    long after = malloc_calls;
    assert_int_equal(after - before, 0);
    assert_int_equal(sk_timer_count(t), 10 * 1000 * 1000);
    free(t);
#else
    skip();
#endif
}

/* 1e6 seconds and 0 ns, in both phases; beyond the histogram's range the
 * exact fields stay exact and quantiles stay within [min, max]. */
static void test_large_values_and_zero(void **state)
{
    (void)state;
    const int64_t big = 1000000LL * 1000000000LL; /* 1e6 s */
    struct sk_timer *t = new_timer();

    sk_timer_add(t, 0);
    sk_timer_add(t, big);
    assert_cmp(sk_timer_min(t), ==, 0.0);
    assert_close(sk_timer_max(t), 1e6, 1e-15);
    assert_close(sk_timer_total(t), 1e6, 1e-15);
    assert_close(sk_timer_median(t), 5e5, 1e-15);

    /* After the switch: a quarter zeros, three quarters 1e6 s. */
    sk_timer_init(t);
    for (int i = 0; i < 2 * SK_TIMER_EXACT; i++)
        sk_timer_add(t, i % 4 == 0 ? 0 : big);
    assert_cmp(sk_timer_percentile(t, 0), ==, 0.0);
    assert_cmp(sk_timer_percentile(t, 10), ==, 0.0);
    assert_close(sk_timer_median(t), 1e6, 0.005);
    assert_close(sk_timer_percentile(t, 90), 1e6, 0.005);
    assert_close(sk_timer_percentile(t, 100), 1e6, 1e-15);
    assert_close(sk_timer_total(t), 1e6 * 1.5 * SK_TIMER_EXACT, 1e-15);

    /* All zeros after the switch. */
    sk_timer_init(t);
    for (int i = 0; i < 3 * SK_TIMER_EXACT; i++)
        sk_timer_add(t, 0);
    assert_cmp(sk_timer_median(t), ==, 0.0);
    assert_cmp(sk_timer_percentile(t, 99), ==, 0.0);
    assert_cmp(sk_timer_mean(t), ==, 0.0);
    assert_cmp(sk_timer_variance(t), ==, 0.0);

    /* 2e6 s, past the top bucket (2^50 ns = 1.13e6 s): the estimate is
     * clamped into [min, max], so exact here. */
    sk_timer_init(t);
    for (int i = 0; i < SK_TIMER_EXACT + 100; i++)
        sk_timer_add(t, 2 * big);
    assert_close(sk_timer_median(t), 2e6, 1e-15);
    assert_close(sk_timer_percentile(t, 99), 2e6, 1e-15);
    assert_close(sk_timer_max(t), 2e6, 1e-15);
    assert_close(sk_timer_total(t), 2e6 * (SK_TIMER_EXACT + 100), 1e-15);
    free(t);
}

/* Absurd durations saturate the total instead of overflowing; the mean falls
 * back to Welford's and max stays exact. */
static void test_total_saturates(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    sk_timer_add(t, INT64_MAX);
    sk_timer_add(t, INT64_MAX);
    sk_timer_add(t, 5);
    assert_int_equal(sk_timer_count(t), 3);
    assert_close(sk_timer_total(t), (double)INT64_MAX / 1e9, 1e-15);
    assert_close(sk_timer_mean(t), (double)INT64_MAX * 2 / 3 / 1e9, 1e-12);
    assert_close(sk_timer_max(t), (double)INT64_MAX / 1e9, 1e-15);
    assert_close(sk_timer_min(t), 5e-9, 1e-15);
    free(t);
}

/* count/total/min/max/last come from exact fields, not from the histogram. */
static void test_exact_fields_after_switch(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    int64_t total = 0;
    for (int64_t i = 0; i < 3 * SK_TIMER_EXACT; i++) {
        int64_t ns = 1000003 + (i * 7919) % 1000;
        total += ns;
        sk_timer_add(t, ns);
    }
    sk_timer_add(t, 999999937); /* a new max, after the switch */
    sk_timer_add(t, 17);        /* a new min */
    sk_timer_add(t, 123457);    /* the last one */
    total += 999999937 + 17 + 123457;

    assert_int_equal(sk_timer_count(t), 3 * SK_TIMER_EXACT + 3);
    assert_cmp(sk_timer_total(t), ==, (double)total / 1e9);
    assert_cmp(sk_timer_min(t), ==, 17 / 1e9);
    assert_cmp(sk_timer_max(t), ==, 999999937 / 1e9);
    assert_cmp(sk_timer_last(t), ==, 123457 / 1e9);
    assert_cmp(sk_timer_percentile(t, 0), ==, 17 / 1e9);
    assert_cmp(sk_timer_percentile(t, 100), ==, 999999937 / 1e9);
    free(t);
}

/* Durations of about 1 s that differ by nanoseconds: a naive sum of squares
 * would lose every digit, Welford keeps them. Samples 1e9 + i, i = 0..n-1:
 * sample variance n(n+1)/12 ns^2. */
static void test_welford_with_large_offset(void **state)
{
    (void)state;
    enum { N = 10000 };
    struct sk_timer *t = new_timer();
    for (int64_t i = 0; i < N; i++)
        sk_timer_add(t, 1000000000 + i);
    double expected_ns2 = (double)N * (N + 1) / 12.0;
    assert_close(sk_timer_variance(t), expected_ns2 * 1e-18, 1e-9);
    assert_close(sk_timer_stdev(t), sqrt(expected_ns2) * 1e-9, 1e-9);
    assert_close(sk_timer_mean(t), (1e9 + (N - 1) / 2.0) / 1e9, 1e-15);

    /* The same spread around 1e5 seconds. */
    sk_timer_init(t);
    for (int64_t i = 0; i < N; i++)
        sk_timer_add(t, 100000LL * 1000000000LL + i);
    assert_close(sk_timer_variance(t), expected_ns2 * 1e-18, 1e-6);
    free(t);
}

static void test_negative_duration_counts_as_zero(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    sk_timer_add(t, -5);
    sk_timer_add(t, 10);
    assert_cmp(sk_timer_min(t), ==, 0.0);
    assert_cmp(sk_timer_total(t), ==, 10 / 1e9);
    free(t);
}

/* A used timer, past the switch, is empty again after sk_timer_init and
 * exact again for its next samples. */
static void test_init_resets_a_used_timer(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    for (int i = 0; i < 2 * SK_TIMER_EXACT; i++)
        sk_timer_add(t, 1000000 + i);
    sk_timer_init(t);
    assert_int_equal(sk_timer_count(t), 0);
    assert_nan(sk_timer_median(t));
    sk_timer_add(t, 3);
    sk_timer_add(t, 1);
    sk_timer_add(t, 2);
    assert_int_equal(sk_timer_count(t), 3);
    assert_cmp(sk_timer_median(t), ==, 2 / 1e9);
    assert_cmp(sk_timer_max(t), ==, 3 / 1e9);
    assert_close(sk_timer_variance(t), 1e-18, 1e-12);
    free(t);
}

/* The parent reads a timer it must not change: every getter leaves the
 * bytes as they were, in both phases. */
static void test_getters_do_not_modify(void **state)
{
    (void)state;
    struct sk_timer *t = new_timer();
    struct sk_timer *copy = malloc(sizeof *copy);
    assert_non_null(copy);
    rng_seed(7);
    for (int phase = 0; phase < 2; phase++) {
        int n = phase == 0 ? 1000 : 3 * SK_TIMER_EXACT;
        sk_timer_init(t);
        for (int i = 0; i < n; i++)
            sk_timer_add(t, rng_lognormal_ns(log(1e4), 1.0));
        memcpy(copy, t, sizeof *t);
        const sk_timer *ro = t;
        (void)sk_timer_count(ro);
        (void)sk_timer_total(ro);
        (void)sk_timer_mean(ro);
        (void)sk_timer_median(ro);
        (void)sk_timer_min(ro);
        (void)sk_timer_max(ro);
        (void)sk_timer_stdev(ro);
        (void)sk_timer_variance(ro);
        (void)sk_timer_last(ro);
        for (size_t i = 0; i < N_MANY_PCTS; i++)
            (void)sk_timer_percentile(ro, many_pcts[i]);
        assert_memory_equal(copy, t, sizeof *t);
    }
    free(copy);
    free(t);
}

/* Not a pass/fail test: prints what one sk_timer_add costs, for the record. */
static void test_add_cost_is_printed(void **state)
{
    (void)state;
    enum { N = 10 * 1000 * 1000, POOL = 4096 };
    static int64_t pool[POOL];
    rng_seed(99);
    for (size_t i = 0; i < POOL; i++)
        pool[i] = rng_lognormal_ns(log(1e3), 1.0);
    struct sk_timer *t = new_timer();

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (size_t i = 0; i < N; i++)
        sk_timer_add(t, pool[i & (POOL - 1)]);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
    print_message("sk_timer_add: %.2f ns per call over %d calls\n", ns / N, N);
    assert_int_equal(sk_timer_count(t), N);
    free(t);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_empty_timer),
        SKT_TEST(test_zero_filled_memory_is_an_empty_timer),
        SKT_TEST(test_null_timer),
        SKT_TEST(test_one_sample),
        SKT_TEST(test_one_to_ten),
        SKT_TEST(test_odd_count_and_ties),
        SKT_TEST(test_percentile_out_of_range),
        SKT_TEST(test_exact_percentiles_on_awkward_orders),
        SKT_TEST(test_exactness_boundary),
        SKT_TEST(test_ten_million_lognormal),
        SKT_TEST(test_bounded_memory_and_no_allocation),
        SKT_TEST(test_large_values_and_zero),
        SKT_TEST(test_total_saturates),
        SKT_TEST(test_exact_fields_after_switch),
        SKT_TEST(test_welford_with_large_offset),
        SKT_TEST(test_negative_duration_counts_as_zero),
        SKT_TEST(test_init_resets_a_used_timer),
        SKT_TEST(test_getters_do_not_modify),
        SKT_TEST(test_add_cost_is_printed),
    };
    return skt_run(argc, argv, tests);
}
