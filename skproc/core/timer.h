/* SPDX-License-Identifier: MIT */
/*
 * Timers: the duration of every call of one lifecycle hook, and statistics
 * over them (see the sk_timer_* getters in skproc.h).
 *
 * A timer lives in a MAP_SHARED page written by the child and read by the
 * parent after the child is gone, so struct sk_timer is one fixed-size block
 * with no pointers, and recording never allocates. Memory is bounded at any
 * count:
 *
 *   - count, total, min, max and last are kept exactly (integer nanoseconds);
 *     mean and M2 with Welford's update, so the variance stays accurate when
 *     the durations are large and close together;
 *   - the first SK_TIMER_EXACT durations are kept as they are, and median and
 *     percentiles are exact while count <= SK_TIMER_EXACT;
 *   - at the next sample they are folded once into a log histogram, which
 *     takes every later sample. Quantiles then come from the histogram and
 *     are within 0.4% of the true value (see SK_TIMER_SUB_BITS).
 *
 * All-zero memory is a valid empty timer, so a freshly mapped anonymous page
 * needs no initialisation; sk_timer_init empties a used one.
 *
 * Concurrency: one writer, and readers only while the writer is not adding
 * (the parent reads after the child exited, a hook reads its own timers).
 * A torn read gives wrong numbers but never an out-of-bounds access.
 */
#ifndef SKPROC_TIMER_H
#define SKPROC_TIMER_H

#include <stdint.h>

#include "skproc.h"

#define SK_TIMER_EXACT 4096 /* samples kept exactly */

/*
 * The histogram is HDR-style: durations below 2^SUB_BITS ns get one bucket
 * each (exact); above that, every power of two [2^e, 2^(e+1)) is split into
 * 2^SUB_BITS equal buckets, so a bucket is at most 1/128 of its lower bound
 * wide and its midpoint is within 2^-(SUB_BITS+1) = 0.39% of any value in it.
 * The index comes from a count-leading-zeros and a shift: no log(), no
 * division. The top octave is [2^49, 2^50) ns, i.e. up to 1.13e6 seconds;
 * longer durations count in the top bucket (min/max/total stay exact).
 */
#define SK_TIMER_SUB_BITS 7
#define SK_TIMER_SUB (1u << SK_TIMER_SUB_BITS)
#define SK_TIMER_TOP_EXP 49 /* highest octave kept: [2^49, 2^50) ns */
#define SK_TIMER_BUCKETS ((SK_TIMER_TOP_EXP - SK_TIMER_SUB_BITS + 2) * SK_TIMER_SUB)

struct sk_timer {
    /* Hot fields first: an empty or small timer touches only its first
     * pages, which matters when many timers share one mapping. */
    uint64_t count;
    int64_t total_ns; /* exact; saturates at INT64_MAX (292 years) */
    int64_t min_ns;   /* meaningful only when count > 0 */
    int64_t max_ns;
    int64_t last_ns;
    double mean_ns;                  /* Welford running mean */
    double m2_ns2;                   /* Welford sum of squared deviations, ns^2 */
    int64_t exact[SK_TIMER_EXACT];   /* samples 1..SK_TIMER_EXACT, in order */
    uint64_t hist[SK_TIMER_BUCKETS]; /* valid only when count > SK_TIMER_EXACT */
};

/* Empties t, whatever it held. Touches only the header fields: the sample
 * store and the histogram are ignored until count says they are filled, so an
 * unused timer costs no memory beyond its first page. */
void sk_timer_init(struct sk_timer *t);

/* The histogram bucket of a duration; monotonic in ns. */
static inline unsigned sk_timer_bucket(uint64_t ns)
{
    if (ns < SK_TIMER_SUB)
        return (unsigned)ns;
    if (ns >> (SK_TIMER_TOP_EXP + 1))
        return SK_TIMER_BUCKETS - 1;
#if defined(__GNUC__)
    unsigned exp = 63u - (unsigned)__builtin_clzll(ns);
#else
    unsigned exp = 0;
    for (uint64_t v = ns; v >>= 1;)
        exp++;
#endif
    unsigned shift = exp - SK_TIMER_SUB_BITS;
    return ((shift + 1) << SK_TIMER_SUB_BITS) + (unsigned)((ns >> shift) & (SK_TIMER_SUB - 1));
}

/* The one-time switch from exact samples to the histogram (timer.c); kept out
 * of line so the inlined recording path stays small. */
void sk_timer_fold_exact(struct sk_timer *t);

/* Adds every duration src holds to dst, as if they had been recorded there
 * (a step's processes' timers summed into one). Exact while the two
 * together fit the exact store; a src that was scribbled on gives wrong
 * numbers, never an access out of bounds. */
void sk_timer_merge(struct sk_timer *dst, const struct sk_timer *src);

/* Records one duration in nanoseconds. Negative durations (a clock that went
 * backwards) count as 0. Inline because it runs once or twice per loop
 * iteration and must cost a few nanoseconds; it never allocates. */
static inline void sk_timer_add(struct sk_timer *t, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    uint64_t n = ++t->count;
    /* Saturates instead of overflowing (2^63 ns is 292 years). Unsigned, so
     * that a timer a hook scribbled on (a negative total) is only wrong
     * numbers, never undefined behaviour. */
    uint64_t total = (uint64_t)t->total_ns + (uint64_t)ns;
    t->total_ns = total > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)total;
    if (n == 1 || ns < t->min_ns)
        t->min_ns = ns;
    if (n == 1 || ns > t->max_ns)
        t->max_ns = ns;
    t->last_ns = ns;

    /* Welford. The reciprocal depends only on n, so the division runs in
     * parallel with the chain through mean_ns instead of lengthening it. */
    double inv_n = 1.0 / (double)n;
    double x = (double)ns;
    double delta = x - t->mean_ns;
    t->mean_ns += delta * inv_n;
    t->m2_ns2 += delta * (x - t->mean_ns);

    if (n - 1 < SK_TIMER_EXACT) { /* also false for a count that wrapped to 0 */
        t->exact[n - 1] = ns;
        return;
    }
    if (n == SK_TIMER_EXACT + 1)
        sk_timer_fold_exact(t);
    t->hist[sk_timer_bucket((uint64_t)ns)]++;
}

#endif /* SKPROC_TIMER_H */
