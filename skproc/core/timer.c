/* SPDX-License-Identifier: MIT */
/*
 * Timers: recording (the inline part is in timer.h) and the statistics the
 * public sk_timer_* getters report. See timer.h for the layout and why.
 *
 * The getters never modify the timer: the parent reads it from a shared page
 * after the child exited, possibly through a read-only mapping.
 */
#include "core/timer.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct sk_timer) < 80 * 1024,
               "a timer must stay small: it lives in shared memory");
_Static_assert(SK_TIMER_BUCKETS - 1 ==
                   ((SK_TIMER_TOP_EXP - SK_TIMER_SUB_BITS + 1) << SK_TIMER_SUB_BITS) +
                       (SK_TIMER_SUB - 1),
               "the top bucket is the last sub-bucket of the top octave");

#define NS_PER_S 1e9
#define UNDEFINED ((double)NAN) /* NAN is a float */

void sk_timer_init(struct sk_timer *t)
{
    if (t == NULL)
        return;
    t->count = 0;
    t->total_ns = 0;
    t->min_ns = 0;
    t->max_ns = 0;
    t->last_ns = 0;
    t->mean_ns = 0.0;
    t->m2_ns2 = 0.0;
}

/* Called once, by the sample that does not fit the exact store any more. The
 * histogram is cleared here rather than in sk_timer_init so that timers which
 * never get this far never touch (and never commit) its pages. */
void sk_timer_fold_exact(struct sk_timer *t)
{
    memset(t->hist, 0, sizeof t->hist);
    for (size_t i = 0; i < SK_TIMER_EXACT; i++)
        t->hist[sk_timer_bucket((uint64_t)t->exact[i])]++;
}

void sk_timer_merge(struct sk_timer *dst, const struct sk_timer *src)
{
    uint64_t m = src->count, k = dst->count, n = k + m;
    if (m == 0 || n < k)
        return; /* nothing, or a count that would wrap */
    if (k == 0) {
        dst->min_ns = src->min_ns;
        dst->max_ns = src->max_ns;
    } else {
        dst->min_ns = src->min_ns < dst->min_ns ? src->min_ns : dst->min_ns;
        dst->max_ns = src->max_ns > dst->max_ns ? src->max_ns : dst->max_ns;
    }
    uint64_t total = (uint64_t)dst->total_ns + (uint64_t)src->total_ns;
    dst->total_ns = total > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)total;
    dst->last_ns = src->last_ns;
    /* Chan et al.'s pairwise update of the mean and M2. */
    double delta = src->mean_ns - dst->mean_ns;
    double fk = (double)k, fm = (double)m, fn = (double)n;
    dst->mean_ns += delta * fm / fn;
    dst->m2_ns2 += src->m2_ns2 + delta * delta * fk * fm / fn;
    if (n <= SK_TIMER_EXACT) {
        memcpy(dst->exact + k, src->exact, (size_t)m * sizeof *src->exact);
    } else {
        if (k <= SK_TIMER_EXACT) {
            memset(dst->hist, 0, sizeof dst->hist);
            for (uint64_t i = 0; i < k; i++)
                dst->hist[sk_timer_bucket((uint64_t)dst->exact[i])]++;
        }
        if (m <= SK_TIMER_EXACT)
            for (uint64_t i = 0; i < m; i++)
                dst->hist[sk_timer_bucket((uint64_t)src->exact[i])]++;
        else
            for (size_t b = 0; b < SK_TIMER_BUCKETS; b++)
                dst->hist[b] += src->hist[b];
    }
    dst->count = n;
}

/* ------------------------------------------------------------ getters */

long sk_timer_count(const sk_timer *t)
{
    if (t == NULL)
        return 0;
    return t->count > (uint64_t)LONG_MAX ? LONG_MAX : (long)t->count;
}

/* The total of no durations is 0 seconds, not undefined. Saturated totals
 * report INT64_MAX ns, about 9.2e9 seconds. */
double sk_timer_total(const sk_timer *t)
{
    if (t == NULL)
        return UNDEFINED;
    return (double)t->total_ns / NS_PER_S;
}

/* From the exact integer total rather than the Welford mean: one rounding
 * instead of one per sample. The Welford mean is the fallback once the total
 * has saturated. */
double sk_timer_mean(const sk_timer *t)
{
    if (t == NULL || t->count == 0)
        return UNDEFINED;
    if (t->total_ns == INT64_MAX)
        return t->mean_ns / NS_PER_S;
    return (double)t->total_ns / (double)t->count / NS_PER_S;
}

double sk_timer_min(const sk_timer *t)
{
    if (t == NULL || t->count == 0)
        return UNDEFINED;
    return (double)t->min_ns / NS_PER_S;
}

double sk_timer_max(const sk_timer *t)
{
    if (t == NULL || t->count == 0)
        return UNDEFINED;
    return (double)t->max_ns / NS_PER_S;
}

double sk_timer_last(const sk_timer *t)
{
    if (t == NULL || t->count == 0)
        return UNDEFINED;
    return (double)t->last_ns / NS_PER_S;
}

/* Sample variance (n - 1), like Python's statistics.variance. */
double sk_timer_variance(const sk_timer *t)
{
    if (t == NULL || t->count < 2)
        return UNDEFINED;
    return t->m2_ns2 / (double)(t->count - 1) / (NS_PER_S * NS_PER_S);
}

double sk_timer_stdev(const sk_timer *t)
{
    return sqrt(sk_timer_variance(t));
}

double sk_timer_median(const sk_timer *t)
{
    return sk_timer_percentile(t, 50.0);
}

/* ------------------------------------------------- exact percentiles */

static void swap_i64(int64_t *a, int64_t *b)
{
    int64_t tmp = *a;
    *a = *b;
    *b = tmp;
}

static int64_t median_of_three(int64_t a, int64_t b, int64_t c)
{
    if (a > b)
        swap_i64(&a, &b);
    if (b > c)
        swap_i64(&b, &c);
    return a > b ? a : b;
}

/* Quickselect: puts the k-th smallest of a[0..n) at a[k], everything smaller
 * before it and everything larger after it. The three-way partition keeps
 * runs of equal durations (common: a hook that always takes 1 us) linear. */
static int64_t select_kth(int64_t *a, size_t n, size_t k)
{
    size_t left = 0, right = n;
    while (right - left > 1) {
        int64_t pivot = median_of_three(a[left], a[left + (right - left) / 2], a[right - 1]);
        size_t lt = left, i = left, gt = right;
        while (i < gt) {
            if (a[i] < pivot)
                swap_i64(&a[lt++], &a[i++]);
            else if (a[i] > pivot)
                swap_i64(&a[i], &a[--gt]);
            else
                i++;
        }
        if (k < lt)
            right = lt;
        else if (k >= gt)
            left = gt;
        else
            return pivot;
    }
    return a[k];
}

/* Linear interpolation between the order statistics around rank
 * pct/100 * (n-1): numpy.percentile's default and statistics.median. Works
 * on a copy because the timer is read-only here. */
static double exact_percentile_ns(const struct sk_timer *t, size_t n, double pct)
{
    int64_t *sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL)
        return UNDEFINED;
    memcpy(sorted, t->exact, n * sizeof *sorted);

    double rank = pct / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo > n - 1)
        lo = n - 1;
    double frac = rank - (double)lo;

    int64_t x_lo = select_kth(sorted, n, lo);
    double value = (double)x_lo;
    if (frac > 0.0 && lo + 1 < n) {
        /* After the select, the next order statistic is the smallest of
         * what lies above lo. */
        int64_t x_hi = sorted[lo + 1];
        for (size_t i = lo + 2; i < n; i++)
            if (sorted[i] < x_hi)
                x_hi = sorted[i];
        value += frac * ((double)x_hi - (double)x_lo); /* no int64 overflow at the extremes */
    }
    free(sorted);
    return value;
}

/* --------------------------------------------- histogram percentiles */

/* The value that stands for a bucket: the midpoint of the integer durations
 * it holds, so no value in it is off by more than half a bucket. */
static double bucket_value_ns(unsigned bucket)
{
    if (bucket < SK_TIMER_SUB)
        return (double)bucket;
    unsigned shift = (bucket >> SK_TIMER_SUB_BITS) - 1;
    uint64_t sub = bucket & (SK_TIMER_SUB - 1);
    uint64_t low = (SK_TIMER_SUB + sub) << shift;
    uint64_t width = (uint64_t)1 << shift;
    return (double)low + (double)(width - 1) / 2.0;
}

/* The k-th smallest (0-based) of the n durations in the histogram. The two
 * ends are known exactly, and every estimate is kept within them, so a
 * histogram of identical durations reports them exactly. */
static double hist_order_statistic_ns(const struct sk_timer *t, uint64_t n, uint64_t k)
{
    double min = (double)t->min_ns, max = (double)t->max_ns;
    if (k == 0)
        return min;
    if (k >= n - 1)
        return max;
    uint64_t seen = 0;
    for (unsigned b = 0; b < SK_TIMER_BUCKETS; b++) {
        seen += t->hist[b];
        if (seen > k) {
            double v = bucket_value_ns(b);
            return v < min ? min : v > max ? max : v;
        }
    }
    return max;
}

static double hist_percentile_ns(const struct sk_timer *t, double pct)
{
    /* Count from the buckets rather than trusting t->count, so a timer read
     * while it is being written cannot make the walk run off the end. */
    uint64_t n = 0;
    for (unsigned b = 0; b < SK_TIMER_BUCKETS; b++)
        n += t->hist[b];
    if (n == 0)
        return UNDEFINED;

    double rank = pct / 100.0 * (double)(n - 1);
    /* (double)(n - 1) may round up to 2^64, which no uint64_t holds. */
    uint64_t lo = rank >= (double)(n - 1) ? n - 1 : (uint64_t)rank;
    double frac = rank - (double)lo;

    double x_lo = hist_order_statistic_ns(t, n, lo);
    if (frac > 0.0 && lo + 1 < n)
        x_lo += frac * (hist_order_statistic_ns(t, n, lo + 1) - x_lo);
    return x_lo;
}

double sk_timer_percentile(const sk_timer *t, double pct)
{
    /* Written so that a NaN pct fails the range check too. The count is
     * read once: a timer in shared memory may change between two reads. */
    uint64_t count = t != NULL ? *(const volatile uint64_t *)&t->count : 0;
    if (count == 0 || !(pct >= 0.0 && pct <= 100.0))
        return UNDEFINED;
    double ns = count <= SK_TIMER_EXACT ? exact_percentile_ns(t, (size_t)count, pct)
                                        : hist_percentile_ns(t, pct);
    return ns / NS_PER_S;
}
